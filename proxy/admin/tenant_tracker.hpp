#pragma once
// Per-tenant query counts and time in bounded memory (SHOW TENANTS, /api/tenants, the
// dashboard, the hot-tenant log line): a Space-Saving top-K of tenant keys plus every shard's
// total, so a tenant's share of its shard's queries can be read at any time.
//
// One mutex, taken once per completed request: uncontended while the data plane is one thread
// (readers are rare). The sketch's memory is fixed by its capacity, whatever the number of
// distinct tenants.

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "proxy/admin/space_saving.hpp"

namespace shardline::proxy::admin {

/// One tenant as reported: `shard` is the physical shard its last query went to.
struct TenantRow {
  std::string tenant;
  int shard = -1;
  int logical = -1;
  std::uint64_t queries = 0;
  std::uint64_t error = 0;   ///< queries may overstate the truth by at most this much
  double total_ms = 0;
  double share = 0;          ///< queries / all queries of its shard, 0..1
};

class TenantTracker {
 public:
  TenantTracker(std::size_t capacity, int shards);

  /// `n` queries that took `ns` nanoseconds together on `shard`; `tenant` empty when no single
  /// tenant decided the route (they still count towards the shard's total).
  void record(int shard, std::string_view tenant, int logical, std::uint64_t n, std::uint64_t ns);

  /// The hottest `k` tenants, most queries first.
  std::vector<TenantRow> top(std::size_t k) const;
  /// Tenants whose share of their shard's queries exceeds `share` (once the shard has served
  /// `min_queries`) and that were not above it at the previous call: each crossing is reported
  /// once, until the tenant falls back below.
  std::vector<TenantRow> newly_hot(double share, std::uint64_t min_queries);
  std::uint64_t shard_total(int shard) const;
  std::size_t capacity() const { return sketch_.capacity(); }

 private:
  mutable std::mutex mu_;
  SpaceSaving sketch_;
  std::vector<std::uint64_t> shard_totals_;
  /// Physical shard of each logical shard's last query (the sketch tags tenants with their
  /// logical shard); bounded by the number of logical shards.
  std::vector<int> shard_of_logical_;
  std::unordered_set<std::string> hot_;
};

}  // namespace shardline::proxy::admin
