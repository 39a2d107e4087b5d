#pragma once
// The data of the scatter-gather differential test: three sharded tables (two keyed by a bigint
// tenant_id, one by a text code) with every column type the merge must compare and aggregate
// (int2/int4/int8, numeric of mixed scales, float8, bool, text, timestamptz, date), NULLs,
// duplicate values, negative, zero, NaN and +-Infinity, non-ASCII text, one tenant holding most
// rows, and tenants on every shard. The same statements load the plain database and, through
// the proxy, the shards.
//
// Numeric values get a scale that is a function of their value (1.230 is never also 1.23), and
// float8 never holds -0: so two values that compare equal also print equal, and which of
// several equal values a min/max/DISTINCT/GROUP BY shows cannot depend on row order.

#include <cstdint>
#include <string>
#include <vector>

namespace shardline::testing {

struct DiffDataset {
  /// CREATE TABLE statements, then multi-row INSERTs (each spanning many tenants).
  std::vector<std::string> ddl;
  std::vector<std::string> inserts;
  /// The same rows in the opposite order, for a second plain database whose answers to the
  /// corpus must match the first one's: a query whose answer depends on the physical row order
  /// is a corpus bug, not a proxy bug.
  std::vector<std::string> reversed_inserts;
  /// Table name -> number of rows, to check both sides were loaded completely.
  std::vector<std::pair<std::string, int>> row_counts;
  /// The tenant ids of diff_a/diff_b per physical shard (each non-empty), and the one tenant
  /// holding most rows.
  std::vector<std::vector<std::int64_t>> tenants_by_shard;
  std::int64_t skewed_tenant = 0;
  /// The codes of diff_k per physical shard (each non-empty).
  std::vector<std::vector<std::string>> codes_by_shard;
};

/// The sharded tables and their keys, for the proxy's config.
struct DiffTable {
  std::string name;
  std::string key;
  std::string key_type;
};
const std::vector<DiffTable>& diff_tables();

/// Generates the dataset for `seed`; shard placement follows the YAML directory ProxyConfig
/// writes for `shards` physical shards over `logical_shards` logical ones.
DiffDataset generate_diff_data(std::uint64_t seed, int shards, int logical_shards);

/// A SQL string literal ('it''s').
std::string sql_quote(const std::string& s);

}  // namespace shardline::testing
