#pragma once
// The SQL a reshard job runs on the shards, as text built from the sharded tables: the
// expression that computes a row's logical shard inside PostgreSQL (publication row filters,
// verification, cleanup), the write fence installed on a source shard, and the object names of
// one job. Pure (no I/O), so the expression can be tested against satisfies_hash_partition.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shardline::control {

/// One sharded table as a job sees it.
struct ReshardTable {
  std::string schema;
  std::string table;
  std::string key;       ///< the sharding key column
  std::string key_type;  ///< normalized (key_type_names.hpp): smallint, integer, bigint, text, uuid
  /// "schema"."table", quoted.
  std::string qualified() const;
};

/// An immutable SQL expression of built-in functions only (what a publication row filter
/// allows) equal to PostgreSQL's hash-partition remainder of `value_sql` (an expression of the
/// key's type) for MODULUS `modulus`: hash_combine64(0, <type>extended(value, seed)) mod modulus,
/// with the unsigned 64-bit arithmetic done in numeric. The result is numeric.
std::string logical_shard_sql(std::string_view value_sql, std::string_view key_type, int modulus);

/// The predicate selecting exactly the rows of `t` in logical shard `logical`.
std::string logical_filter_sql(const ReshardTable& t, int modulus, int logical);

/// The predicate selecting exactly one tenant's rows: `key = '<tenant>'::<type>`.
std::string tenant_filter_sql(const ReshardTable& t, std::string_view tenant);

/// Per table, count and an order-independent checksum (sum of the rows' text hashes) of the rows
/// matching `filter`: one row, two numeric columns as text.
std::string checksum_sql(const ReshardTable& t, std::string_view filter);

/// Two-int advisory lock class of the cutover fence (the second int is the logical shard).
inline constexpr int kFenceLockClass = 0x53484c46;  // "SHLF"

/// Creates (idempotently) the fence objects every shard a job touches needs: schema shardline,
/// shardline.fence (logical shards that moved away: writes to them are refused) and
/// shardline.reshard_marker (catch-up markers, replicated with the job's publication).
std::string fence_schema_sql();

/// The fence check function with `moving` as the logical shards a cutover may be draining:
/// writes to them take a shared advisory lock (kFenceLockClass, l) that the cutover's exclusive
/// lock excludes; writes to a fenced logical shard are refused (SQLSTATE 40001).
std::string fence_check_sql(const std::vector<int>& moving);

/// The row trigger function and trigger of `t` calling the fence check for OLD and NEW keys.
std::string fence_trigger_sql(const ReshardTable& t, int modulus);

/// Names of one job's replication objects (publication, subscription, slot).
std::string job_object_name(std::int64_t job);

/// SQL string literal of `s` (standard_conforming_strings on, as on every supported server).
std::string sql_literal(std::string_view s);
/// SQL identifier of `s`, double-quoted.
std::string sql_ident(std::string_view s);

}  // namespace shardline::control
