#include "tests/integration/support/diff_data.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <set>
#include <stdexcept>

#include "router/sharding/shard_key.hpp"
#include "tests/integration/support/diff_rng.hpp"

namespace shardline::testing {

namespace {

constexpr int kRowsA = 2400;
constexpr int kRowsB = 1200;
constexpr int kRowsK = 600;
constexpr int kTenants = 45;  ///< besides the skewed one
constexpr int kRowsPerInsert = 150;

const std::vector<std::string> kWords = {
    "alpha", "Alpha", "beta", "", "zeta", "élan", "Ärger", "straße", "日本", "naïve", "Ωmega",
    "😀 smile", "a b", "z", "ABC", "abc", "Zürich", "ñandú", "o'clock", "tab\there"};

const std::vector<std::string> kCodeStems = {"acme", "Ωcorp", "日本", "zed", "Ärzte", "beta", "c0de", "émile"};

std::string maybe_null(DiffRng& r, int null_percent, const std::string& literal) {
  return r.chance(null_percent) ? "NULL" : literal;
}

/// m/100 printed with a scale of 2..4 chosen by m, so equal values always print alike.
std::string numeric_literal(std::int64_t m) {
  const int scale = 2 + int((m < 0 ? -m : m) % 3);
  const std::int64_t a = m < 0 ? -m : m;
  std::string s = fmt::format("{}{}.{:02}", m < 0 ? "-" : "", a / 100, a % 100);
  return s + std::string(std::size_t(scale - 2), '0');
}

std::string numeric_value(DiffRng& r, bool specials) {
  if (specials) {
    const int k = int(r.between(0, 99));
    if (k < 3) return "'NaN'";
    if (k < 4) return "'Infinity'";
    if (k < 5) return "'-Infinity'";
  }
  if (r.chance(25)) return numeric_literal(r.pick(std::vector<std::int64_t>{-100, 0, 100, 250, 1}));
  return numeric_literal(r.between(-100000, 100000));
}

std::string float_value(DiffRng& r) {
  const int k = int(r.between(0, 99));
  if (k < 2) return "'NaN'";
  if (k < 3) return "'Infinity'";
  if (k < 4) return "'-Infinity'";
  if (k < 20) return r.pick(std::vector<std::string>{"0", "1.5", "-2.25", "1e+300"});
  return fmt::format("{}", double(r.between(-4000, 4000)) / 4.0);
}

std::string utc_text(std::int64_t epoch_seconds, const char* format) {
  std::time_t t = std::time_t(epoch_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

std::string timestamptz_value(DiffRng& r) {
  if (r.chance(1)) return r.chance(50) ? "'infinity'" : "'-infinity'";
  const std::int64_t base = 1767225600;  // 2026-01-01 00:00:00 UTC
  return "'" + utc_text(base + r.between(-720, 720) * 3600 + r.between(0, 3) * 900, "%Y-%m-%d %H:%M:%S+00") + "'";
}

std::string date_value(DiffRng& r) {
  const std::int64_t base = 1764547200;  // 2025-12-01
  return "'" + utc_text(base + r.between(-400, 400) * 86400, "%Y-%m-%d") + "'";
}

std::string text_value(DiffRng& r) {
  const std::string& w = r.pick(kWords);
  return sql_quote(r.chance(50) ? w : fmt::format("{}{}", w, r.between(0, 20)));
}

std::string bool_value(DiffRng& r) { return r.chance(60) ? "true" : "false"; }

int shard_of_tenant(std::int64_t t, int shards, int logical) {
  return router::logical_shard_of_int(t, logical) * shards / logical;
}

int shard_of_code(const std::string& code, int shards, int logical) {
  std::string error;
  const auto l = router::logical_shard_of_text(router::KeyType::Text, code, logical, &error);
  if (!l) throw std::logic_error("diff data: cannot hash code '" + code + "': " + error);
  return *l * shards / logical;
}

/// INSERTs of `rows` VALUES tuples, kRowsPerInsert per statement.
void add_inserts(std::vector<std::string>& out, const std::string& head, const std::vector<std::string>& rows) {
  for (std::size_t i = 0; i < rows.size(); i += kRowsPerInsert) {
    std::string sql = head + " VALUES ";
    for (std::size_t j = i; j < rows.size() && j < i + kRowsPerInsert; ++j) sql += (j == i ? "" : ", ") + rows[j];
    out.push_back(std::move(sql));
  }
}

void add_inserts(DiffDataset& d, const std::string& head, std::vector<std::string> rows) {
  add_inserts(d.inserts, head, rows);
  std::reverse(rows.begin(), rows.end());
  add_inserts(d.reversed_inserts, head, rows);
}

/// The skewed tenant first, then kTenants more, until every shard has at least three.
std::vector<std::int64_t> pick_tenants(DiffRng& r, DiffDataset& d, int shards, int logical) {
  std::vector<std::int64_t> tenants;
  std::set<std::int64_t> seen;
  d.tenants_by_shard.assign(std::size_t(shards), {});
  auto enough = [&] {
    for (const auto& s : d.tenants_by_shard)
      if (s.size() < 3) return false;
    return tenants.size() >= std::size_t(kTenants) + 1;
  };
  while (!enough()) {
    const std::int64_t t = r.chance(20) ? r.between(-1000000, 1000) : r.between(1, 1000000000000);
    if (!seen.insert(t).second) continue;
    tenants.push_back(t);
    d.tenants_by_shard[std::size_t(shard_of_tenant(t, shards, logical))].push_back(t);
  }
  d.skewed_tenant = tenants.front();
  return tenants;
}

/// Half of the rows go to the skewed tenant, the rest spread over the others.
std::int64_t row_tenant(DiffRng& r, const std::vector<std::int64_t>& tenants) {
  return r.chance(50) ? tenants.front() : tenants[1 + r.index(tenants.size() - 1)];
}

void table_a(DiffRng& r, DiffDataset& d, const std::vector<std::int64_t>& tenants) {
  std::vector<std::string> rows;
  for (int id = 1; id <= kRowsA; ++id) {
    const std::string i2 = r.chance(3) ? r.pick(std::vector<std::string>{"32767", "-32768"}) : std::to_string(r.between(-5, 5));
    const std::string i4 = r.chance(2) ? r.pick(std::vector<std::string>{"2147483647", "-2147483648"})
                                        : std::to_string(r.chance(10) ? 0 : r.between(-1000, 1000));
    const std::string i8 = r.chance(2) ? r.pick(std::vector<std::string>{"9223372036854775807", "-9223372036854775808"})
                                        : std::to_string(r.chance(10) ? 0 : r.between(-1000000000000000, 1000000000000000));
    rows.push_back(fmt::format("({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})", row_tenant(r, tenants), id,
                               maybe_null(r, 8, i2), maybe_null(r, 8, i4), maybe_null(r, 8, i8),
                               maybe_null(r, 8, numeric_value(r, true)), maybe_null(r, 8, float_value(r)),
                               maybe_null(r, 10, bool_value(r)), maybe_null(r, 8, text_value(r)),
                               maybe_null(r, 8, timestamptz_value(r)), maybe_null(r, 8, date_value(r))));
  }
  add_inserts(d, "INSERT INTO diff_a (tenant_id, id, i2, i4, i8, n, f, b, t, ts, d)", rows);
  d.row_counts.emplace_back("diff_a", kRowsA);
}

void table_b(DiffRng& r, DiffDataset& d, const std::vector<std::int64_t>& tenants) {
  std::vector<std::string> rows;
  for (int id = 1; id <= kRowsB; ++id)
    rows.push_back(fmt::format("({}, {}, {}, {}, {}, {}, {})", row_tenant(r, tenants), id,
                               maybe_null(r, 5, std::to_string(r.between(1, 8))),
                               maybe_null(r, 5, std::to_string(r.between(-50, 50))),
                               maybe_null(r, 5, fmt::format("{:.2f}", double(r.between(-100000, 100000)) / 100.0)),
                               maybe_null(r, 10, bool_value(r)), maybe_null(r, 5, text_value(r))));
  add_inserts(d, "INSERT INTO diff_b (tenant_id, id, grp, qty, amount, flag, label)", rows);
  d.row_counts.emplace_back("diff_b", kRowsB);
}

void table_k(DiffRng& r, DiffDataset& d, int shards, int logical) {
  std::vector<std::string> codes;
  d.codes_by_shard.assign(std::size_t(shards), {});
  auto enough = [&] {
    for (const auto& s : d.codes_by_shard)
      if (s.size() < 2) return false;
    return codes.size() >= 24;
  };
  std::set<std::string> seen;
  while (!enough()) {
    const std::string c = fmt::format("{}-{}", r.pick(kCodeStems), r.between(0, 99));
    if (!seen.insert(c).second) continue;
    codes.push_back(c);
    d.codes_by_shard[std::size_t(shard_of_code(c, shards, logical))].push_back(c);
  }
  std::vector<std::string> rows;
  for (int id = 1; id <= kRowsK; ++id) {
    const std::string& code = r.chance(40) ? codes.front() : codes[r.index(codes.size())];
    rows.push_back(fmt::format("({}, {}, {}, {}, {}, {})", sql_quote(code), id,
                               maybe_null(r, 5, std::to_string(r.between(-100, 100))),
                               maybe_null(r, 5, numeric_value(r, false)), maybe_null(r, 5, text_value(r)),
                               maybe_null(r, 10, bool_value(r))));
  }
  add_inserts(d, "INSERT INTO diff_k (code, id, v, w, s, b)", rows);
  d.row_counts.emplace_back("diff_k", kRowsK);
}

}  // namespace

const std::vector<DiffTable>& diff_tables() {
  static const std::vector<DiffTable> tables = {
      {"diff_a", "tenant_id", "bigint"}, {"diff_b", "tenant_id", "bigint"}, {"diff_k", "code", "text"}};
  return tables;
}

std::string sql_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

DiffDataset generate_diff_data(std::uint64_t seed, int shards, int logical_shards) {
  DiffRng r(seed);
  DiffDataset d;
  d.ddl = {
      "CREATE TABLE diff_a (tenant_id bigint NOT NULL, id int NOT NULL, i2 int2, i4 int4, i8 int8, n numeric, "
      "f float8, b bool, t text, ts timestamptz, d date, PRIMARY KEY (tenant_id, id))",
      "CREATE TABLE diff_b (tenant_id bigint NOT NULL, id int NOT NULL, grp int4, qty int4, amount numeric(12,2), "
      "flag bool, label text, PRIMARY KEY (tenant_id, id))",
      "CREATE TABLE diff_k (code text NOT NULL, id int NOT NULL, v int4, w numeric, s text, b bool, "
      "PRIMARY KEY (code, id))"};
  const auto tenants = pick_tenants(r, d, shards, logical_shards);
  table_a(r, d, tenants);
  table_b(r, d, tenants);
  table_k(r, d, shards, logical_shards);
  return d;
}

}  // namespace shardline::testing
