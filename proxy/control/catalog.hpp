#pragma once
// The catalog schema `shardline` (SPEC.md section 8): migrations, the live directory and the
// sharded tables' key types. Every call is blocking libpq/libpqxx work that belongs on a
// control-plane thread (DESIGN.md "Control plane stays off the I/O threads"); results are
// immutable values the caller publishes to the data plane.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "router/directory/directory_snapshot.hpp"

namespace shardline::control {

/// One statement, so the epoch and the rows come from the same snapshot: one row per logical
/// shard, or a single row with NULL logical/shard when the directory is empty; then one row per
/// pinned or held tenant (logical NULL, tenant set). The fourth column says whether a reshard
/// cutover holds the logical shard (or tenant), the sixth whether the tenant is pinned.
inline constexpr std::string_view kReadDirectorySql =
    "SELECT e.epoch, d.logical, d.shard, h.logical IS NOT NULL, NULL::text, false FROM shardline.directory_epoch e "
    "LEFT JOIN shardline.directory d ON true LEFT JOIN shardline.directory_holds h ON h.logical = d.logical "
    "UNION ALL SELECT e.epoch, NULL, coalesce(t.shard, p.shard), t.tenant IS NOT NULL, coalesce(p.tenant, t.tenant), "
    "p.tenant IS NOT NULL FROM shardline.directory_epoch e CROSS JOIN (shardline.pins p FULL JOIN "
    "shardline.tenant_holds t ON t.tenant = p.tenant) ORDER BY 2";
inline constexpr std::string_view kReadEpochSql = "SELECT epoch FROM shardline.directory_epoch";
/// The channel the directory trigger notifies (payload: the new epoch).
inline constexpr std::string_view kDirectoryChannel = "shardline_directory";

/// A connection-per-call client of one catalog database. Throws CatalogError (see
/// catalog_error.hpp) naming the server for every failure; never returns a partial result.
class Catalog {
 public:
  explicit Catalog(std::string conninfo);

  /// The catalog of `cfg`: the primary of the first configured shard, reached with the
  /// backend credentials.
  static std::string default_conninfo(const config::Config& cfg);

  /// Applies the embedded migrations not yet recorded in shardline.schema_migrations, all in
  /// one transaction under an advisory lock, so proxies starting together apply each once.
  /// An applied migration whose file has changed since is an error naming the file; versions
  /// recorded by a newer shardline are tolerated (logged).
  void migrate();

  /// The live directory. An empty directory is seeded from the YAML `directory` in one
  /// transaction (epoch 1) under a table lock, so concurrent starters seed it once; otherwise
  /// the stored one is read. Either way it is validated against `cfg` (directory_rows.hpp).
  std::shared_ptr<const router::DirectorySnapshot> load_or_seed(const config::Config& cfg);

  /// Reads and validates the directory without seeding (an empty one is an error).
  std::shared_ptr<const router::DirectorySnapshot> load(const config::Config& cfg);

  /// For every configured sharded table that exists on the home shard's primary: configured
  /// table name -> normalized key column type (key_type_names.hpp). Missing tables are absent.
  /// All problems (a missing key column, an unsupported type, a configured type that hashes
  /// differently from the column's) are reported together in one CatalogError.
  /// `key_positions`, if given, gets table name -> the key column's 0-based position among the
  /// table's columns (what an INSERT without a column list fills in that order).
  static std::map<std::string, std::string> load_key_types(const config::Config& cfg,
                                                           std::map<std::string, int>* key_positions = nullptr);

  const std::string& conninfo() const { return conninfo_; }
  /// "host:port/dbname", for messages.
  const std::string& where() const { return where_; }

 private:
  std::string conninfo_;
  std::string where_;
};

}  // namespace shardline::control
