#include "proxy/session/response_tracker.hpp"

#include "proxy/protocol/error_fields.hpp"
#include "proxy/protocol/frame_reader.hpp"

namespace shardline::proxy::session {

using protocol::error_sqlstate;

namespace {

/// The transaction status of a ReadyForQuery body.
char status_of(std::string_view body) { return body.empty() ? 'I' : body[0]; }

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
  const Reply r{tag, whole, body};
  switch (queue_.front().kind) {
    case Expect::SimpleQuery: on_simple_query(r, out, hooks); break;
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
    case Expect::LsnProbe: on_lsn_probe(r, out, hooks); break;
    case Expect::FailingQuery: on_failing_query(r, out, hooks); break;
    case Expect::Sync:
      if (tag == 'Z') {
        const bool mine = queue_.front().proxy_ready;
        queue_.pop_front();
        if (!mine) hold_or_forward_ready(whole, out);
        hooks.ready_for_query(status_of(body));
      } else {
        out.ref(whole.data(), whole.size());
      }
      break;
    default:
      if (tag == 'E') on_extended_error(r, out, hooks);
      else on_extended_reply(r, out, hooks);
      break;
  }
  emit_ready_synthetic(out, hooks);
}

void ResponseTracker::on_simple_query(const Reply& r, OutBatch& out, TrackerHooks& hooks) {
  if (r.tag == 'E') {
    query_failed_ = true;
    hooks.error_seen(error_sqlstate(r.body));
  }
  if (r.tag == 'C') hooks.command_complete(r.body.substr(0, r.body.find('\0')));
  if (r.tag == 'E') {
    forward_error(r, out, hooks);
    return;
  }
  if (r.tag != 'Z') {
    out.ref(r.whole.data(), r.whole.size());
    return;
  }
  const char status = status_of(r.body);
  if (!query_failed_) hooks.simple_query_succeeded(queue_.front(), status);
  query_failed_ = false;
  queue_.pop_front();
  hold_or_forward_ready(r.whole, out);
  hooks.ready_for_query(status);
}

void ResponseTracker::on_lsn_probe(const Reply& r, OutBatch& out, TrackerHooks& hooks) {
  Pending& front = queue_.front();
  if (r.tag == '1') front.probe_parsed = true;
  if (r.tag == 'D' && r.body.size() >= 6) {
    // DataRow: int16 count, int32 length, value.
    const std::uint32_t len = protocol::read_u32(r.body.data() + 2);
    if (len != 0xffffffffu && 6 + std::size_t(len) <= r.body.size()) {
      const std::string status = hooks.lsn_learned(front, r.body.substr(6, len));
      if (!status.empty()) out.own_bytes(status);
    }
  }
  if (r.tag == 'E') (void)hooks.lsn_learned(front, {});  // failed: the write's LSN stays unknown
  if (r.tag == 'Z') {
    // Now the write's own ReadyForQuery: the cookie came first, as PostgreSQL sends a
    // ParameterStatus before the ReadyForQuery of the command that changed it.
    if (!front.held_ready.empty()) out.own_bytes(front.held_ready);
    queue_.pop_front();
  }
}

void ResponseTracker::on_failing_query(const Reply& r, OutBatch& out, TrackerHooks& hooks) {
  const Pending& front = queue_.front();
  if (r.tag == 'E' && front.replacement) {
    out.writer().error(*front.replacement);
    out.sealed();
  } else if (r.tag == 'Z') {
    out.ref(r.whole.data(), r.whole.size());
    queue_.pop_front();
    hooks.ready_for_query(status_of(r.body));
  } else if (r.tag != 'E') {
    out.ref(r.whole.data(), r.whole.size());
  }
}

void ResponseTracker::on_extended_error(const Reply& r, OutBatch& out, TrackerHooks& hooks) {
  const Pending& front = queue_.front();
  hooks.error_seen(error_sqlstate(r.body));
  if ((front.kind == Expect::Execute || front.kind == Expect::Bind) && is_stale_plan_error(r.body))
    hooks.stale_statement_seen();
  if (front.kind == Expect::FailingParse && front.replacement) {
    out.writer().error(*front.replacement);
    out.sealed();
  } else {
    forward_error(r, out, hooks);
  }
  if (front.kind == Expect::Parse || front.kind == Expect::InjectedParse) hooks.parse_not_applied(front);
  queue_.pop_front();
  skip_to_sync(hooks);
}

void ResponseTracker::forward_error(const Reply& r, OutBatch& out, TrackerHooks& hooks) {
  if (const protocol::SqlError* e = hooks.replace_error(error_sqlstate(r.body))) {
    out.writer().error(*e);
    out.sealed();
    return;
  }
  out.ref(r.whole.data(), r.whole.size());
}

void ResponseTracker::on_extended_reply(const Reply& r, OutBatch& out, TrackerHooks& hooks) {
  const Pending& front = queue_.front();
  bool done = false;
  switch (front.kind) {
    case Expect::Parse: done = r.tag == '1'; break;
    case Expect::InjectedParse:
    case Expect::FailingParse:
      if (r.tag == '1') {  // swallowed: the client did not send this Parse
        queue_.pop_front();
        return;
      }
      break;
    case Expect::Bind: done = r.tag == '2'; break;
    case Expect::ClosePortal: done = r.tag == '3'; break;
    case Expect::Describe: done = r.tag == 'T' || r.tag == 'n'; break;
    case Expect::Execute: done = r.tag == 'C' || r.tag == 'I' || r.tag == 's'; break;
    default: break;
  }
  if (r.tag == 'C') hooks.command_complete(r.body.substr(0, r.body.find('\0')));
  out.ref(r.whole.data(), r.whole.size());
  if (!done) return;
  if (front.kind == Expect::Execute && r.tag == 'C' && !front.sets.empty()) hooks.execute_succeeded(front);
  queue_.pop_front();
}

}  // namespace shardline::proxy::session
