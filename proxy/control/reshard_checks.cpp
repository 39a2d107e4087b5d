#include "proxy/control/reshard_checks.hpp"

#include <fmt/format.h>

#include <pqxx/pqxx>

#include "proxy/control/conninfo.hpp"
#include "proxy/control/key_type_names.hpp"
#include "proxy/control/table_learner.hpp"

namespace shardline::control {

namespace {

std::string value(pqxx::connection& c, const std::string& sql) {
  pqxx::nontransaction n(c);
  const auto r = n.exec(sql);
  return r.empty() || r[0][0].is_null() ? "" : r[0][0].c_str();
}

/// Columns (name, type, NOT NULL) and the primary key of a table, "" if it does not exist.
std::string definition(pqxx::connection& c, const ReshardTable& t) {
  const std::string rel = sql_literal(t.qualified());
  if (value(c, fmt::format("SELECT to_regclass({}) IS NOT NULL", rel)) != "t") return "";
  return value(c, fmt::format("SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) || CASE WHEN "
                              "attnotnull THEN ' not null' ELSE '' END, ', ' ORDER BY attnum) || coalesce(', ' || "
                              "(SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = {0}::regclass "
                              "AND contype = 'p'), '') FROM pg_attribute WHERE attrelid = {0}::regclass AND attnum > 0 "
                              "AND NOT attisdropped",
                              rel));
}

void check_identity(pqxx::connection& c, const ReshardTable& t, const std::string& source) {
  const std::string rel = sql_literal(t.qualified());
  pqxx::nontransaction n(c);
  const auto r = n.exec(fmt::format(
      "SELECT c.relreplident, (SELECT bool_or(a.attname = {1}) FROM pg_index i JOIN pg_attribute a ON a.attrelid = "
      "i.indrelid AND a.attnum = ANY (i.indkey) WHERE i.indrelid = c.oid AND ((c.relreplident = 'd' AND "
      "i.indisprimary) OR (c.relreplident = 'i' AND i.indisreplident))) FROM pg_class c WHERE c.oid = {0}::regclass",
      rel, sql_literal(t.key)));
  const std::string ident = r[0][0].c_str();
  if (ident == "f") return;
  if (ident == "n" || r[0][1].is_null())
    throw ReshardRefused("55000", fmt::format("table {} on shard {} has no primary key or replica identity; logical "
                                              "replication needs one (add a primary key)",
                                              t.qualified(), source));
  if (!r[0][1].as<bool>())
    throw ReshardRefused("55000", fmt::format("table {} on shard {}: the sharding key {} is not part of its primary "
                                              "key (or replica identity), which the row filter of a reshard needs; "
                                              "include it in the key or ALTER TABLE ... REPLICA IDENTITY FULL",
                                              t.qualified(), source, t.key));
}

}  // namespace

std::vector<ReshardTable> reshard_tables(const config::Config& cfg) {
  const router::LearnedTables learned = learn_tables(cfg);
  std::vector<ReshardTable> out;
  for (const auto& [name, type] : learned.key_types) {
    const QualifiedName q = split_table_name(name);
    std::string key = cfg.sharding.key;
    for (const auto& t : cfg.sharding.tables)
      if (t.name == name && !t.key.empty()) key = t.key;
    out.push_back({q.schema, q.table, key, type});
  }
  return out;
}

std::vector<ReshardTable> check_reshard(const config::Config& cfg, const std::string& source, const std::string& target,
                                        const std::function<std::string(const ReshardTable&)>& filter) {
  auto connect = [&](const std::string& shard) {
    const config::Shard* s = cfg.find_shard(shard);
    if (s == nullptr) throw ReshardRefused("22023", fmt::format("shard '{}' is not configured", shard));
    try {
      return std::make_unique<pqxx::connection>(libpq_conninfo(cfg.control_role(), s->primary, "shardline-reshard"));
    } catch (const std::exception& e) {
      throw ReshardRefused("08006", fmt::format("cannot connect to shard {} as the control role: {}", shard, e.what()));
    }
  };
  auto src = connect(source);
  auto dst = connect(target);
  for (auto [shard, conn] : {std::pair{&source, src.get()}, std::pair{&target, dst.get()}}) {
    const std::string level = value(*conn, "SHOW wal_level");
    if (level != "logical")
      throw ReshardRefused("55000", fmt::format("shard {} runs with wal_level={}; a reshard needs wal_level=logical "
                                                "(set it in postgresql.conf and restart the server)",
                                                *shard, level));
    if (value(*conn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") != "t")
      throw ReshardRefused("42501", fmt::format("the control role {} is not a superuser on shard {}; PostgreSQL 15 "
                                                "allows subscriptions only to superusers (set `control:` in the config)",
                                                cfg.control_role().user, *shard));
  }
  std::vector<ReshardTable> tables = reshard_tables(cfg);
  if (tables.empty()) throw ReshardRefused("55000", "no sharded table exists yet: there is nothing to move");
  for (const auto& t : tables) {
    const std::string a = definition(*src, t);
    if (a.empty()) throw ReshardRefused("42P01", fmt::format("table {} does not exist on source shard {}", t.qualified(), source));
    check_identity(*src, t, source);
    const std::string b = definition(*dst, t);
    if (b.empty()) throw ReshardRefused("42P01", fmt::format("table {} does not exist on target shard {}", t.qualified(), target));
    if (a != b)
      throw ReshardRefused("55000", fmt::format("table {} differs between source shard {} ({}) and target shard {} ({})",
                                                t.qualified(), source, a, target, b));
    if (value(*dst, fmt::format("SELECT EXISTS (SELECT 1 FROM {} WHERE {})", t.qualified(), filter(t))) == "t")
      throw ReshardRefused("55000", fmt::format("target shard {} already holds rows to be moved in table {}; delete "
                                                "them first",
                                                target, t.qualified()));
  }
  return tables;
}

}  // namespace shardline::control
