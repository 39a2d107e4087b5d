#include "proxy/control/reshard_sql.hpp"

#include <fmt/format.h>

namespace shardline::control {

namespace {

/// HASH_PARTITION_SEED (src/include/catalog/partition.h) as a signed bigint literal.
constexpr std::string_view kSeed = "8816678312871386365";
/// hash_combine64(0, h) = h + 0x49a0f4dd15e5a8e3 (mod 2^64); 2^64 is added first so that a
/// negative (signed) h becomes its unsigned value.
constexpr std::string_view kCombinePlus2To64 = "23752253665144318179";
constexpr std::string_view k2To64 = "18446744073709551616";

std::string hash_call(std::string_view value_sql, std::string_view key_type) {
  if (key_type == "text") return fmt::format("hashtextextended(({})::text, {})", value_sql, kSeed);
  if (key_type == "uuid") return fmt::format("uuid_hash_extended({}, {})", value_sql, kSeed);
  // smallint, integer and bigint hash alike (hashint8extended folds the value like the others).
  return fmt::format("hashint8extended(({})::int8, {})", value_sql, kSeed);
}

}  // namespace

std::string sql_literal(std::string_view s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += '\'';
    q += c;
  }
  return q + "'";
}

std::string sql_ident(std::string_view s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

std::string ReshardTable::qualified() const { return sql_ident(schema) + "." + sql_ident(table); }

std::string logical_shard_sql(std::string_view value_sql, std::string_view key_type, int modulus) {
  return fmt::format("mod(mod(({})::numeric + {}, {}), {})", hash_call(value_sql, key_type), kCombinePlus2To64,
                     k2To64, modulus);
}

std::string logical_filter_sql(const ReshardTable& t, int modulus, int logical) {
  return fmt::format("({} = {})", logical_shard_sql(sql_ident(t.key), t.key_type, modulus), logical);
}

std::string tenant_filter_sql(const ReshardTable& t, std::string_view tenant) {
  return fmt::format("({} = {}::{})", sql_ident(t.key), sql_literal(tenant), t.key_type);
}

std::string checksum_sql(const ReshardTable& t, std::string_view filter) {
  // Equal definitions on both sides print equal rows: the sum of their hashes does not depend
  // on the order rows are stored or scanned in.
  return fmt::format("SELECT count(*)::text, coalesce(sum(hashtextextended(r::text, 0)::numeric), 0)::text "
                     "FROM {} r WHERE {}",
                     t.qualified(), filter);
}

std::string fence_schema_sql() {
  return "SET LOCAL client_min_messages = warning;"
         "CREATE SCHEMA IF NOT EXISTS shardline;"
         "GRANT USAGE ON SCHEMA shardline TO PUBLIC;"
         "CREATE TABLE IF NOT EXISTS shardline.fence (logical int PRIMARY KEY, job bigint NOT NULL);"
         "GRANT SELECT ON shardline.fence TO PUBLIC;"
         "CREATE TABLE IF NOT EXISTS shardline.reshard_marker (job bigint PRIMARY KEY, token bigint NOT NULL);";
}

std::string fence_check_sql(const std::vector<int>& moving) {
  std::string list;
  for (int l : moving) list += (list.empty() ? "" : ",") + std::to_string(l);
  return fmt::format(
      "CREATE OR REPLACE FUNCTION shardline.fence_check(l int) RETURNS void LANGUAGE plpgsql AS $f$\n"
      "BEGIN\n"
      "  IF l = ANY ('{{{0}}}'::int[]) AND NOT pg_try_advisory_xact_lock_shared({1}, l) THEN\n"
      "    RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = format('shardline: logical shard %s is being moved "
      "to another shard right now (reshard cutover); retry the transaction', l);\n"
      "  END IF;\n"
      "  IF EXISTS (SELECT 1 FROM shardline.fence f WHERE f.logical = l) THEN\n"
      "    RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = format('shardline: logical shard %s has moved to "
      "another shard; this write reached its old shard (the router''s directory is stale): retry', l);\n"
      "  END IF;\n"
      "END\n$f$",
      list, kFenceLockClass);
}

std::string fence_trigger_sql(const ReshardTable& t, int modulus) {
  const std::string fn = sql_ident("fence_" + t.schema + "_" + t.table);
  const std::string key = sql_ident(t.key);
  return fmt::format(
      "CREATE OR REPLACE FUNCTION shardline.{0}() RETURNS trigger LANGUAGE plpgsql AS $f$\n"
      "BEGIN\n"
      "  IF TG_OP <> 'INSERT' THEN PERFORM shardline.fence_check(({1})::int); END IF;\n"
      "  IF TG_OP <> 'DELETE' THEN PERFORM shardline.fence_check(({2})::int); RETURN NEW; END IF;\n"
      "  RETURN OLD;\n"
      "END\n$f$;\n"
      "DROP TRIGGER IF EXISTS shardline_fence ON {3};\n"
      "CREATE TRIGGER shardline_fence BEFORE INSERT OR UPDATE OR DELETE ON {3} FOR EACH ROW "
      "EXECUTE FUNCTION shardline.{0}()",
      fn, logical_shard_sql("OLD." + key, t.key_type, modulus), logical_shard_sql("NEW." + key, t.key_type, modulus),
      t.qualified());
}

std::string job_object_name(std::int64_t job) { return fmt::format("shardline_reshard_{}", job); }

}  // namespace shardline::control
