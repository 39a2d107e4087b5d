#pragma once
// What the router decided for one request: where it runs and how the replies are combined.
// Plans are plain values; the proxy's exec layer carries them out and the admin command
// SHOW ROUTE prints explain().

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "router/plan/merge_plan.hpp"

namespace shardline::router {

enum class RouteKind {
  Any,        ///< touches no table: the session's bound shard, else the home shard
  Single,     ///< one physical shard
  Scatter,    ///< a read on several shards; rows concatenated, counts summed
  Broadcast,  ///< a write (or DDL) on several shards, all-or-nothing
  Split,      ///< a multi-row INSERT cut into one INSERT per shard
  Refuse,     ///< cannot be done correctly: an error, never a wrong answer
};

/// How Plan::tenant's bytes are to be read: as text, or as the binary form of the key's type.
enum class TenantFormat : unsigned char { Text, BinaryInt, BinaryUuid, BinaryText };

/// An aggregate the scatter path can combine exactly (one output column each).
enum class Aggregate { Count, Sum, Min, Max };

struct RouteError {
  std::string sqlstate;
  std::string message;
};

/// One shard's part of a split INSERT; `rows` are the original VALUES row indices it holds.
struct ShardPart {
  int shard = 0;
  std::string sql;
  std::vector<int> rows;
};

struct Plan {
  RouteKind kind = RouteKind::Any;
  std::vector<int> shards;   ///< physical shard indices, ascending
  /// The directory epoch `shards` were read from: a plan is valid only while the directory is
  /// (a reshard's cutover moves logical shards to other physical ones at a new epoch).
  std::uint64_t epoch = 0;
  /// The logical shards a Single plan is confined to by its tenant keys or hint (ascending,
  /// distinct). Empty when the statement is not tenant-routed (unsharded or reference tables,
  /// no table, no key): then it may see, or write, anything on its shard.
  std::vector<int> logical;
  bool writes = false;
  /// Broadcast to keep reference tables equal: the command tag is one shard's, not the sum.
  bool same_rows_everywhere = false;
  bool ddl = false;
  RouteError error;          ///< for Refuse
  std::vector<ShardPart> parts;  ///< for Split
  /// Scatter of `SELECT agg(...), ...` without GROUP BY: how to combine each column.
  std::vector<Aggregate> aggregates;
  /// Scatter reads: how the shards' rows become one database's answer (shared with the cached
  /// template). Null: rows concatenated (no ORDER BY, LIMIT, aggregate...).
  std::shared_ptr<const MergePlan> merge;
  std::string reason;        ///< why: which key/hint/rule decided (for explain)
  /// The one tenant a Single plan serves, when one key value (or a hint) decided it (its logical
  /// shard is then logical[0]): the key as sent, a view into the template, the hint or the Bind
  /// message, so valid only while those are. Metrics count hot tenants by it; empty when several
  /// keys or none decided.
  std::string_view tenant;
  TenantFormat tenant_format = TenantFormat::Text;

  std::string explain(const std::vector<std::string>& shard_names) const;
};

}  // namespace shardline::router
