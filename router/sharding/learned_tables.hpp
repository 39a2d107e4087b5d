#pragma once
// What the control plane read from the shards' catalogs for the sharding schema: the key
// column's type and position for sharded tables, and, with `sharding.auto_tables`, which
// tables have the key column and which relations exist at all.

#include <map>
#include <optional>
#include <set>
#include <string>

namespace shardline::router {

struct LearnedTables {
  /// Table name (as configured, or "schema.table" for an auto table) -> key type name
  /// (key_type_names.hpp). A configured `type:` wins over this.
  std::map<std::string, std::string> key_types;
  /// Same names -> the key column's 0-based position among the table's columns.
  std::map<std::string, int> key_positions;
  /// auto_tables: "schema.table" of every table that has the key column, with a supported type
  /// of one family, on every shard's primary. Their types are in `key_types`.
  std::set<std::string> auto_tables;
  /// auto_tables: every relation on the home shard's primary, as "schema.name"; unset when not
  /// learned. A relation absent from it is one the proxy has not seen yet (see
  /// ShardingSchema::sharded).
  std::optional<std::set<std::string>> relations;
};

}  // namespace shardline::router
