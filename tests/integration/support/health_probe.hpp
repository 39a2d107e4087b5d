#pragma once
// What the reliability tests watch while they mistreat the proxy: a healthy client querying
// throughout (its worst delay and any error), and the proxy's pools and clients as the admin
// console reports them, which must come back to their baseline once the mistreatment ends.

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace shardline::testing {

/// A libpq client running `sql` back to back on its own thread, from construction to stop().
class HealthyClient {
 public:
  HealthyClient(std::string conninfo, std::string sql = "SELECT 1");
  ~HealthyClient();
  HealthyClient(const HealthyClient&) = delete;
  HealthyClient& operator=(const HealthyClient&) = delete;
  void stop();
  /// The longest a statement (or a reconnect) took, in ms.
  double worst_ms() const { return worst_us_.load() / 1000.0; }
  int statements() const { return statements_.load(); }
  /// How many statements (or reconnects) took over 100 ms.
  int slow() const { return slow_.load(); }
  /// Errors seen (statement failures, lost connections), first ones kept.
  std::vector<std::string> errors() const;

 private:
  void run();
  std::string conninfo_;
  std::string sql_;
  std::atomic<bool> running_{true};
  std::atomic<long> worst_us_{0};
  std::atomic<int> statements_{0};
  std::atomic<int> slow_{0};
  mutable std::mutex mu_;
  std::vector<std::string> errors_;
  std::thread thread_;
};

/// The delay a healthy client may see: 100 ms (the proxy's promise), or on a machine so loaded
/// that the same client alone already waited longer (`alone_ms`, measured before the test's
/// load), twice that: the test then says so instead of blaming the proxy for the scheduler.
double allowed_delay_ms(double alone_ms);
/// The worst delay of a HealthyClient running `sql` alone for `how_long`.
double worst_delay_alone_ms(const std::string& conninfo, const std::string& sql, std::chrono::milliseconds how_long);

/// Totals over SHOW POOLS and the number of SHOW CLIENTS rows.
struct PoolUsage {
  int cl_active = 0;
  int cl_waiting = 0;
  int sv_active = 0;
  int clients = 0;
  std::string text() const;
  bool operator==(const PoolUsage&) const = default;
};

/// Reads the usage through the admin console at `admin_conninfo` (its own connection counts
/// as one client); throws std::runtime_error if it cannot.
PoolUsage pool_usage(const std::string& admin_conninfo);

/// Polls until nothing is active or waiting and `clients` clients remain, or `timeout` passes;
/// returns the last usage read.
PoolUsage wait_pools_idle(const std::string& admin_conninfo, int clients, std::chrono::milliseconds timeout);

}  // namespace shardline::testing
