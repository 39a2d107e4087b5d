#pragma once
// Turning the rows of shardline.directory into a DirectorySnapshot. Pure and separate from the
// catalog I/O because every reader (startup, the watcher) must apply the same checks: a
// directory that misses a logical shard or names a shard this proxy does not know would send
// queries nowhere, so it is refused and the previous snapshot stays in force.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "router/directory/directory_snapshot.hpp"

namespace shardline::control {

/// One row of shardline.directory.
struct DirectoryRow {
  int logical = 0;
  std::string shard;
  bool held = false;  ///< a reshard cutover holds it (shardline.directory_holds)
};

/// A pinned tenant (shardline.pins) or one an isolate's cutover holds (shardline.tenant_holds).
struct TenantRow {
  std::string tenant;
  std::string shard;
  bool held = false;
  bool pinned = true;
};

/// The snapshot for `rows` at `epoch`, with shard indexes in the order of `cfg.shards` (the
/// order pools and the YAML-seeded snapshot use). The rows must cover 0..logical_shards-1
/// exactly once and name only configured shards; otherwise CatalogError names the first bad
/// logical shard (missing, duplicated, out of range, or owned by an unknown shard), or the first
/// tenant pinned to an unknown shard.
std::shared_ptr<const router::DirectorySnapshot> directory_from_rows(std::uint64_t epoch,
                                                                     std::vector<DirectoryRow> rows,
                                                                     const config::Config& cfg,
                                                                     std::vector<TenantRow> tenants = {});

}  // namespace shardline::control
