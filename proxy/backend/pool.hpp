#pragma once
// Server connections for one (shard, role): a primary or one replica. Clients queue for a
// connection with a deadline; idle connections are reused newest-first (warm caches) and closed
// after the idle timeout; broken ones are discarded.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "config/config.hpp"
#include "proxy/backend/async_event.hpp"
#include "proxy/backend/server_connection.hpp"
#include "proxy/protocol/sql_error.hpp"

namespace shardline::proxy::backend {

class Cluster;

struct PoolStats {
  std::uint64_t xact_count = 0;
  std::uint64_t query_count = 0;
  std::uint64_t bytes_received = 0;  ///< from clients, forwarded to this pool's servers
  std::uint64_t bytes_sent = 0;      ///< from this pool's servers to clients
  std::uint64_t wait_count = 0;      ///< acquisitions that had to queue
  std::uint64_t wait_us_total = 0;
  std::uint64_t connects = 0;
  std::uint64_t connect_failures = 0;
};

class Pool;

/// A server lent to a session; returns itself to its pool when destroyed.
class ServerLease {
 public:
  ServerLease() = default;
  explicit ServerLease(std::unique_ptr<ServerConnection> c) : conn_(std::move(c)) {}
  ServerLease(ServerLease&&) noexcept = default;
  ServerLease& operator=(ServerLease&& o) noexcept {
    reset();
    conn_ = std::move(o.conn_);
    return *this;
  }
  ~ServerLease() { reset(); }
  void reset();
  ServerConnection* operator->() const { return conn_.get(); }
  ServerConnection& operator*() const { return *conn_; }
  ServerConnection* get() const { return conn_.get(); }
  explicit operator bool() const { return conn_ != nullptr; }

 private:
  std::unique_ptr<ServerConnection> conn_;
};

class Pool {
 public:
  Pool(Cluster& cluster, std::string shard, int replica, config::Endpoint endpoint);

  /// A server, waiting at most until `deadline`. Errors: 53300 when the wait times out, 08006
  /// when the server cannot be reached (or could not be, less than server_login_retry_ms ago).
  boost::asio::awaitable<ServerLease> acquire(Clock::time_point deadline, protocol::SqlError& err);
  void release(std::unique_ptr<ServerConnection> conn);
  /// A CancelRequest for server `server_id` ended: `delivered` when the server confirmed it
  /// (closed the cancel connection), else the signal may still come and the connection is not
  /// reused. A connection parked by release() for its cancels goes back once none is left.
  void cancel_finished(std::uint64_t server_id, bool delivered);
  /// Closes idle connections past the idle timeout or their lifetime.
  void sweep(Clock::time_point now);
  /// Closes every idle connection (shutdown, RELOAD of endpoints).
  void close_idle();
  /// A connection of this pool could not be opened or died under a client: reads avoid it
  /// for kFailureQuarantine, long before the lag monitor's next round notices.
  void note_failure() { quarantined_at_ = Clock::now(); }
  bool failed_recently(Clock::time_point now) const {
    return quarantined_at_ && now - *quarantined_at_ < kFailureQuarantine;
  }
  static constexpr std::chrono::milliseconds kFailureQuarantine{2000};

  const std::string& shard() const { return shard_; }
  int replica() const { return replica_; }
  std::string role() const { return replica_ < 0 ? "primary" : "replica" + std::to_string(replica_); }
  std::string name() const { return shard_ + "/" + role(); }
  const config::Endpoint& endpoint() const { return endpoint_; }

  int active() const { return active_; }
  int idle() const { return int(idle_.size()); }
  int total() const { return total_; }
  int waiting() const { return int(waiters_.size()); }
  Clock::duration longest_wait(Clock::time_point now) const;
  PoolStats stats;
  /// Every connection this pool owns, idle or lent (for SHOW SERVERS).
  const std::unordered_set<ServerConnection*>& servers() const { return all_; }

 private:
  struct Waiter {
    boost::asio::steady_timer* timer;
    std::unique_ptr<ServerConnection> handed;  ///< a released connection given straight to it
    bool may_connect = false;                  ///< a slot freed up: try to open a connection
    Clock::time_point since;
  };
  void wake_one_for_slot();
  /// Within pool.server_login_retry_ms of a failed connect or login: true, with the error that
  /// tells the client so (no new connection is tried meanwhile).
  bool login_retry_refusal(protocol::SqlError& err) const;
  void discard(std::unique_ptr<ServerConnection> conn);

  Cluster& cluster_;
  std::string shard_;
  int replica_;
  config::Endpoint endpoint_;
  std::vector<std::unique_ptr<ServerConnection>> idle_;
  std::deque<Waiter*> waiters_;
  int active_ = 0;
  int total_ = 0;  ///< idle + active + connecting
  std::unordered_set<ServerConnection*> all_;
  std::optional<Clock::time_point> quarantined_at_;  ///< note_failure(): reads avoid this pool a while
  /// Released while a cancel for them was in flight: lent to nobody until it is delivered.
  std::vector<std::unique_ptr<ServerConnection>> cancelling_;
  std::string last_failure_;  ///< why the last connect or login failed ("" once one succeeds)
  Clock::time_point failed_at_;
};

}  // namespace shardline::proxy::backend
