#pragma once
// Reads from the shards' catalogs what the sharding schema needs: the configured sharded
// tables' key types and positions (Catalog::load_key_types) and, with `sharding.auto_tables`,
// every table that has the key column on every shard plus the relations the home shard holds.
// Blocking (libpqxx): runs on the control plane only, at start and after DDL through the proxy.

#include <string>
#include <vector>

#include "config/config.hpp"
#include "router/sharding/learned_tables.hpp"

namespace shardline::control {

/// One shard's tables that have the key column: "schema.table" -> (information_schema
/// data_type, 0-based position of the key).
struct KeyColumn {
  std::string data_type;
  int position = 0;
};

/// Which of the per-shard key columns become auto tables: those present on every shard with a
/// supported type of one family (positions from `shards[home]`). Tables named in
/// sharding.tables or reference_tables are left out (explicit entries win). Every other table
/// is reported in `notes` with the reason it stays unsharded. Pure: unit-tested.
void choose_auto_tables(const config::Config& cfg, const std::vector<std::string>& shard_names,
                        const std::vector<std::map<std::string, KeyColumn>>& shards, std::size_t home,
                        router::LearnedTables& out, std::vector<std::string>& notes);

/// Everything above, read from the shards. Throws CatalogError naming the shard and the problem
/// (as Catalog::load_key_types does for the configured tables). Auto tables that cannot be
/// sharded are logged, not thrown: they stay unsharded.
router::LearnedTables learn_tables(const config::Config& cfg);

}  // namespace shardline::control
