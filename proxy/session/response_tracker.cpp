#include "proxy/session/response_tracker.hpp"

#include "proxy/protocol/frame_reader.hpp"

namespace shardline::proxy::session {

namespace {

/// The SQLSTATE (field 'C') of an ErrorResponse body; empty if it has none.
/// https://www.postgresql.org/docs/current/protocol-error-fields.html
std::string_view error_sqlstate(std::string_view body) {
  std::size_t i = 0;
  while (i < body.size() && body[i] != '\0') {
    const char field = body[i++];
    const std::size_t end = body.find('\0', i);
    if (end == std::string_view::npos) break;
    if (field == 'C') return body.substr(i, end - i);
    i = end + 1;
  }
  return {};
}

}  // namespace

void ResponseTracker::emit_ready_synthetic(OutBatch& out, TrackerHooks& hooks) {
  while (!queue_.empty() &&
         (queue_.front().kind == Expect::Synthetic || queue_.front().kind == Expect::CommitMark)) {
    if (queue_.front().kind == Expect::Synthetic) out.own_bytes(queue_.front().synthetic);
    else (void)hooks.lsn_learned(queue_.front(), {});
    queue_.pop_front();
  }
}

void ResponseTracker::hold_or_forward_ready(std::string_view ready, OutBatch& out) {
  if (!queue_.empty() && queue_.front().kind == Expect::LsnProbe && queue_.front().held_ready.empty())
    queue_.front().held_ready.assign(ready);
  else
    out.ref(ready.data(), ready.size());
}

void ResponseTracker::push(Pending p) {
  if (skipping_) {
    switch (p.kind) {
      case Expect::Sync:
        skipping_ = false;
        break;
      case Expect::Parse:
      case Expect::InjectedParse:
      case Expect::FailingParse:
        if (hooks_ && p.kind != Expect::FailingParse) hooks_->parse_not_applied(p);
        return;
      case Expect::Bind:
      case Expect::Describe:
      case Expect::Execute:
      case Expect::ClosePortal:
      case Expect::Synthetic:  // a proxy-made reply to a message PostgreSQL would discard too
        return;
      default:
        break;
    }
  }
  queue_.push_back(std::move(p));
}

bool ResponseTracker::is_stale_plan_error(std::string_view body) {
  bool code = false, message = false;
  std::size_t pos = 0;
  while (pos < body.size() && body[pos] != '\0') {
    const char field = body[pos++];
    const auto end = body.find('\0', pos);
    if (end == std::string_view::npos) break;
    const std::string_view value = body.substr(pos, end - pos);
    if (field == 'C') code = value == "0A000";
    if (field == 'M') message = value.rfind("cached plan must not change result type", 0) == 0;
    pos = end + 1;
  }
  return code && message;
}

void ResponseTracker::forward_error(std::string_view whole, std::string_view body, OutBatch& out,
                                    TrackerHooks& hooks) {
  if (const protocol::SqlError* e = hooks.replace_error(error_sqlstate(body))) {
    protocol::MessageWriter w = out.writer();
    w.error(*e);
    out.sealed();
    return;
  }
  out.ref(whole.data(), whole.size());
}

void ResponseTracker::skip_to_sync(TrackerHooks& hooks) {
  // After an error the server ignores everything up to Sync: those messages get no reply,
  // and a Parse among them did not create its statement.
  while (!queue_.empty() && queue_.front().kind != Expect::Sync &&
         queue_.front().kind != Expect::SimpleQuery && queue_.front().kind != Expect::StateSync &&
         queue_.front().kind != Expect::Swallow && queue_.front().kind != Expect::FailingQuery &&
         queue_.front().kind != Expect::LsnProbe && queue_.front().kind != Expect::CommitMark) {
    const auto& p = queue_.front();
    if (p.kind == Expect::Parse || p.kind == Expect::InjectedParse) hooks.parse_not_applied(p);
    queue_.pop_front();
  }
  // No Sync queued yet: the unit's remaining messages are still to come, and discarded too.
  if (queue_.empty()) skipping_ = true;
}

void ResponseTracker::on_server_message(char tag, std::string_view whole, std::string_view body,
                                        OutBatch& out, TrackerHooks& hooks) {
  emit_ready_synthetic(out, hooks);
  if (queue_.empty()) {  // unsolicited: a FATAL before the server closes, async notices
    out.ref(whole.data(), whole.size());
    return;
  }
  Pending& front = queue_.front();
  switch (front.kind) {
    case Expect::SimpleQuery:
      if (tag == 'E') {
        query_failed_ = true;
        hooks.error_seen(error_sqlstate(body));
      }
      if (tag == 'C') hooks.command_complete(body.substr(0, body.find('\0')));
      if (tag == 'E') {
        forward_error(whole, body, out, hooks);
      } else if (tag == 'Z') {
        char status = body.empty() ? 'I' : body[0];
        if (!query_failed_) hooks.simple_query_succeeded(front, status);
        query_failed_ = false;
        queue_.pop_front();
        hold_or_forward_ready(whole, out);
        hooks.ready_for_query(status);
      } else {
        out.ref(whole.data(), whole.size());
      }
      break;
    case Expect::StateSync:
      if (tag == 'E') query_failed_ = true;
      if (tag == 'Z') {
        hooks.state_sync_done(!query_failed_);
        query_failed_ = false;
        queue_.pop_front();
      }
      break;
    case Expect::Swallow:
      if (tag == 'Z') queue_.pop_front();
      break;
    case Expect::LsnProbe:
      if (tag == '1') front.probe_parsed = true;
      if (tag == 'D' && body.size() >= 6) {
        // DataRow: int16 count, int32 length, value.
        std::uint32_t len = protocol::read_u32(body.data() + 2);
        if (len != 0xffffffffu && 6 + std::size_t(len) <= body.size()) {
          std::string status = hooks.lsn_learned(front, body.substr(6, len));
          if (!status.empty()) out.own_bytes(status);
        }
      }
      if (tag == 'E') (void)hooks.lsn_learned(front, {});  // failed: the write's LSN stays unknown
      if (tag == 'Z') {
        // Now the write's own ReadyForQuery: the cookie came first, as PostgreSQL sends a
        // ParameterStatus before the ReadyForQuery of the command that changed it.
        if (!front.held_ready.empty()) out.own_bytes(front.held_ready);
        queue_.pop_front();
      }
      break;
    case Expect::FailingQuery:
      if (tag == 'E' && front.replacement) {
        protocol::MessageWriter w = out.writer();
        w.error(*front.replacement);
        out.sealed();
      } else if (tag == 'Z') {
        out.ref(whole.data(), whole.size());
        queue_.pop_front();
        hooks.ready_for_query(body.empty() ? 'I' : body[0]);
      } else if (tag != 'E') {
        out.ref(whole.data(), whole.size());
      }
      break;
    case Expect::Sync:
      if (tag == 'Z') {
        queue_.pop_front();
        hold_or_forward_ready(whole, out);
        hooks.ready_for_query(body.empty() ? 'I' : body[0]);
      } else {
        out.ref(whole.data(), whole.size());
      }
      break;
    default: {
      if (tag == 'E') {
        hooks.error_seen(error_sqlstate(body));
        if ((front.kind == Expect::Execute || front.kind == Expect::Bind) && is_stale_plan_error(body))
          hooks.stale_statement_seen();
        if (front.kind == Expect::FailingParse && front.replacement) {
          protocol::MessageWriter w = out.writer();
          w.error(*front.replacement);
          out.sealed();
        } else {
          forward_error(whole, body, out, hooks);
        }
        if (front.kind == Expect::Parse || front.kind == Expect::InjectedParse) hooks.parse_not_applied(front);
        queue_.pop_front();
        skip_to_sync(hooks);
        break;
      }
      bool done = false;
      switch (front.kind) {
        case Expect::Parse: done = tag == '1'; break;
        case Expect::InjectedParse:
        case Expect::FailingParse:
          if (tag == '1') {  // swallowed: the client did not send this Parse
            queue_.pop_front();
            emit_ready_synthetic(out, hooks);
            return;
          }
          break;
        case Expect::Bind: done = tag == '2'; break;
        case Expect::ClosePortal: done = tag == '3'; break;
        case Expect::Describe: done = tag == 'T' || tag == 'n'; break;
        case Expect::Execute: done = tag == 'C' || tag == 'I' || tag == 's'; break;
        default: break;
      }
      if (tag == 'C') hooks.command_complete(body.substr(0, body.find('\0')));
      out.ref(whole.data(), whole.size());
      if (done) {
        if (front.kind == Expect::Execute && tag == 'C' && !front.sets.empty()) hooks.execute_succeeded(front);
        queue_.pop_front();
      }
      break;
    }
  }
  emit_ready_synthetic(out, hooks);
}

}  // namespace shardline::proxy::session
