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
#include <iostream>
#include <filesystem>
#include <map>
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

int checked = 0, shapes = 0, rows_compared = 0;

void check(const PgConnection& c, const std::string& sql, const std::vector<std::optional<std::string>>& params,
           const MergePlan& plan, const std::string& shard_sql, const std::string& what) {
  SCOPED_TRACE(what + ": " + sql + "\n  shard: " + shard_sql);
  const PgResult orig = c.exec_params(sql, params);
  const PgResult shard = c.exec_params(shard_sql, params);
  if (!orig.ok()) {
    EXPECT_FALSE(shard.ok()) << "the client's query fails (" << orig.describe() << ") but the shard's runs";
    EXPECT_EQ(shard.sqlstate(), orig.sqlstate()) << shard.describe();
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

}  // namespace
}  // namespace shardline::router
