// The statements the merge planner writes for the shards, run on a real PostgreSQL: for every
// golden scatter case (tests/unit/router/plans/*.yaml) that plans a merge, the shard SQL must
// parse and run wherever the client's query does (and fail with the same SQLSTATE where it
// does not), give the client's columns the names and types PostgreSQL gives them (avg's column
// carries the shards' sum), and hold every column the operators name. On one server the merge
// of one stream is easy to state, so the rows are checked too: without LIMIT the client's
// visible rows must be the shard rows passed through Distinct / Project, and a FinalAggregate of
// one stream is the identity except avg, which must be the sum over the count. The same holds
// for each case planned from its simple-protocol shape with the literals put back.

#include <libpq-fe.h>

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <filesystem>
#include <map>
#include <random>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/loader.hpp"
#include "router/parser/literal_normalizer.hpp"
#include "router/planner/router.hpp"
#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"

namespace shardline::router {
namespace {

using testing::PgConnection;
using testing::PgResult;

const char* kConfig = R"(
listen: {host: 127.0.0.1, port: 6432}
users: [{name: app, password: secret, database: app}]
backend: {user: app, password: secret, database: app}
sharding:
  logical_shards: 1024
  key: tenant_id
  tables: {orders: {type: bigint}, items: {type: bigint}}
directory:
  - {logical: 0-511, shard: s0}
  - {logical: 512-1023, shard: s1}
shards:
  s0: {primary: {host: 127.0.0.1, port: 15400}}
  s1: {primary: {host: 127.0.0.1, port: 15410}}
)";

/// The columns the golden cases use; rows with NULLs, duplicates and negative values.
const char* kSchema = R"(
DROP TABLE IF EXISTS orders, items;
CREATE TABLE orders (tenant_id bigint, id int, status text, total numeric(10,2), amount int,
                     created_at timestamptz, paid bool, plan_id int);
CREATE TABLE items (tenant_id bigint, order_id int, qty int);
INSERT INTO orders
  SELECT i % 7, i, (ARRAY['open', 'paid', NULL, 'void'])[1 + i % 4], CASE WHEN i % 5 = 0 THEN NULL ELSE (i * 37 % 101) - 20.5 END,
         CASE WHEN i % 6 = 0 THEN NULL ELSE i % 9 - 3 END, timestamptz '2024-01-01' + i * interval '7 hours', i % 3 = 0,
         CASE WHEN i % 8 = 0 THEN NULL ELSE i % 4 END
  FROM generate_series(1, 60) i;
INSERT INTO items SELECT i % 7, i % 30, i % 5 FROM generate_series(1, 40) i;
)";

struct Fixture {
  Fixture() {
    auto r = config::parse_config(kConfig, "merge.yaml");
    if (!r.ok()) throw std::runtime_error("bad config");
    cfg = *r.config;
    schema = ShardingSchema::from_config(cfg);
    dir = DirectorySnapshot::from_config(cfg);
  }
  config::Config cfg;
  std::shared_ptr<const ShardingSchema> schema;
  std::shared_ptr<const DirectorySnapshot> dir;
};

std::vector<std::string> row(const PgResult& r, int i, int columns) {
  std::vector<std::string> out;
  for (int c = 0; c < columns; ++c) out.push_back(r.is_null(i, c) ? "<null>" : r.value(i, c));
  return out;
}

/// The one-stream merge of `shard` rows as far as it can be stated without the operators'
/// type-aware code: Distinct on equal text, FinalAggregate as identity (avg: sum / count as a
/// number), Project. nullopt when the plan has an operator that this does not model.
std::optional<std::multiset<std::vector<std::string>>> one_stream(const MergePlan& plan, const PgResult& shard,
                                                                  int visible, std::vector<int>& avg_columns) {
  const int width = shard.columns();
  auto col = [&](int c) { return c < 0 ? width + c : c; };
  std::vector<std::vector<std::string>> rows;
  for (int i = 0; i < shard.rows(); ++i) rows.push_back(row(shard, i, width));
  for (const auto& op : plan.operators) {
    switch (op.kind) {
      case MergeOperator::Kind::Concat:
      case MergeOperator::Kind::MergeSort:
      case MergeOperator::Kind::Sort:
        break;
      case MergeOperator::Kind::Distinct: {
        std::set<std::vector<std::string>> seen;
        std::vector<std::vector<std::string>> kept;
        for (auto& r : rows) {
          std::vector<std::string> k;
          for (const auto& key : op.keys) k.push_back(r[std::size_t(col(key.column))]);
          if (seen.insert(k).second) kept.push_back(r);
        }
        rows = std::move(kept);
        break;
      }
      case MergeOperator::Kind::FinalAggregate:
        for (auto& r : rows) {
          std::vector<std::string> out;
          for (std::size_t a = 0; a < op.aggregates.size(); ++a) {
            const auto& ag = op.aggregates[a];
            if (ag.fn == AggregateFn::Avg && !ag.group_key) {
              if (std::find(avg_columns.begin(), avg_columns.end(), int(a)) == avg_columns.end()) avg_columns.push_back(int(a));
              const std::string& sum = r[std::size_t(ag.input)];
              const std::string& count = r[std::size_t(ag.count_input)];
              out.push_back(count == "0" || sum == "<null>" ? "<null>" : std::to_string(std::stod(sum) / std::stod(count)));
            } else {
              out.push_back(r[std::size_t(ag.input)]);
            }
          }
          r = std::move(out);
        }
        break;
      case MergeOperator::Kind::Project:
      case MergeOperator::Kind::Having:
      case MergeOperator::Kind::Limit:
        if (op.kind != MergeOperator::Kind::Project) return std::nullopt;
        break;
    }
  }
  std::multiset<std::vector<std::string>> out;
  for (auto& r : rows) {
    r.resize(std::size_t(visible));
    out.insert(r);
  }
  return out;
}

/// Every column an operator of `plan` names, as an index into a row of `width` columns.
std::vector<int> named_columns(const MergePlan& plan, int width) {
  std::vector<int> out;
  auto add = [&](int c) { out.push_back(c < 0 ? width + c : c); };
  for (const auto& op : plan.operators) {
    for (const auto& k : op.keys) add(k.column);
    for (const auto& a : op.aggregates) {
      add(a.input);
      if (a.count_input >= 0) add(a.count_input);
    }
    if (op.kind == MergeOperator::Kind::Having) {
      std::vector<const Predicate*> todo{&op.predicate};
      while (!todo.empty()) {
        const Predicate* p = todo.back();
        todo.pop_back();
        if (p->column >= 0 || p->kind == Predicate::Kind::Compare) add(p->column);
        for (const auto& a : p->args) todo.push_back(&a);
      }
    }
  }
  return out;
}

/// Compares two shard values the way the test data sorts: numbers as numbers, everything else
/// (ASCII text, ISO timestamps, t/f) as bytes.
int compare_values(const std::string& a, const std::string& b) {
  char* ea = nullptr;
  char* eb = nullptr;
  const double x = std::strtod(a.c_str(), &ea), y = std::strtod(b.c_str(), &eb);
  if (!a.empty() && !b.empty() && *ea == 0 && *eb == 0) return x < y ? -1 : x > y ? 1 : 0;
  return a < b ? -1 : a > b ? 1 : 0;
}

/// Whether `r`'s rows are in the order MergeSort's keys say the shard returns them.
bool sorted_by(const PgResult& r, const std::vector<SortKey>& keys, std::string& why) {
  const int width = r.columns();
  for (int i = 1; i < r.rows(); ++i) {
    for (const auto& k : keys) {
      const int c = k.column < 0 ? width + k.column : k.column;
      const bool na = r.is_null(i - 1, c), nb = r.is_null(i, c);
      int cmp = na && nb ? 0 : na ? (k.nulls_first ? -1 : 1) : nb ? (k.nulls_first ? 1 : -1)
                                                              : compare_values(r.value(i - 1, c), r.value(i, c));
      if (!na && !nb && k.descending) cmp = -cmp;
      if (cmp < 0) break;
      if (cmp > 0) {
        why = "rows " + std::to_string(i - 1) + " and " + std::to_string(i) + " out of order on column " + std::to_string(c);
        return false;
      }
    }
  }
  return true;
}

int checked = 0, shapes = 0, rows_compared = 0, both_failed = 0;

void check(const PgConnection& c, const std::string& sql, const std::vector<std::optional<std::string>>& params,
           const MergePlan& plan, const std::string& shard_sql, const std::string& what) {
  SCOPED_TRACE(what + ": " + sql + "\n  shard: " + shard_sql);
  const PgResult orig = c.exec_params(sql, params);
  const PgResult shard = c.exec_params(shard_sql, params);
  if (!orig.ok()) {
    EXPECT_FALSE(shard.ok()) << "the client's query fails (" << orig.describe() << ") but the shard's runs";
    EXPECT_EQ(shard.sqlstate(), orig.sqlstate()) << shard.describe();
    ++both_failed;
    return;
  }
  ASSERT_TRUE(shard.ok()) << shard.describe();
  ++checked;
  const int visible = plan.star ? shard.columns() + plan.client_columns : plan.client_columns;
  ASSERT_EQ(visible, orig.columns());
  std::set<int> avg_visible;
  for (const auto& op : plan.operators)
    for (std::size_t a = 0; a < op.aggregates.size(); ++a)
      if (op.aggregates[a].fn == AggregateFn::Avg && !op.aggregates[a].group_key && int(a) < visible) avg_visible.insert(int(a));
  for (int col = 0; col < visible; ++col) {
    EXPECT_EQ(shard.column_name(col), orig.column_name(col)) << "column " << col;
    if (avg_visible.count(col)) continue;  // the shards' sum; FinalAggregate makes it numeric
    EXPECT_EQ(PQftype(shard.get(), col), PQftype(orig.get(), col)) << "type of column " << col;
  }
  for (int n : named_columns(plan, shard.columns())) {
    EXPECT_GE(n, 0);
    EXPECT_LT(n, shard.columns());
  }
  if (plan.operators.front().kind == MergeOperator::Kind::MergeSort) {
    std::string why;
    EXPECT_TRUE(sorted_by(shard, plan.operators.front().keys, why)) << "the shard's rows are not in MergeSort's order: " << why;
  }
  std::vector<int> avg_columns;
  auto merged = one_stream(plan, shard, visible, avg_columns);
  if (!merged) return;
  std::multiset<std::vector<std::string>> expected;
  for (int i = 0; i < orig.rows(); ++i) {
    auto r = row(orig, i, visible);
    for (int a : avg_columns)
      if (a < visible && r[std::size_t(a)] != "<null>") r[std::size_t(a)] = std::to_string(std::stod(r[std::size_t(a)]));
    expected.insert(r);
  }
  // avg's text differs in scale (the operator's business); sum/count as doubles must agree.
  auto round_avgs = [&](std::multiset<std::vector<std::string>> rows) {
    std::multiset<std::vector<std::string>> out;
    for (auto r : rows) {
      for (int a : avg_columns)
        if (a < visible && r[std::size_t(a)] != "<null>") {
          char buf[64];
          std::snprintf(buf, sizeof buf, "%.6g", std::stod(r[std::size_t(a)]));
          r[std::size_t(a)] = buf;
        }
      out.insert(r);
    }
    return out;
  };
  EXPECT_EQ(round_avgs(*merged), round_avgs(expected)) << "the merged rows of one stream";
  ++rows_compared;
}

TEST(MergeShardSql, RunsOnPostgresForEveryGoldenMerge) {
  testing::ClusterSpec spec;
  spec.shards = 1;
  auto& cluster = testing::test_cluster(spec);
  PgConnection c(cluster.superuser_conninfo(0));
  ASSERT_TRUE(c.ok()) << c.error();
  testing::must(c, kSchema);
  Fixture fx;
  const std::optional<std::string> no_tenant;
  const auto dir = std::filesystem::path(SHARDLINE_SOURCE_DIR) / "tests/unit/router/plans";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    YAML::Node doc = YAML::LoadFile(entry.path().string());
    for (const auto& cs : doc["cases"]) {
      if (cs["tenant"]) continue;
      const std::string sql = cs["sql"].as<std::string>();
      std::vector<std::optional<std::string>> params;
      BindValues bind;
      if (cs["params"])
        for (const auto& p : cs["params"]) params.push_back(p.as<std::string>());
      for (const auto& p : params) {
        bind.values.emplace_back(*p);
        bind.formats.push_back(0);
      }
      auto t = build_route_template(sql, *fx.schema);
      RouteContext ctx{*fx.dir, *fx.schema, no_tenant, &bind, false};
      Plan p = route(*t, ctx);
      if (!p.merge) continue;
      check(c, sql, params, *p.merge, p.merge->shard_sql, entry.path().filename().string());
      NormalizedQuery n;
      if (!params.empty() || !normalize_literals(sql, n)) continue;
      auto st = build_route_template(n.text, *fx.schema);
      BindValues lb;
      for (std::size_t i = 0; i < n.literals.size(); ++i) {
        lb.values.emplace_back(n.literals[i]);
        lb.formats.push_back(0);
        lb.origins.push_back(n.quoted[i] ? BindOrigin::StringLiteral : BindOrigin::NumberLiteral);
      }
      RouteContext sctx{*fx.dir, *fx.schema, no_tenant, &lb, false};
      Plan sp = route(*st, sctx);
      if (!sp.merge) continue;
      // The plan's own operators keep $n for the literals (the executor binds them); the shard
      // runs the text with them put back.
      ++shapes;
      check(c, sql, {}, *sp.merge, substitute_literals(sp.merge->shard_sql, n.literals, n.quoted),
            entry.path().filename().string() + " (shape)");
    }
  }
  std::cout << "shard SQL checked for " << checked << " plans (" << shapes << " from shapes), rows compared for "
            << rows_compared << std::endl;
  EXPECT_GT(checked, 60);
  EXPECT_GT(rows_compared, 30);
}

/// A random tenant-less read of `orders` with the features the merge planner handles (and some
/// it refuses): select lists with expressions, aliases and `*`, ORDER BY by position, name and
/// expression with every direction, LIMIT/OFFSET, DISTINCT [ON], aggregates with FILTER, GROUP
/// BY and HAVING. DISTINCT ON orders by id last so that "the first row" is one row.
std::string random_query(std::mt19937_64& rng) {
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  auto chance = [&](int percent) { return int(rng() % 100) < percent; };
  const std::vector<std::string> cols = {"id", "status", "total", "amount", "created_at", "paid", "plan_id", "tenant_id"};
  const std::vector<std::string> dirs = {"", " DESC", " ASC", " NULLS FIRST", " DESC NULLS LAST", " ASC NULLS FIRST"};
  std::string limit;
  if (chance(35)) limit += " LIMIT " + std::to_string(rng() % 12);
  if (chance(20)) limit += " OFFSET " + std::to_string(rng() % 6);
  if (chance(40)) {  // aggregate
    std::vector<std::string> keys;
    const std::vector<std::string> groupable = {"status", "plan_id", "paid", "amount", "tenant_id", "amount % 3"};
    for (int i = int(rng() % 3); i > 0; --i) keys.push_back(pick(groupable));
    const std::vector<std::string> aggs = {"count(*)", "count(total)", "sum(total)", "sum(amount)", "min(created_at)",
                                           "max(id)", "avg(total)", "avg(amount)", "bool_and(paid)", "bool_or(paid)",
                                           "every(paid)", "min(status)", "count(*) FILTER (WHERE paid)",
                                           "avg(total) FILTER (WHERE amount > 0)", "max(total)"};
    std::vector<std::string> select;
    for (const auto& k : keys)
      if (chance(80)) select.push_back(k);
    for (int i = 1 + int(rng() % 3); i > 0; --i) select.push_back(pick(aggs) + (chance(25) ? " AS a" + std::to_string(i) : ""));
    std::string sql = chance(15) ? "SELECT DISTINCT " : "SELECT ";
    for (std::size_t i = 0; i < select.size(); ++i) sql += (i ? ", " : "") + select[i];
    sql += " FROM orders";
    if (chance(30)) sql += " WHERE id > " + std::to_string(rng() % 30);
    if (!keys.empty()) {
      sql += " GROUP BY ";
      for (std::size_t i = 0; i < keys.size(); ++i) sql += (i ? ", " : "") + keys[i];
    }
    if (chance(35)) {
      const std::vector<std::string> conds = {"count(*) > 2", "sum(total) >= 10", "avg(amount) < 1", "max(id) <> 7",
                                              "min(total) IS NOT NULL", "bool_or(paid)", "count(*) = 1 OR max(id) > 50"};
      sql += " HAVING " + pick(conds) + (chance(30) ? " AND NOT " + pick(conds) : "");
    }
    if (chance(60)) {
      sql += " ORDER BY ";
      const int n = 1 + int(rng() % 2);
      for (int i = 0; i < n; ++i) {
        std::string item = chance(40) && !select.empty() ? std::to_string(1 + rng() % select.size())
                           : !keys.empty() && chance(60)  ? pick(keys)
                                                          : pick(aggs);
        sql += (i ? ", " : "") + item + pick(dirs);
      }
    }
    return sql + limit;
  }
  std::vector<std::string> select;
  const bool star = chance(15);
  if (star) select.push_back("*");
  const std::vector<std::string> exprs = {"id + 1", "lower(status)", "total * 2", "amount IS NULL", "coalesce(plan_id, -1)"};
  for (int i = 1 + int(rng() % 3); i > 0; --i) select.push_back(chance(75) ? pick(cols) : pick(exprs) + " AS e" + std::to_string(i));
  const int distinct = star ? 0 : int(rng() % 6);  // 0-3 none, 4 DISTINCT, 5 DISTINCT ON
  std::string sql = "SELECT ";
  std::string on_key = select.back().find(" AS ") == std::string::npos ? select.back() : "status";
  if (distinct == 4) sql += "DISTINCT ";
  if (distinct == 5) sql += "DISTINCT ON (" + on_key + ") ";
  for (std::size_t i = 0; i < select.size(); ++i) sql += (i ? ", " : "") + select[i];
  sql += " FROM orders";
  if (chance(25)) sql += " WHERE status <> 'void' OR total > " + std::to_string(rng() % 50);
  std::vector<std::string> order;
  if (distinct == 5) order.push_back(on_key);
  for (int i = int(rng() % 3); i > 0; --i) {
    if (distinct == 4) order.push_back(std::to_string(1 + rng() % select.size()));
    else order.push_back(chance(30) ? std::to_string(1 + rng() % select.size()) : pick(cols));
  }
  if (distinct == 5) order.push_back("id");
  if (!order.empty()) {
    sql += " ORDER BY ";
    for (std::size_t i = 0; i < order.size(); ++i) sql += (i ? ", " : "") + order[i] + (distinct == 5 && i == 0 ? "" : pick(dirs));
  }
  return sql + limit;
}

TEST(MergeShardSql, RunsOnPostgresForAGeneratedCorpus) {
  testing::ClusterSpec spec;
  spec.shards = 1;
  auto& cluster = testing::test_cluster(spec);
  PgConnection c(cluster.superuser_conninfo(0));
  ASSERT_TRUE(c.ok()) << c.error();
  testing::must(c, kSchema);
  const char* env = std::getenv("SHARDLINE_MERGE_SEED");
  const std::uint64_t seed = env ? std::stoull(env) : std::random_device{}();
  std::cout << "corpus seed " << seed << " (SHARDLINE_MERGE_SEED reproduces it)" << std::endl;
  std::mt19937_64 rng(seed);
  Fixture fx;
  const std::optional<std::string> no_tenant;
  const int before = checked, rows_before = rows_compared, failed_before = both_failed;
  int refused = 0, from_shapes = 0;
  std::map<std::string, int> reasons;
  for (int i = 0; i < 500; ++i) {
    const std::string sql = random_query(rng);
    BindValues bind;
    auto t = build_route_template(sql, *fx.schema);
    RouteContext ctx{*fx.dir, *fx.schema, no_tenant, &bind, false};
    Plan p = route(*t, ctx);
    if (p.kind == RouteKind::Refuse) {
      ++refused;
      ++reasons[p.error.message.substr(0, p.error.message.find(" on sharded table"))];
      continue;
    }
    if (!p.merge) continue;  // plain concatenation
    check(c, sql, {}, *p.merge, p.merge->shard_sql, "generated");
    NormalizedQuery n;
    if (!normalize_literals(sql, n)) continue;
    auto st = build_route_template(n.text, *fx.schema);
    BindValues lb;
    for (std::size_t k = 0; k < n.literals.size(); ++k) {
      lb.values.emplace_back(n.literals[k]);
      lb.formats.push_back(0);
      lb.origins.push_back(n.quoted[k] ? BindOrigin::StringLiteral : BindOrigin::NumberLiteral);
    }
    RouteContext sctx{*fx.dir, *fx.schema, no_tenant, &lb, false};
    Plan sp = route(*st, sctx);
    if (!sp.merge) continue;
    ++from_shapes;
    check(c, sql, {}, *sp.merge, substitute_literals(sp.merge->shard_sql, n.literals, n.quoted), "generated (shape)");
  }
  std::cout << checked - before << " generated plans checked (" << from_shapes << " from shapes; rows compared for "
            << rows_compared - rows_before << ", " << both_failed - failed_before
            << " failing on PostgreSQL too), " << refused << " refused:" << std::endl;
  if (std::getenv("SHARDLINE_MERGE_PRINT")) {
    std::mt19937_64 again(seed);
    for (int i = 0; i < 20; ++i) std::cout << "  e.g. " << random_query(again) << std::endl;
  }
  for (const auto& [why, count] : reasons) std::cout << "  " << count << "  " << why << std::endl;
  EXPECT_GT(checked - before, 300);
  EXPECT_GT(rows_compared - rows_before, 100);
}

}  // namespace
}  // namespace shardline::router
