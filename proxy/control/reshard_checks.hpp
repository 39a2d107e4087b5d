#pragma once
// What a reshard job checks before it starts (SPEC.md section 8), each failure a ReshardRefused
// naming the shard or table: wal_level=logical on source and target; every sharded table has a
// primary key or replica identity that includes the sharding key (a publication row filter on
// the key needs it), exists on the target with the same columns and primary key, and the
// target holds none of the rows to move yet.

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "proxy/control/reshard_sql.hpp"

namespace shardline::control {

struct ReshardRefused : std::runtime_error {
  ReshardRefused(std::string sqlstate, const std::string& message) : std::runtime_error(message), sqlstate(std::move(sqlstate)) {}
  std::string sqlstate;
};

/// The sharded tables that exist (as learned from the home shard), with their key columns.
std::vector<ReshardTable> reshard_tables(const config::Config& cfg);

/// Runs every check for moving the rows `filter` selects from `source` to `target`; returns the
/// tables to move.
std::vector<ReshardTable> check_reshard(const config::Config& cfg, const std::string& source, const std::string& target,
                                        const std::function<std::string(const ReshardTable&)>& filter);

}  // namespace shardline::control
