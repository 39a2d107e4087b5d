#pragma once
// The replica lag monitor (SPEC section 7): every poll_interval_ms it asks each shard's primary
// for pg_current_wal_insert_lsn() (the position that decides visibility: with asynchronous
// commit a commit record is inserted, and visible, before it is written) and each replica for
// its replay position, recovery state and pause state, and publishes an immutable
// ReplicaSnapshot. It is control plane: libpq on its own thread, never on an I/O thread; the data
// plane only reads the snapshots it publishes.
//
// All servers are probed at once over persistent non-blocking libpq connections multiplexed
// with poll(), so a dead or hung server costs the others nothing. A round publishes whatever has
// arrived when its interval is over; a server that has not answered yet keeps its last figures,
// aged (lag only grows while it is silent). Health is decided apart from the poll interval
// (NodeHealth): a replica is taken out when its probe has gone unanswered for
// replicas.health_timeout_ms, or at once when a probe fails or its connection breaks; then the
// connection is closed and re-opened. A primary is never reported unusable for being slow.
// (Only a host name whose DNS lookup hangs can still stall a round: libpq resolves names
// synchronously in PQconnectStart. Configured IP addresses never do.)

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "proxy/control/lag_estimator.hpp"
#include "proxy/control/node_health.hpp"
#include "proxy/control/replica_state.hpp"

namespace shardline::control {

class LagMonitor {
 public:
  using Publish = std::function<void(std::shared_ptr<const ReplicaSnapshot>)>;

  /// Checks the config (poll_interval_ms > 0, else std::invalid_argument); starts nothing.
  /// `publish` runs on the monitor thread once per round, so it should only swap a pointer; an
  /// exception from it is logged and does not stop the monitor.
  LagMonitor(config::Config cfg, Publish publish);
  /// stop()
  ~LagMonitor();
  LagMonitor(const LagMonitor&) = delete;
  LagMonitor& operator=(const LagMonitor&) = delete;

  /// Starts the monitor thread; a second call is a std::logic_error.
  void start();
  /// Wakes the thread wherever it waits, closes its connections and joins it (well under a
  /// second). Idempotent; a stopped monitor cannot be started again.
  void stop();

  /// The last snapshot published (nullptr before the first round ends). Safe from any thread.
  std::shared_ptr<const ReplicaSnapshot> latest() const { return latest_.load(); }

  /// replicas.health_timeout_ms (default max(1 s, 3 poll intervals)): how long a connection
  /// attempt or a probe may go unanswered before the replica is out and the connection closed.
  std::chrono::milliseconds health_timeout() const { return health_timeout_; }

 private:
  struct Server;

  enum class Logged;

  void run();
  void begin_round();
  void service(std::chrono::steady_clock::time_point until, bool until_answered);
  void end_round();
  std::shared_ptr<const ReplicaSnapshot> build_snapshot();

  void start_connect(Server& s);
  void advance_connect(Server& s);
  void send_probe(Server& s);
  void flush(Server& s);
  void read_answer(Server& s);
  void fail(Server& s, std::string message);
  void give_up(Server& s, std::string message);
  void note_health(Server& s, Logged state, const std::string& why);

  config::Config cfg_;
  Publish publish_;
  std::chrono::milliseconds interval_;
  std::chrono::milliseconds health_timeout_;
  std::vector<std::unique_ptr<Server>> servers_;  ///< per shard: the primary, then its replicas
  std::vector<LagEstimator> estimators_;          ///< per shard, in config order
  bool collecting_ = false;  ///< inside a round, before its snapshot is built
  std::uint64_t generation_ = 0;
  int wake_fd_ = -1;  ///< eventfd: stop() makes it readable; every wait polls it
  std::atomic<bool> stopping_{false};
  std::atomic<std::shared_ptr<const ReplicaSnapshot>> latest_;
  std::thread thread_;
};

}  // namespace shardline::control
