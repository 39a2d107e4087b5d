// What this session's writes committed at: the commit-LSN probe queued behind a write's
// commit on its primary, and the marks (this session's and the proxy's) that reads under
// `session` and `global` consistency wait for (SPEC section 7).

#include "proxy/control/lsn.hpp"
#include "proxy/protocol/message_writer.hpp"
#include "proxy/session/client_session.hpp"

namespace shardline::proxy::session {

void ClientSession::note_writes(const StatementEffects& e, bool was_in_tx, std::span<const int> logical) {
  if (!server_ || replica_ >= 0) return;
  if (auto scope = tx_.after_statements(e, was_in_tx, logical)) push_lsn_probe(std::move(*scope));
}

void ClientSession::push_lsn_probe(std::vector<int> logical) {
  if (!services_.cluster.config().replicas.track_commit_lsn) {
    // No probe: the write counts as acknowledged at an unknown position when its reply is in.
    Pending mark{Expect::CommitMark};
    mark.logical = std::move(logical);
    tracker_.push(std::move(mark));
    return;
  }
  // Pipelined behind the commit on the same connection, and the write's ReadyForQuery is held
  // until it answers, so the position is known before anyone can have seen the write
  // acknowledged. pg_current_wal_insert_lsn(), not pg_current_wal_lsn(): with asynchronous
  // commit the commit record is inserted but not yet written when the commit returns, and the
  // insert position is at or past it whatever synchronous_commit says.
  // A statement prepared once per server connection (id 0 is reserved for it), so each probe
  // costs the server a Bind/Execute, not a parse and plan.
  constexpr std::uint64_t kProbeId = 0;
  constexpr std::string_view kProbeName = "_sl_lsn";
  protocol::MessageWriter w = to_server_.writer();
  const bool prepare = !server_->prepared.count(kProbeId);
  if (prepare) w.begin('P').cstr(kProbeName).cstr("SELECT pg_current_wal_insert_lsn()").i16(0).end();
  w.begin('B').cstr("").cstr(kProbeName).i16(0).i16(0).i16(0).end();
  w.begin('E').cstr("").i32(0).end();
  w.begin('S').end();
  to_server_.sealed();
  if (prepare) server_->prepared.insert(kProbeId);
  Pending probe{Expect::LsnProbe};
  probe.logical = std::move(logical);
  probe.probe_parses = prepare;
  tracker_.push(std::move(probe));
}

void ClientSession::note_commit(int shard, std::span<const int> logical, std::optional<std::uint64_t> lsn) {
  if (shard < 0 || shard >= services_.commits->shards()) return;
  WriteMarks& mine = writes_on(shard);
  WriteMarks& everyone = services_.commits->shard(shard);
  if (lsn) {
    mine.commit_at({}, *lsn);
    everyone.commit_at(logical, *lsn);
  } else {
    const auto now = WriteMarks::Clock::now();
    mine.commit_unknown(now);
    everyone.commit_unknown(now);
  }
}

std::string ClientSession::lsn_learned(const Pending& p, std::string_view lsn_text) {
  if (shard_ < 0) return {};
  auto lsn = control::Lsn::parse(lsn_text);
  if (!lsn) {
    // Never guess: the write counts as acknowledged now at an unknown position (reads of this
    // shard wait for a primary sample taken after now). If the probe's own Parse failed, the
    // statement is prepared again next time; a Bind that failed (an aborted transaction)
    // leaves it in place.
    note_commit(shard_, p.logical, std::nullopt);
    if (server_ && p.probe_parses && !p.probe_parsed) server_->prepared.erase(0);
    return {};
  }
  note_commit(shard_, p.logical, lsn->value());
  if (!services_.cluster.config().replicas.report_lsn) return {};
  std::string out;
  protocol::MessageWriter(out).parameter_status("shardline.lsn", lsn_token());
  return out;
}

}  // namespace shardline::proxy::session
