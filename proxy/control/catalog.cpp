#include "proxy/control/catalog.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "proxy/control/catalog_error.hpp"
#include "proxy/control/catalog_migrations.hpp"
#include "proxy/control/conninfo.hpp"
#include "proxy/control/directory_rows.hpp"
#include "proxy/control/key_type_names.hpp"

namespace shardline::control {
namespace {

/// pg_advisory_xact_lock key serialising migrations of one catalog ("shrdline" in ASCII).
constexpr std::int64_t kMigrationLockKey = 0x736872646c696e65;
constexpr std::string_view kApplicationName = "shardline-control";

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

/// The boundary where libpqxx exceptions become CatalogError with the server and the step named.
template <class F>
auto guarded(const std::string& where, std::string_view step, F&& body) {
  try {
    return body();
  } catch (const CatalogError&) {
    throw;
  } catch (const std::exception& e) {
    throw CatalogError(fmt::format("catalog {}: {}: {}", where, step, trimmed(e.what())));
  }
}

/// Reads the directory in the caller's transaction; nullopt epoch means no epoch row.
struct DirectoryRead {
  std::optional<std::uint64_t> epoch;
  std::vector<DirectoryRow> rows;
  std::vector<TenantRow> tenants;
};

DirectoryRead read_directory(pqxx::transaction_base& tx) {
  const pqxx::result r = tx.exec(std::string(kReadDirectorySql));
  DirectoryRead out;
  for (const auto& row : r) {
    out.epoch = row.at(0).as<std::uint64_t>();
    if (!row.at(1).is_null())
      out.rows.push_back({row.at(1).as<int>(), row.at(2).as<std::string>(), row.at(3).as<bool>()});
    else if (!row.at(4).is_null())
      out.tenants.push_back({row.at(4).as<std::string>(), row.at(2).as<std::string>(), row.at(3).as<bool>(),
                             row.at(5).as<bool>()});
  }
  return out;
}

void require_schema(pqxx::transaction_base& tx) {
  if (tx.exec("SELECT to_regclass('shardline.directory') IS NOT NULL AND "
              "to_regclass('shardline.directory_epoch') IS NOT NULL").at(0).at(0)
          .as<bool>())
    return;
  throw CatalogError("the catalog schema shardline is missing; run the catalog migrations first");
}

std::shared_ptr<const router::DirectorySnapshot> snapshot_of(DirectoryRead read, const config::Config& cfg) {
  if (!read.epoch) throw CatalogError("shardline.directory_epoch has no row (was it deleted by hand?)");
  return directory_from_rows(*read.epoch, std::move(read.rows), cfg, std::move(read.tenants));
}

}  // namespace

Catalog::Catalog(std::string conninfo) : conninfo_(std::move(conninfo)), where_(describe_conninfo(conninfo_)) {}

std::string Catalog::default_conninfo(const config::Config& cfg) {
  if (cfg.shards.empty()) throw CatalogError("no shards are configured, so there is no catalog server");
  return libpq_conninfo(cfg.backend, cfg.shards.front().primary, kApplicationName);
}

void Catalog::migrate() {
  guarded(where_, "migrate", [&] {
    pqxx::connection conn(conninfo_);
    pqxx::work tx(conn);
    tx.exec("SET LOCAL client_min_messages = warning");  // IF NOT EXISTS notices are expected
    tx.exec_params("SELECT pg_advisory_xact_lock($1)", kMigrationLockKey);

    std::map<int, std::pair<std::string, std::string>> applied;  // version -> (name, checksum)
    if (tx.exec("SELECT to_regclass('shardline.schema_migrations') IS NOT NULL").at(0).at(0).as<bool>()) {
      for (const auto& row : tx.exec("SELECT version, name, checksum FROM shardline.schema_migrations"))
        applied[row.at(0).as<int>()] = {row.at(1).as<std::string>(), row.at(2).as<std::string>()};
    }
    const auto& migrations = catalog_migrations();
    // Refuse before applying anything: a catalog built from other SQL than ours is not ours.
    for (const auto& m : migrations) {
      const auto it = applied.find(m.version);
      if (it == applied.end()) continue;
      if (it->second.second != m.checksum)
        throw CatalogError(fmt::format(
            "catalog {}: migration migrations/{} was changed after it was applied (recorded sha256 {}, "
            "file sha256 {}); restore the file and put the change into a new migration",
            where_, m.file, it->second.second, m.checksum));
      if (it->second.first != m.name)
        throw CatalogError(fmt::format("catalog {}: migration version {} was applied as '{}' but "
                                       "migrations/{} names it '{}'",
                                       where_, m.version, it->second.first, m.file, m.name));
    }
    int newly = 0;
    for (const auto& m : migrations) {
      if (applied.count(m.version)) continue;
      guarded(where_, fmt::format("applying migrations/{}", m.file), [&] { return tx.exec(std::string(m.sql)); });
      tx.exec_params("INSERT INTO shardline.schema_migrations (version, name, checksum, applied_at) "
                     "VALUES ($1, $2, $3, now())",
                     m.version, std::string(m.name), std::string(m.checksum));
      ++newly;
    }
    for (const auto& [version, entry] : applied) {
      const bool known = std::any_of(migrations.begin(), migrations.end(),
                                     [v = version](const Migration& m) { return m.version == v; });
      if (!known)
        spdlog::warn("catalog {}: migration {} ({}) was applied by a newer shardline; continuing", where_,
                     version, entry.first);
    }
    tx.commit();
    if (newly > 0) spdlog::info("catalog {}: applied {} migration(s)", where_, newly);
    return 0;
  });
}

std::shared_ptr<const router::DirectorySnapshot> Catalog::load_or_seed(const config::Config& cfg) {
  return guarded(where_, "loading the directory", [&] {
    pqxx::connection conn(conninfo_);
    pqxx::work tx(conn);
    require_schema(tx);
    // Conflicts with itself and with writers, not with readers: of several proxies starting on
    // an empty catalog, exactly one seeds and the others then read its rows.
    tx.exec("LOCK TABLE shardline.directory IN SHARE ROW EXCLUSIVE MODE");
    auto read = read_directory(tx);
    if (read.epoch && read.rows.empty()) {
      for (const auto& r : cfg.directory)
        tx.exec_params("INSERT INTO shardline.directory (logical, shard) "
                       "SELECT g, $3 FROM generate_series($1::int, $2::int) g",
                       r.first, r.last, r.shard);
      read = read_directory(tx);
      auto snapshot = snapshot_of(std::move(read), cfg);
      tx.commit();
      spdlog::info("catalog {}: seeded the directory from the config ({} logical shards, epoch {})", where_,
                   snapshot->logical_shards(), snapshot->epoch());
      return snapshot;
    }
    auto snapshot = snapshot_of(std::move(read), cfg);
    tx.commit();
    return snapshot;
  });
}

std::shared_ptr<const router::DirectorySnapshot> Catalog::load(const config::Config& cfg) {
  return guarded(where_, "loading the directory", [&] {
    pqxx::connection conn(conninfo_);
    pqxx::read_transaction tx(conn);
    require_schema(tx);
    return snapshot_of(read_directory(tx), cfg);
  });
}

std::map<std::string, std::string> Catalog::load_key_types(const config::Config& cfg,
                                                           std::map<std::string, int>* key_positions) {
  const std::string home_name = cfg.sharding.home_shard.empty() && !cfg.shards.empty()
                                    ? cfg.shards.front().name
                                    : cfg.sharding.home_shard;
  const config::Shard* home = cfg.find_shard(home_name);
  if (home == nullptr) throw CatalogError(fmt::format("home shard '{}' is not configured", home_name));
  const std::string conninfo = libpq_conninfo(cfg.backend, home->primary, kApplicationName);
  const std::string where = fmt::format("shard {} ({})", home->name, describe_conninfo(conninfo));

  std::map<std::string, std::string> types;
  std::vector<std::string> problems;
  guarded(where, "reading key column types", [&] {
    pqxx::connection conn(conninfo);
    pqxx::read_transaction tx(conn);
    for (const auto& table : cfg.sharding.tables) {
      const QualifiedName q = split_table_name(table.name);
      const std::string key = table.key.empty() ? cfg.sharding.key : table.key;
      const pqxx::result r = tx.exec_params(
          "SELECT c.data_type, c.udt_name, (SELECT count(*) FROM information_schema.columns p "
          "WHERE p.table_schema = t.table_schema AND p.table_name = t.table_name "
          "AND p.ordinal_position < c.ordinal_position) FROM information_schema.tables t "
          "LEFT JOIN information_schema.columns c ON c.table_schema = t.table_schema "
          "AND c.table_name = t.table_name AND c.column_name = $3 "
          "WHERE t.table_schema = $1 AND t.table_name = $2",
          q.schema, q.table, key);
      if (r.empty()) continue;  // not created yet: the router learns it on a later load
      if (r.at(0).at(0).is_null()) {
        problems.push_back(fmt::format("sharded table {}.{} has no key column {}", q.schema, q.table, key));
        continue;
      }
      const auto data_type = r.at(0).at(0).as<std::string>();
      // information_schema.columns leaves dropped columns out: the count is the position an
      // INSERT without a column list gives the key.
      if (key_positions) (*key_positions)[table.name] = r.at(0).at(2).as<int>();
      const auto normalized = normalize_key_type(data_type);
      if (!normalized) {
        problems.push_back(fmt::format(
            "sharded table {}.{}: key column {} has type {}{}; shardline shards by smallint, integer, "
            "bigint, text, varchar or uuid",
            q.schema, q.table, key, data_type,
            data_type == r.at(0).at(1).as<std::string>() ? "" : fmt::format(" ({})", r.at(0).at(1).as<std::string>())));
        continue;
      }
      if (table.type && key_type_family(*table.type) != key_type_family(*normalized)) {
        problems.push_back(fmt::format(
            "sharded table {}.{}: the config says key type {} but column {} is {}, which hashes "
            "differently",
            q.schema, q.table, *table.type, key, data_type));
        continue;
      }
      types[table.name] = *normalized;
    }
    return 0;
  });
  if (!problems.empty()) {
    std::string msg = fmt::format("{}:", where);
    for (const auto& p : problems) msg += "\n  " + p;
    throw CatalogError(msg);
  }
  return types;
}

}  // namespace shardline::control
