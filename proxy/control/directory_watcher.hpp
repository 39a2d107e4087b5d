#pragma once
// Follows the live directory in the catalog: LISTENs on the channel the directory trigger
// notifies and, as a fallback for lost notifications, polls the epoch. Whenever the epoch
// differs from the last one delivered, it reads and validates the whole directory and hands the
// new snapshot to a callback. Runs on its own thread with its own libpq connection, reconnecting
// with exponential backoff when the catalog server goes away.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "config/config.hpp"
#include "router/directory/directory_snapshot.hpp"

namespace shardline::control {

struct DirectoryWatcherOptions {
  /// How often the epoch is read even without a notification.
  std::chrono::milliseconds poll_interval{1000};
  /// Reconnect delays: the first retry after `min_backoff`, doubling up to `max_backoff`.
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
  /// Bounds on connecting and on one query, so a hung server counts as gone.
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds query_timeout{10000};
  /// Told about every connection failure and every refused directory, on the watcher thread
  /// (they are also logged). The previous snapshot stays in force meanwhile.
  std::function<void(const std::string&)> on_error;
  /// When set, every check records in shardline.proxy_epochs that this proxy routes with the
  /// epoch delivered last (what a reshard cutover waits for).
  std::string proxy_id;
};

class DirectoryWatcher {
 public:
  using Callback = std::function<void(std::shared_ptr<const router::DirectorySnapshot>)>;

  /// Starts the thread. `known_epoch` is the epoch of the snapshot the caller already has (from
  /// Catalog::load_or_seed); `on_change` runs on the watcher thread, so it should only publish
  /// (e.g. post to the data plane); an exception from it is logged and does not stop watching.
  DirectoryWatcher(std::string conninfo, config::Config cfg, std::uint64_t known_epoch, Callback on_change,
                   DirectoryWatcherOptions options = {});
  /// stop()
  ~DirectoryWatcher();
  DirectoryWatcher(const DirectoryWatcher&) = delete;
  DirectoryWatcher& operator=(const DirectoryWatcher&) = delete;

  /// Wakes the thread (even mid-connect or mid-query) and joins it. Idempotent.
  void stop();

  /// Whether the thread holds a LISTENing connection right now (for SHOW/metrics and tests).
  bool connected() const { return connected_.load(); }
  /// The epoch of the last snapshot delivered (or `known_epoch`).
  std::uint64_t epoch() const { return epoch_.load(); }
  /// The catalog backend's process id while connected, else 0 (lets an operator find the session).
  int backend_pid() const { return backend_pid_.load(); }

 private:
  class Session;
  void run();
  void check(Session& session);
  void acknowledge(Session& session);
  void report(const std::string& message);

  std::string conninfo_;
  config::Config cfg_;
  Callback on_change_;
  DirectoryWatcherOptions options_;
  int wake_fd_ = -1;  ///< eventfd: stop() makes it readable; every wait in run() polls it
  std::atomic<bool> stopping_{false};
  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> epoch_;
  std::atomic<int> backend_pid_{0};
  std::uint64_t refused_epoch_ = 0;  ///< last epoch whose directory was invalid (reported once)
  bool has_refused_ = false;
  std::thread thread_;  ///< last: started once every other member is ready
};

}  // namespace shardline::control
