// An extended-protocol unit whose Binds name keys on several shards: drivers' batches
// (executemany, JDBC addBatch, pipelines) send many Bind/Execute pairs of one statement, each
// for another tenant, and one Sync. PostgreSQL runs such a unit as one transaction: every
// Execute answered in order, an error stopping the rest until Sync and rolling back the whole
// unit. With cross_shard_transactions: 2pc the unit does the same across shards: each Bind goes
// to its key's shard as the transaction's participant there (participants.cpp); when a Bind
// needs another shard, the replies so far are relayed first (so they stay in the client's
// order, and an error among them is known before the unit moves on: the failed server keeps
// the rest of the unit, which it discards as PostgreSQL does). A unit outside a transaction
// becomes a transaction on its first move (BEGIN keeps what ran so far, as PostgreSQL turns an
// implicit transaction block into a regular one) and ends at its Sync with a two-phase commit,
// or a rollback everywhere after an error.

#include <fmt/format.h>

#include "proxy/protocol/message_writer.hpp"
#include "proxy/session/client_session.hpp"

namespace shardline::proxy::session {

using protocol::Frame;
using protocol::SqlError;
namespace sqlstate = protocol::sqlstate;

std::string ClientSession::span_refusal(int a, int b) const {
  const auto& cfg = services_.cluster.config();
  const auto& names = services_.directory->shard_names();
  const std::string head = fmt::format(
      "this batch binds statements for tenants on shard {} and shard {} before one Sync, and a batch runs as one "
      "transaction",
      names[std::size_t(a)], names[std::size_t(b)]);
  if (cfg.sharding.cross_shard_transactions != config::CrossShardTransactions::TwoPhaseCommit)
    return head + ", which spans shards only with cross_shard_transactions: 2pc (it is deny); send a Sync after "
                  "each tenant's statements";
  if (!twopc())
    return head + ", which spans shards only in transaction pooling (pool.mode: transaction); send a Sync after "
                  "each tenant's statements";
  if (replica_ >= 0)
    return head + ", read here from a replica of one shard; send a Sync after each tenant's statements";
  if (unit_effects_.tx_control) return std::string(kSpanningTxControl);
  return {};
}

asio::awaitable<bool> ClientSession::follow_bind(const Frame& f) {
  auto& s = scratch();
  const std::size_t index = s.binds_followed++;
  int target = -1;
  if (index < s.bind_shards.size()) {
    target = s.bind_shards[index];  // routed by the unit's lookahead
  } else {
    // A Bind past the lookahead (a batch larger than one read of client input): routed now.
    protocol::BodyReader r(f.body);
    auto portal = r.cstr();
    auto stmt = r.cstr();
    if (!portal || !stmt) co_return true;  // handle_bind reports it
    std::string_view query;
    std::optional<std::string_view> types;
    if (stmt->empty() && has_unnamed_) {
      query = unnamed_query_;
      types = unnamed_types_;
    } else if (auto it = statements_.find(std::string(*stmt)); !stmt->empty() && it != statements_.end()) {
      query = it->second->query;
      types = it->second->param_types;
    } else {
      co_return true;  // handle_bind answers that the statement does not exist
    }
    std::shared_ptr<const router::RouteTemplate> tmpl;
    router::Plan plan = route_bind(query, types, r, tmpl);
    std::optional<SqlError> refusal;
    if (plan.kind == router::RouteKind::Refuse) {
      refusal = SqlError::error(plan.error.sqlstate, plan.error.message);
    } else if (plan.kind == router::RouteKind::Single) {
      target = plan.shards.front();
    } else if (plan.kind != router::RouteKind::Any) {
      refusal = SqlError::error(sqlstate::kFeatureNotSupported, std::string(kMixedUnit));
    }
    if (!refusal && unit_spans_ && unit_effects_.tx_control)
      refusal = SqlError::error(sqlstate::kFeatureNotSupported, std::string(kSpanningTxControl));
    if (refusal) {
      co_await refuse(*refusal, true);
      co_return false;
    }
  }
  if (target < 0 || !server_ || target == shard_) co_return true;
  // After an error the server discards the rest of the unit: it keeps it, up to its Sync.
  if (tx_.failed() || tx_.error_since_ready()) co_return true;
  if (std::string why = span_refusal(shard_, target); !why.empty()) {
    co_await refuse(SqlError::error(sqlstate::kFeatureNotSupported, why), true);
    co_return false;
  }
  co_return co_await move_unit(target);
}

asio::awaitable<bool> ClientSession::move_unit(int shard) {
  {
    protocol::MessageWriter w = to_server_.writer();
    w.begin('H').end();  // Flush: the server sends what it has answered so far
    to_server_.sealed();
  }
  co_await flush_to_server();
  while (server_ && !tracker_.empty()) co_await pump_state_.wait();
  if (!server_) co_return false;  // lost: the pump told the client
  if (tx_.failed() || tx_.error_since_ready()) co_return true;
  if (!tx_.open()) {
    // The unit's implicit transaction becomes a regular one, keeping what ran so far (or the
    // unit's own BEGIN already made it one: PostgreSQL's WARNING to a second BEGIN is swallowed).
    sync_server_state();
    protocol::MessageWriter w = to_server_.writer();
    w.begin('Q').cstr("BEGIN").end();
    to_server_.sealed();
    tracker_.push(Pending{Expect::Swallow});
    unnamed_server_ = 0;  // a Query drops the server's unnamed statement
    if (!unit_effects_.begins) tx_.note_begin("BEGIN");
    tx_.bind(Participant{shard_, replica_}, false);
    unit_implicit_tx_ = !unit_effects_.begins;  // else the client's BEGIN: it stays open after Sync
  }
  unit_spans_ = true;
  if (co_await join_shard(shard)) co_return true;
  // No server for `shard`: the transaction fails; the unit's Sync (or ROLLBACK) ends it.
  tx_.fail_distributed();
  co_await refuse(unit_extras().last_error, true);
  co_return false;
}

asio::awaitable<bool> ClientSession::end_spanning_unit(std::string_view sync) {
  unit_implicit_tx_ = false;
  unit_spans_ = false;
  skip_until_sync_ = false;
  forward_sync_ = false;
  if (server_ && unit_open_) {
    // The current server ends its part of the unit (after an error: stops discarding); its
    // ReadyForQuery says whether the transaction failed there.
    to_server_.ref(sync.data(), sync.size());
    Pending p{Expect::Sync};
    p.proxy_ready = true;
    tracker_.push(std::move(p));
  }
  unit_open_ = false;
  (void)tx_.after_statements(unit_effects_, true, unit_scope_.logical());  // its writes, for the commit
  unit_effects_ = StatementEffects{};
  std::string tag;
  const auto err = co_await finish_distributed(true, tag);  // a failed transaction rolls back
  std::string out;
  protocol::MessageWriter w(out);
  if (err) w.error(*err);
  w.ready_for_query(tx_.status());
  co_return co_await reply_local(std::move(out));
}

}  // namespace shardline::proxy::session
