#include "proxy/exec/twopc_commit.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>

#include "proxy/control/twopc_resolution.hpp"
#include "proxy/exec/server_io.hpp"
#include "proxy/protocol/frame_reader.hpp"
#include "proxy/protocol/message_writer.hpp"

namespace shardline::proxy::exec {

using protocol::SqlError;
namespace sqlstate = protocol::sqlstate;

namespace {

std::string names_of(const std::vector<TwopcBranch>& branches, const std::vector<bool>& which, bool value) {
  std::string out;
  for (std::size_t i = 0; i < branches.size(); ++i)
    if (which[i] == value) out += (out.empty() ? "" : ", ") + branches[i].shard;
  return out;
}

}  // namespace

TwopcCoordinator::TwopcCoordinator(std::string owner, backend::Pool& catalog, int wait_ms)
    : owner_(std::move(owner)), catalog_(catalog), wait_ms_(wait_ms) {
  if (const char* f = std::getenv("SHARDLINE_FAULT")) {
    std::string_view spec(f);
    const auto colon = spec.find(':');
    const auto point = spec.substr(0, colon);
    fault_after_ = colon == std::string_view::npos ? 1 : std::atoi(std::string(spec.substr(colon + 1)).c_str());
    if (point == "after_prepare") fault_ = TwopcFault::AfterPrepare;
    else if (point == "after_decision") fault_ = TwopcFault::AfterDecision;
    if (fault_ != TwopcFault::None)
      spdlog::warn("SHARDLINE_FAULT={}: this proxy kills itself at that point of a two-phase commit (tests only)", f);
  }
}

void TwopcCoordinator::fault_point(TwopcFault at) {
  if (fault_ != at || ++fault_seen_ < fault_after_) return;
  spdlog::warn("SHARDLINE_FAULT: killing the proxy {}", at == TwopcFault::AfterPrepare ? "after PREPARE" : "after the decision");
  std::raise(SIGKILL);
}

boost::asio::awaitable<std::vector<TwopcCoordinator::Reply>> TwopcCoordinator::round(
    std::vector<TwopcBranch>& branches, const std::string& sql, const std::vector<bool>& only) {
  // Written to every branch first, then read: the shards work in parallel.
  std::vector<Reply> replies(branches.size());
  const std::string msg = query_message(sql);
  for (std::size_t i = 0; i < branches.size(); ++i) {
    if (!only[i] || branches[i].server->broken) {
      replies[i].io_ok = only[i] ? false : true;
      continue;
    }
    boost::system::error_code ec;
    co_await branches[i].server->stream().write_all(msg, ec);
    if (ec) replies[i].io_ok = false;
  }
  for (std::size_t i = 0; i < branches.size(); ++i) {
    if (!only[i] || !replies[i].io_ok) continue;
    for (;;) {
      auto m = co_await next_message(*branches[i].server);
      if (!m) {
        replies[i].io_ok = false;
        break;
      }
      const std::string_view body = std::string_view(*m).substr(5);
      if ((*m)[0] == 'E' && !replies[i].error) {
        replies[i].error = protocol::parse_error_fields(body);
        replies[i].error->severity = "ERROR";
      } else if ((*m)[0] == 'C') {
        replies[i].tag = std::string(body.substr(0, body.find('\0')));
      } else if ((*m)[0] == 'Z') {
        break;
      }
    }
    if (!replies[i].io_ok) branches[i].server->broken = true;
  }
  co_return replies;
}

boost::asio::awaitable<std::optional<bool>> TwopcCoordinator::log_decision(const std::string& gid,
                                                                           const std::vector<TwopcBranch>& branches) {
  SqlError err;
  auto lease = co_await catalog_.acquire(backend::Clock::now() + std::chrono::milliseconds(wait_ms_), err);
  if (!lease) {
    spdlog::warn("2pc {}: no catalog connection for the decision ({}: {})", gid, err.sqlstate, err.message);
    co_return false;  // nothing was written: the transaction is rolled back
  }
  std::string shards = "{";
  for (std::size_t i = 0; i < branches.size(); ++i) shards += (i ? "," : "") + branches[i].shard;
  shards += "}";
  // Only while this instance's heartbeat is fresh: a resolver aborts the undecided transactions
  // of owners whose heartbeat is stale, and the gid's primary key settles a race with it.
  const std::string sql = fmt::format(
      "INSERT INTO shardline.twopc_log (gid, shards, state, owner) SELECT {}, {}::text[], 'committing', {} "
      "WHERE EXISTS (SELECT 1 FROM shardline.twopc_owners WHERE owner = {} AND heartbeat > now() - interval '{} "
      "seconds') ON CONFLICT (gid) DO NOTHING",
      quote_literal(gid), quote_literal(shards), quote_literal(owner_), quote_literal(owner_),
      control::kOwnerLeaseSeconds);
  std::optional<SqlError> qerr;
  boost::system::error_code ec;
  co_await lease->stream().write_all(query_message(sql), ec);
  if (ec) {
    lease->broken = true;
    co_return false;  // not sent
  }
  std::string tag;
  for (;;) {
    auto m = co_await next_message(*lease);
    if (!m) {
      lease->broken = true;
      co_return std::nullopt;  // sent, outcome unknown
    }
    const std::string_view body = std::string_view(*m).substr(5);
    if ((*m)[0] == 'E') qerr = protocol::parse_error_fields(body);
    else if ((*m)[0] == 'C') tag = std::string(body.substr(0, body.find('\0')));
    else if ((*m)[0] == 'Z') break;
  }
  if (qerr) {
    spdlog::warn("2pc {}: writing the decision failed: {}: {}", gid, qerr->sqlstate, qerr->message);
    co_return false;
  }
  co_return tag == "INSERT 0 1";
}

boost::asio::awaitable<std::optional<SqlError>> TwopcCoordinator::commit(std::vector<TwopcBranch>& branches) {
  const std::string gid = gid_prefix() + std::to_string(++next_);
  const std::vector<bool> all(branches.size(), true);
  auto prepared = co_await round(branches, "PREPARE TRANSACTION " + quote_literal(gid), all);
  std::vector<bool> ok(branches.size());
  std::optional<SqlError> first;
  for (std::size_t i = 0; i < branches.size(); ++i) {
    const auto& r = prepared[i];
    ok[i] = r.io_ok && !r.error && r.tag == "PREPARE TRANSACTION";
    if (ok[i] || first) continue;
    if (r.error) {
      first = *r.error;
      if (first->sqlstate == "55000" && first->message.find("disabled") != std::string::npos)
        first->hint = fmt::format("set max_prepared_transactions > 0 on shard {} (cross_shard_transactions: 2pc)",
                                  branches[i].shard);
    } else if (!r.io_ok) {
      first = SqlError::error(sqlstate::kConnectionFailure, "lost the connection to the shard during PREPARE TRANSACTION");
    } else {  // ROLLBACK: the transaction had failed there
      first = SqlError::error("40000", "the transaction had failed on this shard and was rolled back");
    }
    first->detail = (first->detail.empty() ? "" : first->detail + "; ") + "on shard " + branches[i].shard +
                    "; the transaction was rolled back on every shard";
  }
  if (!first) fault_point(TwopcFault::AfterPrepare);
  std::optional<bool> logged = false;
  if (!first) logged = co_await log_decision(gid, branches);
  if (!first && !logged) {
    spdlog::warn("2pc {}: outcome unknown (the decision write did not answer); the resolver finishes it", gid);
    co_return SqlError::error(sqlstate::kConnectionFailure,
                              fmt::format("lost the catalog connection while committing transaction {}: whether it "
                                          "committed is decided by the resolver from shardline.twopc_log",
                                          gid));
  }
  if (first || !*logged) {
    // Prepared branches are rolled back now; a broken one is left to the resolver (no decision
    // is logged, or 'aborting' is, so it rolls back too).
    if (std::find(ok.begin(), ok.end(), true) != ok.end())
      co_await round(branches, "ROLLBACK PREPARED " + quote_literal(gid), ok);
    ++aborted_;
    if (!first)
      first = SqlError::error("40001", fmt::format("transaction {} could not be committed: its decision was not "
                                                   "logged (this proxy's heartbeat in shardline.twopc_owners is "
                                                   "stale or a resolver aborted it); rolled back on shard(s) {}",
                                                   gid, names_of(branches, ok, true)));
    co_return first;
  }
  fault_point(TwopcFault::AfterDecision);
  // Committed: a branch that fails COMMIT PREPARED (lost, or already finished by a resolver)
  // is completed from the log.
  auto done = co_await round(branches, "COMMIT PREPARED " + quote_literal(gid), all);
  for (std::size_t i = 0; i < branches.size(); ++i)
    if (done[i].error)
      spdlog::warn("2pc {}: COMMIT PREPARED on shard {}: {}: {} (the resolver completes it)", gid, branches[i].shard,
                   done[i].error->sqlstate, done[i].error->message);
  ++committed_;
  co_return std::nullopt;
}

}  // namespace shardline::proxy::exec
