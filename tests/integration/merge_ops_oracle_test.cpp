// PostgreSQL is the oracle for the scatter-gather merge operators (proxy/exec/ops):
//  - ordering: generated values of every supported type (negatives, zero, extremes, NaN,
//    infinities, BC and 5-digit years, time zone offsets, non-ASCII text, NULLs) are ranked by
//    the server (dense_rank over ORDER BY, both directions); our comparator must order every
//    pair exactly as those ranks do, reading the server's text and binary output;
//  - aggregates: random rows split into 3 parts stand for 3 shards; the server computes each
//    part's partial aggregates (what a shard returns) and the true aggregate over all rows;
//    FinalAggregate over the partials must reproduce the true result byte for byte, in text and
//    binary format, with the same column types, with and without GROUP BY.
// The generator is seeded; the seed is printed (set SHARDLINE_TEST_SEED to reproduce).

#include <libpq-fe.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "proxy/exec/ops/concat.hpp"
#include "proxy/exec/ops/numeric_text.hpp"
#include "proxy/exec/ops/row_codec.hpp"
#include "proxy/exec/ops/row_order.hpp"
#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"

namespace {

namespace ops = shardline::proxy::exec::ops;
using shardline::testing::must;
using shardline::testing::PgConnection;
using shardline::testing::PgResult;

std::uint64_t seed() {
  static const std::uint64_t s = [] {
    const char* env = std::getenv("SHARDLINE_TEST_SEED");
    std::uint64_t v = env ? std::strtoull(env, nullptr, 10) : std::random_device{}();
    std::cout << "merge_ops_oracle_test seed: " << v << " (SHARDLINE_TEST_SEED=" << v << " to reproduce)\n";
    return v;
  }();
  return s;
}

PgConnection& db() {
  static PgConnection c = [] {
    shardline::testing::ClusterSpec spec;
    spec.shards = 1;
    PgConnection conn(shardline::testing::test_cluster(spec).superuser_conninfo(0));
    if (!conn.ok()) throw std::runtime_error("cannot connect: " + conn.error());
    must(conn, "SET DateStyle = ISO, YMD");
    must(conn, "SET TimeZone = 'America/St_Johns'");  // offsets like -03:30 and -02:30
    must(conn, "SET extra_float_digits = 1");
    return conn;
  }();
  return c;
}

/// A query's result in text (0) or binary (1) format.
PgResult query(const std::string& sql, int format, const std::vector<std::string>& params = {}) {
  std::vector<const char*> p;
  for (const auto& s : params) p.push_back(s.c_str());
  PgResult r(PQexecParams(db().get(), sql.c_str(), int(p.size()), nullptr, p.data(), nullptr, nullptr, format));
  if (!r.ok()) throw std::runtime_error(sql + ": " + r.describe());
  return r;
}

std::vector<ops::ColumnDesc> columns_of(const PgResult& r) {
  std::vector<ops::ColumnDesc> out;
  for (int c = 0; c < r.columns(); ++c)
    out.push_back(ops::ColumnDesc{PQfname(r.get(), c), PQftable(r.get(), c), std::int16_t(PQftablecol(r.get(), c)),
                                  PQftype(r.get(), c), std::int16_t(PQfsize(r.get(), c)), PQfmod(r.get(), c),
                                  std::int16_t(PQfformat(r.get(), c))});
  return out;
}

ops::Cells cells_of(const PgResult& r, int row) {
  ops::Cells out;
  for (int c = 0; c < r.columns(); ++c) {
    if (PQgetisnull(r.get(), row, c)) out.emplace_back(std::nullopt);
    else out.emplace_back(std::string_view(PQgetvalue(r.get(), row, c), std::size_t(PQgetlength(r.get(), row, c))));
  }
  return out;
}

std::string show(const std::optional<std::string_view>& v, int format) {
  if (!v) return "NULL";
  if (format == 0) return "'" + std::string(*v) + "'";
  std::string hex;
  for (unsigned char ch : *v) hex += fmt::format("{:02x}", ch);
  return "\\x" + hex;
}

// ---- value generators (SQL input text) ---------------------------------------------------------

struct Gen {
  std::mt19937_64 rng{seed()};
  std::int64_t between(std::int64_t lo, std::int64_t hi) { return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng); }
  bool chance(int percent) { return between(1, 100) <= percent; }

  std::string integer(std::int64_t lo, std::int64_t hi) {
    if (chance(15)) return std::to_string(chance(50) ? lo : hi);
    if (chance(10)) return "0";
    return std::to_string(chance(50) ? between(-100, 100) : between(lo, hi));
  }
  std::string numeric(bool specials) {
    if (specials && chance(6)) return std::vector<std::string>{"NaN", "Infinity", "-Infinity"}[std::size_t(between(0, 2))];
    std::string s = chance(40) ? "-" : "";
    s += std::to_string(between(0, chance(30) ? 999999999999 : 999));
    if (chance(10)) s += "000000000000000000000";
    int scale = int(between(0, 6));
    if (scale) {
      s += ".";
      for (int i = 0; i < scale; ++i) s += char('0' + between(0, 9));
    }
    return s;
  }
  /// `signed_zero`: -0 as well as 0 (equal but displayed differently, so only for ordering:
  /// which of two equal values min/max returns depends on the scan order).
  std::string float8(bool single, bool signed_zero = true) {
    static const std::vector<std::string> special = {"NaN", "Infinity", "-Infinity", "0", "-0", "1e-320",
                                                     "1.7976931348623157e308", "-2.2250738585072014e-308"};
    if (chance(15)) {
      std::string s = special[std::size_t(between(0, single ? 4 : 7))];
      return s == "-0" && !signed_zero ? "0" : s;
    }
    double d = std::uniform_real_distribution<double>(-1, 1)(rng) * std::pow(10.0, double(between(-30, 30)));
    return single ? fmt::format("{:.9g}", d) : fmt::format("{:.17g}", d);
  }
  std::string text() {
    static const std::vector<std::string> atoms = {"a", "b", "Z", "A", " ", "0", "9", "_", "-", "~", "\xc3\xa9",
                                                   "\xc3\x9f", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "ab", "\x7f"};
    std::string s;
    for (auto n = between(0, 5); n > 0; --n) s += atoms[std::size_t(between(0, std::int64_t(atoms.size()) - 1))];
    return s;
  }
  std::string date() {
    if (chance(5)) return chance(50) ? "infinity" : "-infinity";
    std::int64_t y = chance(10) ? between(1, 4712) : (chance(10) ? between(10000, 200000) : between(1, 3000));
    bool bc = y <= 4712 && chance(15);
    return fmt::format("{:04}-{:02}-{:02}{}", y, between(1, 12), between(1, 28), bc ? " BC" : "");
  }
  std::string timestamp(bool zone) {
    std::string d = date();
    if (d.find("infinity") != std::string::npos) return d;
    bool bc = d.size() > 3 && d.substr(d.size() - 3) == " BC";
    if (bc) d.resize(d.size() - 3);
    std::string t = fmt::format("{} {:02}:{:02}:{:02}", d, between(0, 23), between(0, 59), between(0, 59));
    if (chance(60)) t += fmt::format(".{:06}", between(0, 999999));
    if (zone) t += fmt::format("{:+03}:{:02}", between(-12, 14), chance(50) ? 0 : 30);
    return t + (bc ? " BC" : "");
  }
  std::string bytea() {
    std::string s = "\\x";
    for (auto n = between(0, 4); n > 0; --n) s += fmt::format("{:02x}", chance(30) ? (chance(50) ? 0 : 255) : between(0, 255));
    return s;
  }
  std::string time() {
    if (chance(3)) return "24:00:00";
    std::string t = fmt::format("{:02}:{:02}:{:02}", between(0, 23), between(0, 59), between(0, 59));
    return chance(60) ? t + fmt::format(".{:06}", between(0, 999999)) : t;
  }
  std::string uuid() {
    std::string s;
    for (int i = 0; i < 32; ++i) {
      if (i == 8 || i == 12 || i == 16 || i == 20) s += "-";
      s += "0123456789abcdef"[between(0, chance(20) ? 1 : 15)];
    }
    return s;
  }
};

struct TypeCase {
  std::string sql_type;
  std::function<std::string(Gen&)> make;
};

std::vector<TypeCase> type_cases() {
  return {
      {"int2", [](Gen& g) { return g.integer(-32768, 32767); }},
      {"int4", [](Gen& g) { return g.integer(INT32_MIN, INT32_MAX); }},
      {"int8", [](Gen& g) { return g.integer(INT64_MIN, INT64_MAX); }},
      {"oid", [](Gen& g) { return std::to_string(g.between(0, 4294967295LL)); }},
      {"numeric", [](Gen& g) { return g.numeric(true); }},
      {"float4", [](Gen& g) { return g.float8(true); }},
      {"float8", [](Gen& g) { return g.float8(false); }},
      {"bool", [](Gen& g) { return std::string(g.chance(50) ? "t" : "f"); }},
      {"text", [](Gen& g) { return g.text(); }},
      {"varchar(12)", [](Gen& g) { return g.text(); }},
      {"char(12)", [](Gen& g) { return g.text(); }},
      {"date", [](Gen& g) { return g.date(); }},
      {"timestamp", [](Gen& g) { return g.timestamp(false); }},
      {"timestamptz", [](Gen& g) { return g.timestamp(true); }},
      {"uuid", [](Gen& g) { return g.uuid(); }},
      {"bytea", [](Gen& g) { return g.bytea(); }},
      {"time", [](Gen& g) { return g.time(); }},
  };
}

/// Inserts `values` (nullopt: NULL) into a fresh table `name (id int, v <type>)`.
void load(const std::string& name, const std::string& columns, const std::vector<std::vector<std::optional<std::string>>>& rows) {
  must(db(), "DROP TABLE IF EXISTS " + name);
  must(db(), "CREATE TABLE " + name + " (" + columns + ")");
  const std::size_t width = rows.empty() ? 0 : rows[0].size();
  for (std::size_t start = 0; start < rows.size(); start += 100) {
    std::string sql = "INSERT INTO " + name + " VALUES ";
    std::vector<std::optional<std::string>> params;
    for (std::size_t r = start; r < std::min(rows.size(), start + 100); ++r) {
      sql += r == start ? "(" : ", (";
      for (std::size_t c = 0; c < width; ++c) {
        params.push_back(rows[r][c]);
        sql += (c ? ", $" : "$") + std::to_string(params.size());
      }
      sql += ")";
    }
    PgResult res = db().exec_params(sql, params);
    if (!res.ok()) throw std::runtime_error(sql.substr(0, 200) + ": " + res.describe());
  }
}

class Collect final : public ops::RowSink {
 public:
  void describe(std::string_view d) override { description = std::string(d); }
  void row(std::string_view r) override { rows.emplace_back(r); }
  std::string description;
  std::vector<std::string> rows;
};

/// Runs `plan` over 3 shard streams: `partial_sql` with $1 = 0, 1, 2, fed the way the executor
/// does (the shard the leaf waits for, else any that is not done). False with `error` set when
/// the pipeline fails.
bool run_merge(const shardline::router::MergePlan& plan, const std::string& partial_sql, int format, Collect& out,
               std::string& error) {
  shardline::proxy::protocol::SqlError e;
  auto p = ops::build_pipeline(plan, 3, {}, ops::MergeContext{true}, out, e);
  if (!p) return error = e.message, false;
  std::vector<PgResult> parts;
  for (int part = 0; part < 3; ++part) parts.push_back(query(partial_sql, format, {std::to_string(part)}));
  for (int s = 0; s < 3; ++s) p->leaf->describe(s, ops::build_row_description(columns_of(parts[std::size_t(s)])));
  std::vector<int> next(3, 0);
  std::vector<bool> done(3, false);
  std::size_t max_held = 0;
  while (!p->error()) {
    int s = p->leaf->waiting_for();
    if (s < 0) s = int(std::find(done.begin(), done.end(), false) - done.begin());
    if (s >= 3) break;
    const PgResult& r = parts[std::size_t(s)];
    if (next[std::size_t(s)] < r.rows()) p->leaf->row(s, ops::build_data_row(cells_of(r, next[std::size_t(s)]++)));
    else {
      p->leaf->shard_done(s);
      done[std::size_t(s)] = true;
    }
    max_held = std::max(max_held, p->leaf->held_rows());
  }
  p->finish();
  if (p->error()) return error = p->error()->message, false;
  if (max_held > 3) return error = "the leaf held " + std::to_string(max_held) + " rows", false;
  return true;
}

// ---- ordering --------------------------------------------------------------------------------

TEST(MergeOpsOracle, ComparatorOrdersEveryTypeAsPostgreSQL) {
  Gen g;
  ASSERT_EQ(db().value("SHOW lc_collate"), "C");
  for (const auto& tc : type_cases()) {
    std::vector<std::vector<std::optional<std::string>>> rows;
    for (int i = 0; i < 160; ++i)
      rows.push_back({std::to_string(i), g.chance(8) ? std::nullopt : std::optional<std::string>(tc.make(g))});
    load("oracle_order", "id int, v " + tc.sql_type, rows);
    for (bool desc : {false, true}) {
      const std::string dir = desc ? "DESC NULLS LAST" : "ASC NULLS FIRST";
      const std::string sql = "SELECT v, dense_rank() OVER (ORDER BY v " + dir + ") FROM oracle_order ORDER BY id";
      for (int format : {0, 1}) {
        // Three parts merged by MergeSort come out in the server's order (ranks never decrease).
        shardline::router::MergePlan plan;
        shardline::router::MergeOperator ms;
        ms.kind = shardline::router::MergeOperator::Kind::MergeSort;
        ms.keys = {{0, desc, !desc}};
        plan.operators = {ms};
        Collect merged;
        std::string error;
        ASSERT_TRUE(run_merge(plan,
                              "SELECT v, r::int4 FROM (SELECT id, v, dense_rank() OVER (ORDER BY v " + dir +
                                  ") r FROM oracle_order) s WHERE id % 3 = $1 ORDER BY v " + dir,
                              format, merged, error))
            << tc.sql_type << ": " << error;
        ASSERT_EQ(merged.rows.size(), rows.size()) << tc.sql_type;
        long last_rank = 0;
        for (const auto& m : merged.rows) {
          ops::Cells c;
          ASSERT_TRUE(ops::parse_data_row(m, c));
          std::uint32_t be = 0;
          if (format == 1) std::memcpy(&be, c[1]->data(), 4);
          long rank = format == 0 ? std::stol(std::string(*c[1])) : long(__builtin_bswap32(be));
          EXPECT_GE(rank, last_rank) << tc.sql_type << " " << dir << ": merged " << show(c[0], format)
                                     << " out of order";
          last_rank = rank;
        }
        PgResult r = query(sql, format);
        auto cols = columns_of(r);
        shardline::proxy::protocol::SqlError e;
        auto order = ops::RowOrder::make({{0, desc, !desc}}, cols, ops::MergeContext{true}, e);
        ASSERT_TRUE(order) << tc.sql_type << ": " << e.message;
        std::vector<ops::RowKey> keys(std::size_t(r.rows()));
        std::vector<long> ranks;
        for (int i = 0; i < r.rows(); ++i) {
          ASSERT_TRUE(order->decode(cells_of(r, i), keys[std::size_t(i)], e)) << tc.sql_type << ": " << e.message;
          const char* rank = PQgetvalue(r.get(), i, 1);
          std::uint64_t be = 0;
          if (format == 1) std::memcpy(&be, rank, 8);
          ranks.push_back(format == 0 ? std::stol(rank) : long(__builtin_bswap64(be)));
        }
        int mismatches = 0;
        for (int i = 0; i < r.rows() && mismatches < 5; ++i)
          for (int j = 0; j < r.rows() && mismatches < 5; ++j) {
            long want = ranks[std::size_t(i)] - ranks[std::size_t(j)];
            int c = order->compare(keys[std::size_t(i)], keys[std::size_t(j)]);
            if ((want < 0) != (c < 0) || (want == 0) != (c == 0)) {
              ++mismatches;
              auto ci = cells_of(r, i), cj = cells_of(r, j);
              ADD_FAILURE() << tc.sql_type << " " << dir << (format ? " binary" : " text") << ": " << show(ci[0], format)
                            << " vs " << show(cj[0], format) << ": PostgreSQL ranks " << ranks[std::size_t(i)] << " / "
                            << ranks[std::size_t(j)] << ", we compare " << c;
            }
          }
      }
    }
  }
}

// ---- aggregates ------------------------------------------------------------------------------

/// Runs `plan` over the three parts' partial results (`partial_sql` with $1 = part) and checks
/// its output against `true_sql`'s, in `format`.
void check_merge(const shardline::router::MergePlan& plan, const std::string& partial_sql, const std::string& true_sql,
                 int format, const std::string& what) {
  Collect out;
  std::string error;
  ASSERT_TRUE(run_merge(plan, partial_sql, format, out, error)) << what << ": " << error;
  PgResult truth = query(true_sql, format);
  auto got_cols = ops::parse_row_description(out.description);
  ASSERT_TRUE(got_cols);
  auto want_cols = columns_of(truth);
  ASSERT_EQ(got_cols->size(), want_cols.size());
  for (std::size_t c = 0; c < want_cols.size(); ++c) {
    EXPECT_EQ((*got_cols)[c].type_oid, want_cols[c].type_oid) << what << " column " << c;
    EXPECT_EQ((*got_cols)[c].format, want_cols[c].format) << what << " column " << c;
  }
  ASSERT_EQ(int(out.rows.size()), truth.rows()) << what;
  ops::Cells got;
  for (int i = 0; i < truth.rows(); ++i) {
    ASSERT_TRUE(ops::parse_data_row(out.rows[std::size_t(i)], got));
    auto want = cells_of(truth, i);
    for (std::size_t c = 0; c < want.size(); ++c)
      EXPECT_EQ(show(got[c], format), show(want[c], format))
          << what << (format ? " binary" : " text") << ", row " << i << ", column " << c << " (" << want_cols[c].name << ")";
  }
}

using Fn = shardline::router::AggregateFn;

shardline::router::AggregateColumn agg(Fn fn, int input, int count_input = -1) {
  shardline::router::AggregateColumn a;
  a.fn = fn;
  a.input = input;
  a.count_input = count_input;
  return a;
}

TEST(MergeOpsOracle, FinalAggregateEqualsTheAggregateOverAllRows) {
  Gen g;
  const std::vector<std::string> cols = {"i2", "i4", "i8", "n"};
  // Partial per part: count(*), then per column count, sum, min, max; then bool_and, bool_or.
  std::string partial = "SELECT count(*)", truth = "SELECT count(*)";
  std::vector<shardline::router::AggregateColumn> aggs = {agg(Fn::Count, 0)};
  for (std::size_t i = 0; i < cols.size(); ++i) {
    const auto& c = cols[i];
    const int base = 1 + int(i) * 4;
    partial += fmt::format(", count({0}), sum({0}), min({0}), max({0})", c);
    truth += fmt::format(", count({0}), sum({0}), min({0}), max({0}), avg({0})", c);
    for (auto a : {agg(Fn::Count, base), agg(Fn::Sum, base + 1), agg(Fn::Min, base + 2), agg(Fn::Max, base + 3),
                   agg(Fn::Avg, base + 1, base)})
      aggs.push_back(a);
  }
  const int b = 1 + int(cols.size()) * 4;
  partial += ", bool_and(b), bool_or(b)";
  truth += ", bool_and(b), bool_or(b)";
  aggs.push_back(agg(Fn::BoolAnd, b));
  aggs.push_back(agg(Fn::BoolOr, b + 1));
  // min/max of the other ordered types.
  int next = b + 2;
  for (const char* c : {"f", "t", "ts", "d"}) {
    partial += fmt::format(", min({0}), max({0})", c);
    truth += fmt::format(", min({0}), max({0})", c);
    aggs.push_back(agg(Fn::Min, next++));
    aggs.push_back(agg(Fn::Max, next++));
  }

  shardline::router::MergePlan flat, grouped;
  shardline::router::MergeOperator concat, merge, fa;
  concat.kind = shardline::router::MergeOperator::Kind::Concat;
  merge.kind = shardline::router::MergeOperator::Kind::MergeSort;
  merge.keys = {{0, false, false}};
  fa.kind = shardline::router::MergeOperator::Kind::FinalAggregate;
  fa.aggregates = aggs;
  flat.operators = {concat, fa};
  // GROUP BY g: the group key first, every other input shifted by one.
  for (auto& a : fa.aggregates) {
    ++a.input;
    if (a.count_input >= 0) ++a.count_input;
  }
  shardline::router::AggregateColumn key;
  key.group_key = true;
  key.input = 0;
  fa.aggregates.insert(fa.aggregates.begin(), key);
  grouped.operators = {merge, fa};

  for (int round = 0; round < 24; ++round) {
    const bool specials = round % 3 == 2;  // NaN / infinities in some rounds only
    const int rows = int(g.between(0, round < 2 ? 3 : 150));
    const int empty_part = int(g.between(-1, 2));
    std::vector<std::vector<std::optional<std::string>>> data;
    for (int r = 0; r < rows; ++r) {
      int part = int(g.between(0, 2));
      if (part == empty_part) part = (part + 1) % 3;
      auto maybe = [&](std::string v) { return g.chance(15) ? std::nullopt : std::optional<std::string>(std::move(v)); };
      data.push_back({std::to_string(part), std::to_string(g.between(0, 4)), maybe(g.integer(-32768, 32767)),
                      maybe(g.integer(INT32_MIN, INT32_MAX)), maybe(g.integer(-4000000000000000000LL, 4000000000000000000LL)),
                      maybe(g.numeric(specials)), maybe(g.chance(70) ? "t" : "f"), maybe(g.float8(false, false)),
                      maybe(g.text()), maybe(g.timestamp(true)), maybe(g.date())});
    }
    load("oracle_agg", "part int, g int, i2 int2, i4 int4, i8 int8, n numeric, b bool, f float8, t text, ts timestamptz, d date",
         data);
    const std::string what = fmt::format("round {} ({} rows)", round, rows);
    for (int format : {0, 1}) {
      check_merge(flat, partial + " FROM oracle_agg WHERE part = $1", truth + " FROM oracle_agg", format, what);
      check_merge(grouped, "SELECT g, " + partial.substr(7) + " FROM oracle_agg WHERE part = $1 GROUP BY g ORDER BY g",
                  "SELECT g, " + truth.substr(7) + " FROM oracle_agg GROUP BY g ORDER BY g", format, what + " GROUP BY");
    }
    if (HasFailure()) break;
  }
}

TEST(MergeOpsOracle, NumericAdditionAndDivisionByCountEqualTheServers) {
  Gen g;
  auto wide = [&] {  // magnitudes from 1e-30 to 1e40, scales up to 40
    std::string digits = std::to_string(g.between(1, 999999999));
    int exp = int(g.between(-30, 40));
    return (g.chance(40) ? "-" : "") + digits + "e" + std::to_string(exp);
  };
  std::vector<std::vector<std::optional<std::string>>> rows;
  for (int i = 0; i < 400; ++i) {
    std::string a = g.chance(50) ? g.numeric(false) : wide();
    std::string b = g.chance(50) ? g.numeric(false) : wide();
    std::int64_t n = g.chance(50) ? g.between(1, 9) : g.between(1, g.chance(50) ? 100000 : 9000000000000000000LL);
    rows.push_back({std::to_string(i), a, b, std::to_string(n)});
  }
  load("oracle_num", "id int, a numeric, b numeric, n int8", rows);
  for (int format : {0, 1}) {
    PgResult r = query("SELECT a, b, n, a + b, a / n FROM oracle_num ORDER BY id", format);
    int failures = 0;
    for (int i = 0; i < r.rows() && failures < 10; ++i) {
      auto c = cells_of(r, i);
      auto parse = [&](std::string_view v) {
        return format == 0 ? ops::parse_numeric_text(v) : ops::parse_numeric_binary(v);
      };
      auto a = parse(*c[0]), b = parse(*c[1]);
      ASSERT_TRUE(a && b);
      std::int64_t n = 0;
      if (format == 0) n = std::stoll(std::string(*c[2]));
      else for (char ch : *c[2]) n = (n << 8) | std::uint8_t(ch);
      auto encode = [&](const ops::Numeric& x) {
        return format == 0 ? ops::numeric_to_text(x) : ops::numeric_to_binary(x);
      };
      std::string sum = encode(ops::numeric_add(*a, *b)), quotient = encode(ops::numeric_div_count(*a, n));
      if (sum != *c[3] || quotient != *c[4]) {
        ++failures;
        ADD_FAILURE() << (format ? "binary" : "text") << " row " << i << ": a " << show(c[0], format) << ", b "
                      << show(c[1], format) << ", n " << n << ": a + b " << show(sum, format) << " vs server "
                      << show(c[3], format) << "; a / n " << show(quotient, format) << " vs server " << show(c[4], format);
      }
    }
  }
}

}  // namespace
