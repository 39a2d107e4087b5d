#pragma once
// Tenants of a test on two shards that split 1024 logical shards evenly (the test configs'
// directory): where an integer tenant lives, the tenants found on a given shard, and ids that
// name one test run's rows.

#include <chrono>
#include <cstdint>

#include "router/sharding/shard_key.hpp"

namespace shardline::testing {

/// The physical shard (0 or 1) of integer tenant `tenant`.
inline int two_shard_of(std::int64_t tenant) {
  return router::logical_shard_of_int(tenant, 1024) * 2 / 1024;
}

/// The `skip`-th smallest positive tenant on `shard`.
inline std::int64_t two_shard_tenant(int shard, int skip = 0) {
  for (std::int64_t t = 1;; ++t)
    if (two_shard_of(t) == shard && skip-- == 0) return t;
}

/// A number no earlier run of this test has used (milliseconds since the epoch, then counting).
inline std::int64_t next_run_id() {
  static std::int64_t n = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch()).count() % 1000000000 * 100;
  return ++n;
}

}  // namespace shardline::testing
