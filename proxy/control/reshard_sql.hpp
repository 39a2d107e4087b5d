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

/// The predicate selecting exactly one tenant's rows: `key = '<tenant>'::<type>` (`tenant` in
/// its canonical text, tenant_key.hpp); `(false)` when it is no key of `t`'s type.
std::string tenant_filter_sql(const ReshardTable& t, std::string_view tenant);

/// `pinned` (canonical tenant texts) that are values of `t`'s key type, in the canonical
/// text of that type; the others cannot be keys of `t`.
std::vector<std::string> tenants_of_type(const ReshardTable& t, const std::vector<std::string>& pinned);

/// The predicate of a MOVE of `logical`: its rows except those of tenants pinned elsewhere
/// (their rows live where the pin says and stay there). Only immutable built-ins and
/// constants, as a publication row filter requires.
std::string move_filter_sql(const ReshardTable& t, int modulus, int logical, const std::vector<std::string>& pinned);

/// Per table, count and an order-independent checksum (sum of the rows' text hashes) of the rows
/// matching `filter`: one row, two numeric columns as text.
std::string checksum_sql(const ReshardTable& t, std::string_view filter);

/// Two-int advisory lock class of the cutover fence (the second int is the logical shard).
inline constexpr int kFenceLockClass = 0x53484c46;  // "SHLF"
/// The same for one tenant (the second int is hashtext of its canonical text).
inline constexpr int kTenantFenceLockClass = 0x53484c54;  // "SHLT"

/// Creates (idempotently) the fence objects every shard a job touches needs: schema shardline,
/// shardline.fence (logical shards that moved away: writes to them are refused),
/// shardline.tenant_fence (tenants that moved away, `fenced`, or are pinned here, not: the pin
/// outranks the logical fence as it outranks the hash) and shardline.reshard_marker (catch-up
/// markers, replicated with the job's publication).
std::string fence_schema_sql();

/// The fence check function with `moving` as the logical shards and `moving_tenants` the
/// tenants a cutover may be draining: writes to them take a shared advisory lock
/// (kFenceLockClass, l) or (kTenantFenceLockClass, hashtext(tenant)) that the cutover's
/// exclusive lock excludes; writes to a fenced logical shard or tenant are refused (SQLSTATE
/// 40001).
std::string fence_check_sql(const std::vector<int>& moving, const std::vector<std::string>& moving_tenants = {});

/// The row trigger function of `t` calling the fence check for OLD and NEW keys (replaced at
/// every job start, so it always matches fence_check).
std::string fence_function_sql(const ReshardTable& t, int modulus);
/// The trigger of `t` calling it (created once; CREATE TRIGGER waits for running writers).
std::string fence_trigger_sql(const ReshardTable& t);

/// Names of one job's replication objects (publication, subscription, slot).
std::string job_object_name(std::int64_t job);

/// SQL string literal of `s` (standard_conforming_strings on, as on every supported server).
std::string sql_literal(std::string_view s);
/// SQL identifier of `s`, double-quoted.
std::string sql_ident(std::string_view s);

}  // namespace shardline::control
