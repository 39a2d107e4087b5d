#include "proxy/control/reshard_sql.hpp"

#include <fmt/format.h>

#include "router/sharding/key_type.hpp"
#include "router/sharding/tenant_key.hpp"

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
  // A tenant that is no value of this key type (or not in its canonical text) has no rows here.
  if (tenants_of_type(t, {std::string(tenant)}).empty()) return "(false)";
  return fmt::format("({} = {}::{})", sql_ident(t.key), sql_literal(tenant), t.key_type);
}

std::vector<std::string> tenants_of_type(const ReshardTable& t, const std::vector<std::string>& pinned) {
  std::vector<std::string> out;
  const auto type = router::key_type_from_name(t.key_type);
  if (!type) return out;
  for (const auto& p : pinned)
    if (auto c = router::canonical_key_of_text(*type, p, nullptr, nullptr); c && *c == p) out.push_back(*c);
  return out;
}

std::string move_filter_sql(const ReshardTable& t, int modulus, int logical, const std::vector<std::string>& pinned) {
  const std::vector<std::string> tenants = tenants_of_type(t, pinned);
  if (tenants.empty()) return logical_filter_sql(t, modulus, logical);
  std::string array = "{";
  for (const auto& v : tenants) {
    array += array.size() > 1 ? ",\"" : "\"";
    for (char c : v) {
      if (c == '"' || c == '\\') array += '\\';
      array += c;
    }
    array += '"';
  }
  array += "}";
  return fmt::format("({} AND NOT ({} = ANY ({}::{}[])))", logical_filter_sql(t, modulus, logical), sql_ident(t.key),
                     sql_literal(array), t.key_type);
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
         "CREATE TABLE IF NOT EXISTS shardline.tenant_fence (tenant text PRIMARY KEY, fenced bool NOT NULL, "
         "job bigint NOT NULL);"
         "GRANT SELECT ON shardline.tenant_fence TO PUBLIC;"
         "CREATE TABLE IF NOT EXISTS shardline.reshard_marker (job bigint PRIMARY KEY, token bigint NOT NULL);";
}

std::string fence_check_sql(const std::vector<int>& moving, const std::vector<std::string>& moving_tenants) {
  std::string list;
  for (int l : moving) list += (list.empty() ? "" : ",") + std::to_string(l);
  std::string tenants = "ARRAY[]::text[]";
  if (!moving_tenants.empty()) {
    tenants = "ARRAY[";
    for (std::size_t i = 0; i < moving_tenants.size(); ++i) tenants += (i ? "," : "") + sql_literal(moving_tenants[i]);
    tenants += "]::text[]";
  }
  // A tenant pinned here (tenant_fence.fenced false) is exempt from the logical shard's rules:
  // a move of its hash's logical shard leaves it where it is.
  return fmt::format(
      "CREATE OR REPLACE FUNCTION shardline.fence_check(l int, k text) RETURNS void LANGUAGE plpgsql AS $f$\n"
      "DECLARE is_fenced bool;\n"
      "BEGIN\n"
      "  IF k = ANY ({2}) AND NOT pg_try_advisory_xact_lock_shared({3}, hashtext(k)) THEN\n"
      "    RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = format('shardline: tenant %s is being moved to "
      "another shard right now (reshard cutover); retry the transaction', k);\n"
      "  END IF;\n"
      "  SELECT f.fenced INTO is_fenced FROM shardline.tenant_fence f WHERE f.tenant = k;\n"
      "  IF FOUND THEN\n"
      "    IF is_fenced THEN\n"
      "      RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = format('shardline: tenant %s has moved to another "
      "shard; this write reached its old shard (the router''s directory is stale): retry', k);\n"
      "    END IF;\n"
      "    RETURN;\n"
      "  END IF;\n"
      "  IF l = ANY ('{{{0}}}'::int[]) AND NOT pg_try_advisory_xact_lock_shared({1}, l) THEN\n"
      "    RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = format('shardline: logical shard %s is being moved "
      "to another shard right now (reshard cutover); retry the transaction', l);\n"
      "  END IF;\n"
      "  IF EXISTS (SELECT 1 FROM shardline.fence f WHERE f.logical = l) THEN\n"
      "    RAISE EXCEPTION USING ERRCODE = '40001', MESSAGE = format('shardline: logical shard %s has moved to "
      "another shard; this write reached its old shard (the router''s directory is stale): retry', l);\n"
      "  END IF;\n"
      "END\n$f$;\n"
      // Trigger functions of an older shardline call the one-argument form.
      "CREATE OR REPLACE FUNCTION shardline.fence_check(l int) RETURNS void LANGUAGE sql AS "
      "$f$ SELECT shardline.fence_check(l, NULL::text) $f$",
      list, kFenceLockClass, tenants, kTenantFenceLockClass);
}

std::string fence_function_sql(const ReshardTable& t, int modulus) {
  const std::string fn = sql_ident("fence_" + t.schema + "_" + t.table);
  const std::string key = sql_ident(t.key);
  return fmt::format(
      "CREATE OR REPLACE FUNCTION shardline.{0}() RETURNS trigger LANGUAGE plpgsql AS $f$\n"
      "BEGIN\n"
      "  IF TG_OP <> 'INSERT' THEN PERFORM shardline.fence_check(({1})::int, (OLD.{3})::text); END IF;\n"
      "  IF TG_OP <> 'DELETE' THEN PERFORM shardline.fence_check(({2})::int, (NEW.{3})::text); RETURN NEW; END IF;\n"
      "  RETURN OLD;\n"
      "END\n$f$",
      fn, logical_shard_sql("OLD." + key, t.key_type, modulus), logical_shard_sql("NEW." + key, t.key_type, modulus),
      key);
}

std::string fence_trigger_sql(const ReshardTable& t) {
  const std::string fn = sql_ident("fence_" + t.schema + "_" + t.table);
  return fmt::format(
      "DROP TRIGGER IF EXISTS shardline_fence ON {1};\n"
      "CREATE TRIGGER shardline_fence BEFORE INSERT OR UPDATE OR DELETE ON {1} FOR EACH ROW "
      "EXECUTE FUNCTION shardline.{0}()",
      fn, t.qualified());
}

std::string job_object_name(std::int64_t job) { return fmt::format("shardline_reshard_{}", job); }

}  // namespace shardline::control
