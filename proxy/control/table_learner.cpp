#include "proxy/control/table_learner.hpp"

#include <map>
#include <pqxx/pqxx>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "proxy/control/catalog.hpp"
#include "proxy/control/catalog_error.hpp"
#include "proxy/control/conninfo.hpp"
#include "proxy/control/key_type_names.hpp"

namespace shardline::control {
namespace {

constexpr std::string_view kApplicationName = "shardline-control";

/// Tables (plain and partitioned) and views with a column named $1, outside the system schemas
/// and shardline's catalog schema (a view created through the proxy exists on every shard and
/// shows that shard's rows, so it shards like a table). information_schema leaves dropped columns out, so the count is
/// the position an INSERT without a column list gives the key.
constexpr const char* kKeyColumnsSql =
    "SELECT c.table_schema, c.table_name, c.data_type, "
    "(SELECT count(*) FROM information_schema.columns p WHERE p.table_schema = c.table_schema "
    "AND p.table_name = c.table_name AND p.ordinal_position < c.ordinal_position) "
    "FROM information_schema.columns c JOIN information_schema.tables t "
    "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
    "WHERE c.column_name = $1 AND t.table_type IN ('BASE TABLE', 'VIEW') "
    "AND c.table_schema NOT IN ('pg_catalog', 'information_schema', 'shardline') "
    "AND c.table_schema NOT LIKE 'pg\\_temp\\_%' AND c.table_schema NOT LIKE 'pg\\_toast%'";

/// Every relation (tables, views, sequences, indexes, system catalogs, temporary tables).
constexpr const char* kRelationsSql =
    "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname NOT LIKE 'pg\\_toast%'";

std::string qualified_config_name(const std::string& configured) {
  const QualifiedName q = split_table_name(configured);
  return q.schema + "." + q.table;
}

}  // namespace

void choose_auto_tables(const config::Config& cfg, const std::vector<std::string>& shard_names,
                        const std::vector<std::map<std::string, KeyColumn>>& shards, std::size_t home,
                        router::LearnedTables& out, std::vector<std::string>& notes) {
  std::set<std::string> explicit_names;
  for (const auto& t : cfg.sharding.tables) explicit_names.insert(qualified_config_name(t.name));
  for (const auto& r : cfg.sharding.reference_tables) explicit_names.insert(qualified_config_name(r));
  std::set<std::string> candidates;
  for (const auto& s : shards)
    for (const auto& [name, col] : s) candidates.insert(name);
  for (const auto& name : candidates) {
    if (explicit_names.count(name)) continue;
    std::string missing, type, family, problem;
    for (std::size_t i = 0; i < shards.size(); ++i) {
      auto it = shards[i].find(name);
      if (it == shards[i].end()) {
        missing += (missing.empty() ? "" : ", ") + shard_names[i];
        continue;
      }
      const auto normalized = normalize_key_type(it->second.data_type);
      if (!normalized) {
        problem = fmt::format("its {} column on shard {} has type {}; shardline shards by smallint, integer, "
                              "bigint, text, varchar or uuid",
                              cfg.sharding.key, shard_names[i], it->second.data_type);
        break;
      }
      if (family.empty()) {
        type = *normalized;
        family = std::string(key_type_family(*normalized));
      } else if (family != key_type_family(*normalized)) {
        problem = fmt::format("its {} column is {} on one shard and {} on shard {}, which hash differently",
                              cfg.sharding.key, type, it->second.data_type, shard_names[i]);
        break;
      }
    }
    if (problem.empty() && !missing.empty())
      problem = fmt::format("shard(s) {} have no such table with a {} column", missing, cfg.sharding.key);
    if (!problem.empty()) {
      notes.push_back(fmt::format("auto_tables: {} stays unsharded: {}", name, problem));
      continue;
    }
    out.auto_tables.insert(name);
    out.key_types[name] = type;
    out.key_positions[name] = shards[home].at(name).position;
  }
}

router::LearnedTables learn_tables(const config::Config& cfg) {
  router::LearnedTables out;
  out.key_types = Catalog::load_key_types(cfg, &out.key_positions);
  if (!cfg.sharding.auto_tables) return out;

  const std::string home_name = cfg.sharding.home_shard.empty() && !cfg.shards.empty() ? cfg.shards.front().name
                                                                                      : cfg.sharding.home_shard;
  std::vector<std::string> names;
  std::vector<std::map<std::string, KeyColumn>> per_shard;
  std::size_t home = 0;
  std::set<std::string> relations;
  for (const auto& shard : cfg.shards) {
    const std::string conninfo = libpq_conninfo(cfg.backend, shard.primary, kApplicationName);
    if (shard.name == home_name) home = names.size();
    names.push_back(shard.name);
    auto& columns = per_shard.emplace_back();
    try {
      pqxx::connection conn(conninfo);
      pqxx::read_transaction tx(conn);
      for (const auto& row : tx.exec_params(kKeyColumnsSql, cfg.sharding.key))
        columns[row.at(0).as<std::string>() + "." + row.at(1).as<std::string>()] =
            KeyColumn{row.at(2).as<std::string>(), row.at(3).as<int>()};
      if (shard.name == home_name)
        for (const auto& row : tx.exec(kRelationsSql))
          relations.insert(row.at(0).as<std::string>() + "." + row.at(1).as<std::string>());
    } catch (const std::exception& e) {
      throw CatalogError(fmt::format("shard {} ({}): reading the tables that have the key column {}: {}", shard.name,
                                     describe_conninfo(conninfo), cfg.sharding.key, e.what()));
    }
  }
  std::vector<std::string> notes;
  choose_auto_tables(cfg, names, per_shard, home, out, notes);
  for (const auto& n : notes) spdlog::warn("{}", n);
  out.relations = std::move(relations);
  return out;
}

}  // namespace shardline::control
