#pragma once
// The proxy's metrics, owned by no session: sessions update them on the hot path, the admin
// console (SHOW STATS, SHOW TENANTS), /metrics, the JSON API and the dashboard read them.
//
// Updates are relaxed atomic increments of slots resolved once (per (shard, role) at startup),
// so they cost a few uncontended atomic adds per query, format no string and look nothing up by
// name; they stay correct when the data plane runs on several threads. A reader sums what it
// needs at read time; values are monotonic, not a consistent snapshot across counters (the same
// contract as Prometheus client libraries).

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "proxy/admin/tenant_tracker.hpp"
#include "proxy/control/reshard_status.hpp"

namespace shardline::proxy::admin {

/// A monotonic counter.
class Counter {
 public:
  void add(std::uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

/// A latency histogram with fixed bucket bounds (Prometheus `le`, seconds), in nanoseconds.
class Histogram {
 public:
  /// Upper bounds in seconds; the implicit last bucket is +Inf.
  static constexpr std::array<double, 14> kBounds{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                  0.025,  0.05,    0.1,    0.25,  0.5,    1.0,  5.0};
  /// Records `n` observations of `ns` nanoseconds each.
  void observe(std::uint64_t ns, std::uint64_t n = 1);
  /// Cumulative count per bound (Prometheus buckets), the last entry being +Inf (= count).
  std::array<std::uint64_t, kBounds.size() + 1> cumulative() const;
  std::uint64_t count() const { return count_.value(); }
  std::uint64_t sum_ns() const { return sum_ns_.value(); }

 private:
  std::array<Counter, kBounds.size() + 1> buckets_;  ///< not cumulative: one per range
  Counter count_;
  Counter sum_ns_;
};

/// What is counted for one pool, i.e. one (shard, role).
struct PoolMetrics {
  Counter queries;       ///< statements forwarded to this pool's servers
  Histogram duration;    ///< from forwarding a request to its ReadyForQuery, per query
};

/// Errors by SQLSTATE without a map on the hot path: a fixed open-addressing table whose keys
/// (the 5 characters packed into an integer) are claimed with a compare-and-swap. SQLSTATEs are
/// a small closed set; once the table is full, further new codes are counted under "other".
class ErrorCounters {
 public:
  static constexpr std::size_t kSlots = 256;
  void count(std::string_view sqlstate);
  /// (sqlstate, count) for every code seen, "other" last if any overflowed.
  std::vector<std::pair<std::string, std::uint64_t>> snapshot() const;

 private:
  std::array<std::atomic<std::uint32_t>, kSlots> keys_{};  ///< 0: free
  std::array<Counter, kSlots> counts_;
  Counter overflow_;
};

/// Progress of one reshard job as the job runner publishes it (read by /metrics and the API).
using ReshardProgress = shardline::control::ReshardStatus;

class MetricsRegistry {
 public:
  /// Slots for every pool of `cfg` (the set of shards and replicas is fixed while running).
  explicit MetricsRegistry(const config::Config& cfg);

  /// admin.metrics: false turns every hot-path update into one relaxed load and a branch.
  bool enabled() const { return enabled_; }
  PoolMetrics& pool(int shard, int replica) {
    return pools_[std::size_t(shard)][std::size_t(replica + 1)];
  }
  const PoolMetrics& pool(int shard, int replica) const {
    return pools_[std::size_t(shard)][std::size_t(replica + 1)];
  }
  ErrorCounters& errors() { return errors_; }
  const ErrorCounters& errors() const { return errors_; }
  TenantTracker& tenants() { return tenants_; }
  const TenantTracker& tenants() const { return tenants_; }

  /// Reshard jobs, replaced whole by whoever runs them (empty until a job ran).
  void publish_reshards(std::shared_ptr<const std::vector<ReshardProgress>> jobs) {
    reshards_.store(std::move(jobs), std::memory_order_release);
  }
  std::shared_ptr<const std::vector<ReshardProgress>> reshards() const {
    return reshards_.load(std::memory_order_acquire);
  }

 private:
  bool enabled_;
  /// [shard][0] primary, [shard][1 + r] replica r. deque: slots never move.
  std::vector<std::deque<PoolMetrics>> pools_;
  ErrorCounters errors_;
  TenantTracker tenants_;
  std::atomic<std::shared_ptr<const std::vector<ReshardProgress>>> reshards_;
};

}  // namespace shardline::proxy::admin
