// The scatter-gather differential test (SPEC section 6): the same generated data in one plain
// PostgreSQL database and, through the proxy, on 3 shards; a generated corpus of tenant-less
// reads run through the simple Query protocol and the extended protocol (Parse/Bind/Describe/
// Execute/Sync, $n parameters, text and binary results) on both; the raw wire answers compared
// exactly (tests/integration/support/diff_compare.hpp). Every execution is identical, refused
// with 0A000, or wrong. The test fails on any wrong answer and on any required query that is not
// identical.
//
// Environment:
//   SHARDLINE_DIFF_SEED=<n>         data and corpus seed (printed; default kDefaultSeed)
//   SHARDLINE_DIFF_QUERY=<i>[,<j>]  run only these corpus indexes (to reproduce a failure)
//   SHARDLINE_DIFF_REPORT_ONLY=1    print the summary; fail only on wrong answers, not on
//                                   required queries the proxy still refuses
//   SHARDLINE_DIFF_SHOW=<n>         print the first n failures of each kind in full (25)
//
// The plain database is `diff_oracle` on the first server, created from the same template with
// the same locale (C) and settings as the shards' `app` databases. A second plain database,
// `diff_mirror` on the second server, holds the same rows inserted in the opposite order and
// plans without hash aggregation: every query must get the same answer
// there (under the same order rules), or the corpus claims an order its ORDER BY does not
// determine, which would show up as a false `wrong` once the proxy answers it.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/diff_compare.hpp"
#include "tests/integration/support/diff_corpus.hpp"
#include "tests/integration/support/diff_data.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"
#include "tests/integration/support/raw_client.hpp"

namespace {

using shardline::control::LocalCluster;
using namespace shardline::testing;

constexpr int kShards = 3;
constexpr int kLogicalShards = 1024;
constexpr int kQueries = 480;
constexpr std::uint64_t kDefaultSeed = 20261201;

/// How many failures of each kind are printed in full (SHARDLINE_DIFF_SHOW overrides).
std::size_t failures_shown() {
  const char* s = std::getenv("SHARDLINE_DIFF_SHOW");
  return s != nullptr && *s != '\0' ? std::size_t(std::stoul(s)) : 25;
}

std::uint64_t diff_seed() {
  const char* s = std::getenv("SHARDLINE_DIFF_SEED");
  if (s == nullptr || *s == '\0') return kDefaultSeed;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (*end != '\0') throw std::invalid_argument(fmt::format("SHARDLINE_DIFF_SEED must be a decimal number, got '{}'", s));
  return v;
}

bool report_only() {
  const char* s = std::getenv("SHARDLINE_DIFF_REPORT_ONLY");
  return s != nullptr && std::string(s) == "1";
}

/// The corpus indexes of SHARDLINE_DIFF_QUERY (empty: all).
std::set<int> selected_queries() {
  std::set<int> out;
  const char* s = std::getenv("SHARDLINE_DIFF_QUERY");
  if (s == nullptr) return out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, ',');)
    if (!part.empty()) out.insert(std::stoi(part));
  return out;
}

LocalCluster& cluster() {
  ClusterSpec spec;
  spec.shards = kShards;
  spec.replicas = 0;
  return test_cluster(spec);
}

ProxyProcess& proxy() {
  static ProxyProcess p([] {
    ProxyConfig c(cluster(), free_port());
    for (const auto& t : diff_tables()) c.sharded_table(ShardedTableSpec{t.name, t.key, t.key_type});
    c.pool_size(4);
    return c.yaml();
  }());
  return p;
}

std::string oracle_conninfo() { return cluster().conninfo(0) + " dbname=diff_oracle connect_timeout=5"; }
std::string mirror_conninfo() { return cluster().conninfo(1) + " dbname=diff_mirror connect_timeout=5"; }
std::string proxy_conninfo() { return proxy().conninfo() + " connect_timeout=5"; }

PgConnection connect(const std::string& conninfo) {
  PgConnection c(conninfo);
  if (!c.ok()) throw std::runtime_error("cannot connect: " + c.error());
  return c;
}

/// Loads `data` into the plain database and through the proxy, then checks both hold every
/// row and every shard holds some of each table.
void create_database(int server, const std::string& name) {
  const PgConnection su = connect(cluster().superuser_conninfo(server));
  must(su, "DROP DATABASE IF EXISTS " + name);
  must(su, fmt::format("CREATE DATABASE {} OWNER {}", name, cluster().options().user));
}

void load_mirror(const DiffDataset& data) {
  create_database(1, "diff_mirror");
  must(connect(cluster().superuser_conninfo(1)),
       "ALTER DATABASE diff_mirror SET enable_hashagg = off");
  const PgConnection mirror = connect(mirror_conninfo());
  for (const auto& sql : data.ddl) must(mirror, sql);
  for (auto it = data.reversed_inserts.rbegin(); it != data.reversed_inserts.rend(); ++it) must(mirror, *it);
  must(mirror, "ANALYZE");
}

void load(const DiffDataset& data) {
  create_database(0, "diff_oracle");
  load_mirror(data);
  const PgConnection oracle = connect(oracle_conninfo()), via = connect(proxy_conninfo());
  must(via, "DROP TABLE IF EXISTS diff_a, diff_b, diff_k");
  for (const auto& sql : data.ddl) {
    must(oracle, sql);
    must(via, sql);
  }
  for (const auto& sql : data.inserts) {
    must(oracle, sql);
    must(via, sql);
  }
  for (const auto& [table, rows] : data.row_counts) {
    ASSERT_EQ(oracle.value("SELECT count(*) FROM " + table), std::to_string(rows)) << table;
    long on_shards = 0;
    for (int s = 0; s < kShards; ++s) {
      const long n = std::stol(connect(cluster().conninfo(s)).value("SELECT count(*) FROM " + table));
      ASSERT_GT(n, 0) << table << " has no rows on shard " << s;
      on_shards += n;
    }
    ASSERT_EQ(on_shards, rows) << table;
  }
}

enum class Mode { Simple, ExtendedText, ExtendedBinary };
const char* mode_name(Mode m) {
  switch (m) {
    case Mode::Simple: return "simple";
    case Mode::ExtendedText: return "extended/text";
    case Mode::ExtendedBinary: return "extended/binary";
  }
  return "?";
}

std::string request(const DiffQuery& q, Mode m) {
  if (m == Mode::Simple) return raw::query(q.simple_sql);
  std::vector<std::optional<std::string>> params(q.params.begin(), q.params.end());
  return raw::parse("", q.extended_sql) +
         raw::bind("", "", params, {std::int16_t(m == Mode::ExtendedBinary ? 1 : 0)}) + raw::describe('P', "") +
         raw::execute("", 0) + raw::sync();
}

/// One side of the comparison: a raw connection, opened again after a failure.
class Side {
 public:
  explicit Side(std::string conninfo) : conninfo_(std::move(conninfo)) {}
  DiffAnswer run(const std::string& bytes) {
    DiffAnswer a;
    try {
      if (!client_) client_ = std::make_unique<RawClient>(conninfo_);
      a.messages = client_->round_trip(bytes);
    } catch (const std::exception& e) {
      a.transport_error = e.what();
      client_.reset();
    }
    return a;
  }

 private:
  std::string conninfo_;
  std::unique_ptr<RawClient> client_;
};

struct Tally {
  int identical = 0, refused = 0, wrong = 0;
  void add(DiffVerdict v) { (v == DiffVerdict::Identical ? identical : v == DiffVerdict::Refused ? refused : wrong)++; }
  std::string str() const { return fmt::format("identical {:4}  refused {:4}  wrong {:4}", identical, refused, wrong); }
};

struct Failure {
  const DiffQuery* query;
  Mode mode;
  DiffOutcome outcome;
  DiffAnswer oracle, proxy;
};

struct Report {
  Tally all, required, optional;
  std::map<std::string, Tally> by_mode, by_feature;
  std::map<std::string, int> refusal_messages;
  int queries = 0, required_queries = 0, required_all_identical = 0;
  std::size_t wrong_count = 0, required_not_identical_count = 0;
  /// The first failures_shown() of each (the answers of all of them would not fit in memory).
  std::vector<Failure> wrong, required_not_identical;
  /// One line per wrong execution, all of them.
  std::vector<std::string> wrong_lines;
  /// Executions where the two plain databases disagree (corpus bugs).
  std::vector<std::string> undetermined;
};

void print_failure(const Failure& f, std::uint64_t seed) {
  std::cout << fmt::format(
      "--- query {} ({}, {}): {} - {}\n  simple:   {}\n  extended: {}  params [{}]\n  database: {}\n  proxy:    {}\n"
      "  reproduce: SHARDLINE_DIFF_SEED={} SHARDLINE_DIFF_QUERY={} build/it_scatter_differential_test\n",
      f.query->index, f.query->required ? "required" : "optional", mode_name(f.mode), verdict_name(f.outcome.verdict),
      f.outcome.reason, f.query->simple_sql, f.query->extended_sql, fmt::join(f.query->params, ", "),
      render_answer(f.oracle), render_answer(f.proxy), seed, f.query->index);
}

void print_report(const Report& r, std::uint64_t seed) {
  std::cout << fmt::format("\n==== scatter differential: seed {} ({} queries, {} required; {} executions)\n", seed,
                           r.queries, r.required_queries, r.all.identical + r.all.refused + r.all.wrong);
  std::cout << fmt::format("all:       {}\nrequired:  {}\noptional:  {}\n", r.all.str(), r.required.str(), r.optional.str());
  std::cout << fmt::format("required queries identical in all 3 modes: {} of {}\n", r.required_all_identical, r.required_queries);
  for (const auto& [m, t] : r.by_mode) std::cout << fmt::format("  {:16} {}\n", m, t.str());
  std::cout << "per feature (executions):\n";
  for (const auto& [f, t] : r.by_feature) std::cout << fmt::format("  {:22} {}\n", f, t.str());
  std::cout << "most frequent refusals:\n";
  std::vector<std::pair<int, std::string>> top;
  for (const auto& [m, n] : r.refusal_messages) top.emplace_back(-n, m);
  std::sort(top.begin(), top.end());
  for (std::size_t i = 0; i < top.size() && i < 12; ++i) std::cout << fmt::format("  {:5}  {}\n", -top[i].first, top[i].second);
  for (const auto& f : r.wrong) print_failure(f, seed);
  for (const auto& f : r.required_not_identical) print_failure(f, seed);
  const std::size_t hidden = r.wrong_count + r.required_not_identical_count - r.wrong.size() - r.required_not_identical.size();
  if (hidden) std::cout << fmt::format("({} more failures not shown in full)\n", hidden);
  if (!r.undetermined.empty()) std::cout << "queries the two plain databases answer differently (corpus bugs):\n";
  for (const auto& l : r.undetermined) std::cout << "  " << l << "\n";
  if (!r.wrong_lines.empty()) std::cout << "every wrong execution:\n";
  for (const auto& l : r.wrong_lines) std::cout << "  " << l << "\n";
  std::cout << fmt::format("==== seed {}: {} wrong, {} required executions not identical\n", seed, r.wrong_count,
                           r.required_not_identical_count);
}

/// Every scope item the corpus must cover, each in at least a few required queries.
const std::vector<std::string> kRequiredFeatures = {
    "order_by", "multi_key", "asc", "desc", "nulls_first", "nulls_last", "expression", "ordinal",
    "hidden_sort_key", "limit", "offset", "limit_param", "param", "count", "sum", "min", "max", "avg", "bool_and", "bool_or",
    "group_by", "having", "distinct", "in_list", "text_key", "where", "sort_int", "sort_numeric", "sort_float",
    "sort_text", "sort_bool", "sort_timestamptz", "sort_date"};

void check_coverage(const std::vector<DiffQuery>& corpus) {
  std::map<std::string, int> required;
  int optional = 0, combined = 0;
  const std::set<std::string> scope = {"order_by", "limit", "offset", "aggregate", "group_by", "having", "distinct", "in_list"};
  for (const auto& q : corpus) {
    if (!q.required) {
      ++optional;
      continue;
    }
    int n = 0;
    for (const auto& f : q.features) {
      ++required[f];
      n += int(scope.count(f));
    }
    combined += n >= 3;
  }
  for (const auto& f : kRequiredFeatures) EXPECT_GE(required[f], 3) << "the corpus hardly covers " << f;
  EXPECT_GE(optional, 20) << "too few optional queries";
  EXPECT_GE(combined, 40) << "too few queries combining three or more scope items";
  std::cout << fmt::format("corpus: {} queries, {} optional, {} combining >= 3 scope items\n", corpus.size(), optional, combined);
}

// ---- the comparison itself, on crafted answers (no servers) ---------------------------------

std::string be(std::uint32_t v, int bytes) {
  std::string s;
  for (int i = bytes - 1; i >= 0; --i) s += char((v >> (8 * i)) & 0xff);
  return s;
}

/// A RowDescription of (name, type OID) columns, typmod -1 unless given, text format.
RawMessage row_description(const std::vector<std::pair<std::string, std::uint32_t>>& cols, std::int32_t typmod = -1,
                           std::uint32_t table_oid = 0) {
  std::string b = be(std::uint32_t(cols.size()), 2);
  for (const auto& [name, oid] : cols)
    b += name + '\0' + be(table_oid, 4) + be(table_oid ? 1 : 0, 2) + be(oid, 4) + be(0xffff, 2) +
         be(std::uint32_t(typmod), 4) + be(0, 2);
  return {'T', b};
}

RawMessage data_row(const std::vector<std::optional<std::string>>& values) {
  std::string b = be(std::uint32_t(values.size()), 2);
  for (const auto& v : values) b += v ? be(std::uint32_t(v->size()), 4) + *v : be(0xffffffffu, 4);
  return {'D', b};
}

DiffAnswer answer(std::vector<RawMessage> rows, const std::string& tag = "SELECT 3", RawMessage desc = row_description({{"k", 23}, {"v", 25}})) {
  DiffAnswer a;
  a.messages.push_back(std::move(desc));
  for (auto& r : rows) a.messages.push_back(std::move(r));
  a.messages.push_back({'C', tag + '\0'});
  a.messages.push_back({'Z', "I"});
  return a;
}

DiffAnswer error(const std::string& code) {
  DiffAnswer a;
  a.messages.push_back({'E', std::string("SERROR") + '\0' + "C" + code + '\0' + "Mboom" + '\0' + '\0'});
  a.messages.push_back({'Z', "I"});
  return a;
}

DiffQuery ordered(DiffOrder order, std::vector<int> keys = {}) {
  DiffQuery q;
  q.order = order;
  q.run_keys = std::move(keys);
  return q;
}

TEST(DiffCompare, JudgesRowsAsFarAsTheOrderDeterminesThem) {
  const auto r1a = data_row({"1", "a"}), r1b = data_row({"1", "b"}), r2c = data_row({"2", "c"});
  const DiffAnswer db = answer({r1a, r1b, r2c});
  auto verdict = [&](const DiffQuery& q, const DiffAnswer& proxy) { return compare_answers(q, db, proxy).verdict; };
  using V = DiffVerdict;
  const DiffQuery total = ordered(DiffOrder::Total), runs = ordered(DiffOrder::Runs, {0}), any = ordered(DiffOrder::Unordered);

  EXPECT_EQ(verdict(total, answer({r1a, r1b, r2c}, "SELECT 3", row_description({{"k", 23}, {"v", 25}}, -1, 16384))),
            V::Identical) << "table OID and attnum differ between databases";
  EXPECT_EQ(verdict(total, answer({r1b, r1a, r2c})), V::Wrong);
  EXPECT_EQ(verdict(runs, answer({r1b, r1a, r2c})), V::Identical) << "free order within a run of equal keys";
  EXPECT_EQ(verdict(runs, answer({r2c, r1a, r1b})), V::Wrong);
  EXPECT_EQ(verdict(runs, answer({r1a, r2c, r1b})), V::Wrong) << "a run split in two";
  EXPECT_EQ(verdict(any, answer({r2c, r1b, r1a})), V::Identical);
  EXPECT_EQ(verdict(any, answer({r2c, r1b, r1b})), V::Wrong);
  EXPECT_EQ(verdict(any, answer({r2c, r1b})), V::Wrong);
  EXPECT_EQ(verdict(total, answer({r1a, r1b, data_row({"2", std::nullopt})})), V::Wrong);
  EXPECT_EQ(verdict(total, answer({r1a, r1b, data_row({"2", ""})})), V::Wrong);
  EXPECT_EQ(verdict(total, answer({r1a, r1b, r2c}, "SELECT 2")), V::Wrong);
  EXPECT_EQ(verdict(total, answer({r1a, r1b, r2c}, "SELECT 3", row_description({{"k", 20}, {"v", 25}}))), V::Wrong);
  EXPECT_EQ(verdict(total, answer({r1a, r1b, r2c}, "SELECT 3", row_description({{"k", 23}, {"v", 25}}, 6))), V::Wrong);
  EXPECT_EQ(verdict(total, answer({r1a, r1b, r2c}, "SELECT 3", row_description({{"key", 23}, {"v", 25}}))), V::Wrong);
  EXPECT_EQ(verdict(total, error("0A000")), V::Refused);
  EXPECT_EQ(verdict(total, error("42P01")), V::Wrong);
  DiffAnswer lost;
  lost.transport_error = "closed";
  EXPECT_EQ(verdict(total, lost), V::Wrong);
  EXPECT_EQ(compare_answers(total, error("22012"), error("22012")).verdict, V::Identical);
  EXPECT_EQ(compare_answers(total, error("22012"), error("0A000")).verdict, V::Refused);
  EXPECT_EQ(compare_answers(total, error("22012"), db).verdict, V::Wrong);
}

TEST(ScatterDifferential, AnswersLikeOneDatabase) {
  const std::uint64_t seed = diff_seed();
  std::cout << "scatter differential seed: " << seed << " (SHARDLINE_DIFF_SEED overrides)" << std::endl;
  const DiffDataset data = generate_diff_data(seed, kShards, kLogicalShards);
  ASSERT_NO_FATAL_FAILURE(load(data));
  const std::vector<DiffQuery> corpus = generate_diff_corpus(seed, data, kQueries);
  check_coverage(corpus);
  const std::set<int> only = selected_queries();

  Side oracle(oracle_conninfo()), mirror(mirror_conninfo()), via(proxy_conninfo());
  Report r;
  for (const auto& q : corpus) {
    if (!only.empty() && !only.count(q.index)) continue;
    ++r.queries;
    r.required_queries += q.required;
    bool all_identical = true;
    for (Mode m : {Mode::Simple, Mode::ExtendedText, Mode::ExtendedBinary}) {
      const std::string bytes = request(q, m);
      DiffAnswer db = oracle.run(bytes), px = via.run(bytes);
      // Float sums depend on the order of the rows even in one database: optional, and left out.
      const bool order_sensitive = std::count(q.features.begin(), q.features.end(), "float_sum") > 0;
      if (const DiffOutcome self = compare_answers(q, db, mirror.run(bytes));
          !order_sensitive && self.verdict != DiffVerdict::Identical)
        r.undetermined.push_back(fmt::format("query {} {}: {} | {}", q.index, mode_name(m), self.reason.substr(0, 200), q.simple_sql));
      DiffOutcome outcome = compare_answers(q, db, px);
      Failure f{&q, m, std::move(outcome), std::move(db), std::move(px)};
      const DiffVerdict v = f.outcome.verdict;
      r.all.add(v);
      (q.required ? r.required : r.optional).add(v);
      r.by_mode[mode_name(m)].add(v);
      for (const auto& feature : q.features) r.by_feature[feature].add(v);
      if (v == DiffVerdict::Refused) ++r.refusal_messages[f.outcome.reason];
      all_identical = all_identical && v == DiffVerdict::Identical;
      if (v == DiffVerdict::Wrong) {
        r.wrong_lines.push_back(fmt::format("query {} {}: {}", q.index, mode_name(m), f.outcome.reason.substr(0, 240)));
        if (r.wrong_count++ < failures_shown()) r.wrong.push_back(std::move(f));
      } else if (q.required && v != DiffVerdict::Identical) {
        if (r.required_not_identical_count++ < failures_shown()) r.required_not_identical.push_back(std::move(f));
      }
    }
    r.required_all_identical += q.required && all_identical;
  }
  print_report(r, seed);
  EXPECT_EQ(r.undetermined.size(), 0u) << "the corpus has queries whose answer its ORDER BY does not determine";
  EXPECT_EQ(r.wrong_count, 0u) << "wrong answers (seed " << seed << "); see the report above";
  if (report_only()) return;
  EXPECT_EQ(r.required_not_identical_count, 0u)
      << "required queries not answered identically (seed " << seed << "); SHARDLINE_DIFF_REPORT_ONLY=1 reports without failing";
}

}  // namespace
