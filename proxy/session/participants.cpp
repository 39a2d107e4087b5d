// A transaction on several shards (cross_shard_transactions: 2pc, transaction pooling). The
// transaction holds one server per shard it touched: `server_` runs the current statement with
// its pump; the others wait in `parked_`, idle inside the transaction. A shard is joined by its
// first statement there, with the transaction's BEGIN replayed first. Statements the proxy runs
// on several shards (scatter reads, split INSERTs, broadcasts, DDL) run on the participants'
// servers. COMMIT is a two-phase commit (exec::TwopcCoordinator); ROLLBACK, an error and a
// client that leaves end every participant. A transaction on one shard never gets here.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "proxy/exec/server_io.hpp"
#include "proxy/protocol/message_writer.hpp"
#include "proxy/session/client_session.hpp"

namespace shardline::proxy::session {

using protocol::SqlError;
namespace sqlstate = protocol::sqlstate;

bool ClientSession::twopc() const {
  const auto& cfg = services_.cluster.config();
  return services_.twopc && cfg.sharding.cross_shard_transactions == config::CrossShardTransactions::TwoPhaseCommit &&
         cfg.pool.mode == config::PoolMode::Transaction;
}

void ClientSession::start_pump() {
  server_->client_id = std::uint64_t(pid_);
  pump_running_ = true;
  stop_pump_ = false;
  asio::co_spawn(services_.ex, pump(), asio::detached);
}

asio::awaitable<void> ClientSession::park_server() {
  co_await flush_to_server();
  while (server_ && !tracker_.empty()) co_await pump_state_.wait();
  if (!server_) co_return;  // lost: the pump told the client
  stop_pump_ = true;
  boost::system::error_code ec;
  server_->stream().socket().cancel(ec);
  while (pump_running_) co_await pump_state_.wait();
  stop_pump_ = false;
  if (!server_) co_return;
  parked_.push_back(Parked{shard_, std::move(server_)});
  server_provisional_ = false;
  unnamed_server_ = 0;
}

asio::awaitable<bool> ClientSession::join_shard(int shard) {
  // (Inside an open unit too: attach() keeps a server that failed in it, and a unit moves on
  // only once the replies so far are in, move_unit.)
  if (server_) co_await park_server();
  for (auto it = parked_.begin(); it != parked_.end(); ++it) {
    if (it->shard != shard) continue;
    server_ = std::move(it->lease);
    parked_.erase(it);
    shard_ = shard;
    replica_ = -1;
    pool_ = &services_.cluster.primary(shard);
    start_pump();
    co_return true;
  }
  if (!co_await ensure_server(shard, -1)) co_return false;
  sync_server_state();
  protocol::MessageWriter w = to_server_.writer();
  w.begin('Q').cstr(tx_.join_sql()).end();
  to_server_.sealed();
  tracker_.push(Pending{Expect::Swallow});
  unnamed_server_ = 0;
  tx_.join(Participant{shard, -1});
  co_return true;
}

asio::awaitable<std::optional<SqlError>> ClientSession::take_participants(const std::vector<int>& shards,
                                                                         std::vector<backend::ServerLease>& leases) {
  if (server_) co_await park_server();
  std::string join(tx_.held() ? std::string_view(tx_.held_sql()) : tx_.join_sql());
  std::vector<int> taken;
  std::optional<SqlError> error;
  for (int shard : shards) {
    auto it = std::find_if(parked_.begin(), parked_.end(), [&](const Parked& p) { return p.shard == shard; });
    if (it != parked_.end()) {
      leases.push_back(std::move(it->lease));
      parked_.erase(it);
      taken.push_back(shard);
      continue;
    }
    std::vector<backend::ServerLease> one;
    const std::vector<int> target(1, shard);
    if ((error = co_await acquire_primaries(target, one))) break;
    // The session's settings and the transaction's BEGIN, in one round trip.
    int skip = 0;
    std::string sql = state_prelude(*one[0], skip);
    std::optional<SqlError> err;
    // (Built before the co_await: GCC evaluates both arms of a ?: inside one.)
    std::string start = join;
    if (!sql.empty()) start = sql.substr(5, sql.size() - 6) + ";" + join;
    (void)co_await exec::query_column(*one[0], start, err);
    if (err) {
      one[0]->broken = true;
      err->detail = (err->detail.empty() ? "" : err->detail + "; ") + "starting the transaction on shard " +
                    services_.directory->shard_name(shard);
      error = std::move(err);
      break;
    }
    leases.push_back(std::move(one[0]));
    taken.push_back(shard);
  }
  if (error) {
    return_participants(taken, leases, -1);
    tx_.fail_distributed();
    co_return error;
  }
  for (int shard : shards) tx_.join(Participant{shard, -1});
  co_return std::nullopt;
}

void ClientSession::return_participants(const std::vector<int>& shards, std::vector<backend::ServerLease>& leases,
                                        int failed) {
  for (std::size_t i = 0; i < leases.size() && i < shards.size(); ++i) {
    if (!leases[i]) continue;
    if (int(i) == failed && !leases[i]->broken) {
      // Its transaction failed there: it answers the next statements with PostgreSQL's 25P02.
      server_ = std::move(leases[i]);
      shard_ = shards[i];
      replica_ = -1;
      pool_ = &services_.cluster.primary(shard_);
      start_pump();
    } else {
      parked_.push_back(Parked{shards[i], std::move(leases[i])});
    }
  }
  leases.clear();
  if (failed >= 0) tx_.fail_distributed();
}

asio::awaitable<std::optional<bool>> ClientSession::distributed_control(const router::RouteTemplate& t) {
  router::TxCommand cmd = router::TxCommand::None;
  for (const auto& ts : t.statements)
    if (ts.info.kind == router::StatementKind::Transaction && ts.info.tx != router::TxCommand::Begin &&
        ts.info.tx != router::TxCommand::Start)
      cmd = ts.info.tx;
  if (cmd == router::TxCommand::None) co_return std::nullopt;
  const bool ends = cmd == router::TxCommand::Commit || cmd == router::TxCommand::Rollback;
  if (ends && t.statements.size() == 1) co_return co_await end_distributed(cmd == router::TxCommand::Commit);
  const SqlError e = SqlError::error(
      sqlstate::kFeatureNotSupported,
      ends ? "in a transaction that spans several shards, send COMMIT or ROLLBACK as a query of its own"
           : "savepoints are not supported once a transaction spans several shards "
             "(cross_shard_transactions: 2pc): each shard would need the same savepoint; "
             "the transaction is aborted, ROLLBACK it");
  if (!server_) tx_.fail_distributed();
  co_return co_await refuse(e, false);
}

asio::awaitable<bool> ClientSession::end_distributed(bool commit) {
  std::string tag;
  auto err = co_await finish_distributed(commit, tag);
  std::string out;
  protocol::MessageWriter w(out);
  if (err) w.error(*err);
  else w.command_complete(tag);
  w.ready_for_query('I');
  co_return co_await reply_local(std::move(out));
}

asio::awaitable<std::optional<SqlError>> ClientSession::finish_distributed(bool commit, std::string& tag) {
  const bool failed_before = tx_.failed();
  if (server_) co_await park_server();
  // Failed: before, or in the replies just waited for (a ReadyForQuery 'E'), or a participant
  // lost meanwhile (its transaction is gone with its connection).
  bool failed = failed_before || tx_.failed() || client_gone_ || parked_.size() < tx_.participants().size();
  for (const auto& p : parked_) failed = failed || !p.lease || p.lease->broken;
  std::sort(parked_.begin(), parked_.end(), [](const Parked& a, const Parked& b) { return a.shard < b.shard; });
  const auto& names = services_.directory->shard_names();
  std::vector<exec::TwopcBranch> branches;
  for (const auto& p : parked_) branches.push_back({p.lease.get(), names[std::size_t(p.shard)]});
  std::optional<SqlError> err;
  const std::vector<bool> all(branches.size(), true);
  bool committed = false;
  if (commit && !failed && branches.size() > 1) {
    err = co_await services_.twopc->commit(branches);
    committed = !err;
  } else {
    // One participant commits plainly; a failed transaction or ROLLBACK ends everywhere.
    const bool plain_commit = commit && !failed;
    auto replies = co_await exec::TwopcCoordinator::round(branches, plain_commit ? "COMMIT" : "ROLLBACK", all);
    if (plain_commit && !replies.empty()) {
      const auto& r = replies[0];
      committed = r.io_ok && !r.error && r.tag == "COMMIT";
      if (r.error) err = r.error;
      else if (!r.io_ok) err = SqlError::error(sqlstate::kConnectionFailure, "lost the connection to shard " + branches[0].shard + " during COMMIT");
    }
  }
  std::vector<backend::ServerLease> leases;
  std::vector<int> shards;
  for (auto& p : parked_) {
    services_.cluster.primary(p.shard).stats.xact_count++;
    leases.push_back(std::move(p.lease));
    shards.push_back(p.shard);
  }
  parked_.clear();
  std::optional<std::vector<int>> written;
  apply_sets(tx_.end_distributed(committed, written));
  if (committed && written) co_await learn_commit_positions(leases, shards);
  leases.clear();  // back to their pools
  if (std::exchange(tx_ran_ddl_, false) && committed && services_.relearn_key_types)
    co_await services_.relearn_key_types();  // the tables it created are visible now
  if (err) meter_.error(err->sqlstate);
  tag = commit && !failed ? "COMMIT" : "ROLLBACK";
  co_return err;
}

void ClientSession::drop_participants() {
  // Closing the connections rolls their transactions back; they are not reused.
  for (auto& p : parked_)
    if (p.lease) p.lease->broken = true;
  parked_.clear();
}

}  // namespace shardline::proxy::session
