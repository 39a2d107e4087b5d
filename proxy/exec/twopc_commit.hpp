#pragma once
// Two-phase commit of one transaction open on several shards (cross_shard_transactions: 2pc):
// PREPARE TRANSACTION on every participant in parallel, the decision written durably to
// shardline.twopc_log in the catalog, then COMMIT PREPARED in parallel. Any PREPARE failure
// rolls every participant back. After the decision is logged the transaction is committed
// whatever happens next: a participant the coordinator cannot reach is finished by the
// resolver (proxy/control/twopc_resolver.hpp) from the log.
//
// The gid is `shardline:<owner>:<n>`: the owner names this proxy instance (host:port:pid:start),
// so a resolver knows whose transaction it finds prepared and whether that owner is alive.

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proxy/backend/pool.hpp"
#include "proxy/protocol/sql_error.hpp"

namespace shardline::proxy::exec {

/// One participant: its server (inside the open transaction) and its shard's name.
struct TwopcBranch {
  backend::ServerConnection* server = nullptr;
  std::string shard;
};

/// Test-only fault points (env SHARDLINE_FAULT=<point>:<n>): the proxy kills itself with SIGKILL
/// at the n-th two-phase commit reaching that point, to test crash recovery.
enum class TwopcFault { None, AfterPrepare, AfterDecision };

class TwopcCoordinator {
 public:
  /// `catalog`: the pool of the catalog's server (the first shard's primary, the backend role).
  TwopcCoordinator(std::string owner, backend::Pool& catalog, int wait_ms);

  const std::string& owner() const { return owner_; }
  /// "shardline:<owner>:": every gid this instance makes starts with it.
  std::string gid_prefix() const { return "shardline:" + owner_ + ":"; }

  /// Commits the transaction open on every branch, all or nothing. nullopt: committed (every
  /// branch's connection is idle again, or marked broken). Else the error for the client; the
  /// transaction is rolled back everywhere (or, when the decision's fate is unknown, left to the
  /// resolver, which the error says).
  boost::asio::awaitable<std::optional<protocol::SqlError>> commit(std::vector<TwopcBranch>& branches);

  std::uint64_t committed() const { return committed_; }
  std::uint64_t aborted() const { return aborted_; }

  struct Reply {
    bool io_ok = true;
    std::optional<protocol::SqlError> error;
    std::string tag;  ///< the last CommandComplete tag
  };
  /// Sends `sql` to every branch marked in `only`, then reads each one's reply to
  /// ReadyForQuery; a connection that fails is marked broken.
  static boost::asio::awaitable<std::vector<Reply>> round(std::vector<TwopcBranch>& branches, const std::string& sql,
                                                          const std::vector<bool>& only);

 private:
  /// Writes the commit decision; true if it is logged, false if it is not (aborted by a
  /// resolver, or this instance's heartbeat is stale), nullopt if the outcome is unknown.
  boost::asio::awaitable<std::optional<bool>> log_decision(const std::string& gid,
                                                           const std::vector<TwopcBranch>& branches);
  void fault_point(TwopcFault at);

  std::string owner_;
  backend::Pool& catalog_;
  int wait_ms_;
  std::uint64_t next_ = 0;
  std::uint64_t committed_ = 0;
  std::uint64_t aborted_ = 0;
  TwopcFault fault_ = TwopcFault::None;
  int fault_after_ = 0;
  int fault_seen_ = 0;
};

}  // namespace shardline::proxy::exec
