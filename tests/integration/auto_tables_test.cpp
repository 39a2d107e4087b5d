// sharding.auto_tables against real PostgreSQL (SPEC section 3): a table created through the
// proxy that has tenant_id is sharded by it, a table without it is unsharded, explicit entries
// and reference tables win, and tables that already exist on every shard when the proxy starts
// are learned from the catalogs. What landed where is checked on each shard's primary directly,
// and the shard a tenant belongs to is computed independently (the router's hash, checked against
// PostgreSQL in pg_hash_test, and the YAML ranges).

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "router/sharding/shard_key.hpp"
#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"

namespace {

using shardline::control::LocalCluster;
using shardline::testing::free_port;
using shardline::testing::PgConnection;
using shardline::testing::PgResult;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using shardline::testing::ShardedTableSpec;

constexpr int kLogicalShards = 1024;
constexpr int kShards = 2;

LocalCluster& cluster() {
  shardline::testing::ClusterSpec spec;
  spec.shards = kShards;
  return shardline::testing::test_cluster(spec);
}

ProxyConfig auto_config() {
  ProxyConfig c(cluster(), free_port());
  c.auto_tables(true);
  c.sharded_table(ShardedTableSpec{"at_explicit", "account_id", ""});
  c.reference_tables({"at_plans"});
  return c;
}

ProxyProcess& proxy() {
  static ProxyProcess p(auto_config().yaml());
  return p;
}

PgConnection connect(const std::string& conninfo) {
  PgConnection c(conninfo + " connect_timeout=5");
  if (!c.ok()) throw std::runtime_error("cannot connect: " + c.error());
  return c;
}
PgConnection connect_proxy(const ProxyProcess& p = proxy()) { return connect(p.conninfo()); }
PgConnection connect_shard(int i) { return connect(cluster().conninfo(i)); }

int shard_of(std::int64_t key) { return shardline::router::logical_shard_of_int(key, kLogicalShards) * kShards / kLogicalShards; }

void exec_ok(const PgConnection& c, const std::string& sql) {
  const PgResult r = c.exec(sql);
  ASSERT_TRUE(r.ok()) << sql << ": " << r.describe();
}

/// Every value of `column` in `table` on shard `i`'s primary.
std::vector<std::int64_t> keys_on(int i, const std::string& table, const std::string& column = "tenant_id") {
  const PgConnection c = connect_shard(i);
  const PgResult r = c.exec(fmt::format("SELECT {} FROM {} ORDER BY 1", column, table));
  EXPECT_TRUE(r.ok()) << r.describe();
  std::vector<std::int64_t> out;
  for (int row = 0; r.ok() && row < r.rows(); ++row) out.push_back(std::stoll(r.value(row, 0)));
  return out;
}

/// Rows for tenants 1..n through the proxy in one multi-row INSERT (the proxy splits it).
std::string values_for(int n, const std::string& row_format) {
  std::string v;
  for (int t = 1; t <= n; ++t) v += (t == 1 ? "" : ", ") + fmt::format(fmt::runtime(row_format), t);
  return v;
}

/// Every row is on the shard its key belongs to, every shard has some, and none is lost.
void expect_spread(const std::string& table, int n, const std::string& column = "tenant_id") {
  std::set<std::int64_t> all;
  for (int i = 0; i < kShards; ++i) {
    const auto keys = keys_on(i, table, column);
    EXPECT_FALSE(keys.empty()) << table << ": no row on shard s" << i;
    for (auto k : keys) {
      EXPECT_EQ(shard_of(k), i) << table << ": " << column << " " << k << " is on s" << i;
      all.insert(k);
    }
  }
  EXPECT_EQ(all.size(), std::size_t(n)) << table;
}

TEST(AutoTables, TableCreatedThroughTheProxyWithTheKeyIsSharded) {
  const PgConnection c = connect_proxy();
  exec_ok(c, "CREATE TABLE at_orders (tenant_id bigint NOT NULL, id int NOT NULL, note text, PRIMARY KEY (tenant_id, id))");
  for (int i = 0; i < kShards; ++i)
    EXPECT_EQ(connect_shard(i).value("SELECT to_regclass('public.at_orders') IS NOT NULL"), "t") << "s" << i;
  exec_ok(c, "INSERT INTO at_orders (tenant_id, id, note) VALUES " + values_for(300, "({}, 1, 'n')"));
  // The extended protocol routes by the Bind value as well.
  for (int t = 301; t <= 340; ++t) {
    const PgResult r = c.exec_params("INSERT INTO at_orders (tenant_id, id) VALUES ($1, 1)", {std::to_string(t)});
    ASSERT_TRUE(r.ok()) << r.describe();
  }
  expect_spread("at_orders", 340);
  // A tenant's read goes to its shard's primary (no replicas here).
  for (int t : {1, 2, 3, 4, 5, 333}) {
    const PgResult r = c.exec(fmt::format("SELECT inet_server_port(), count(*) FROM at_orders WHERE tenant_id = {}", t));
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(std::stoi(r.value(0, 0)), cluster().primary_port(shard_of(t))) << "tenant " << t;
    EXPECT_EQ(r.value(0, 1), "1") << "tenant " << t;
  }
  EXPECT_EQ(c.value("SELECT count(*) FROM at_orders"), "340") << "scatter count over both shards";
}

TEST(AutoTables, InsertWithoutColumnListUsesTheLearnedKeyPosition) {
  const PgConnection c = connect_proxy();
  exec_ok(c, "CREATE TABLE at_positions (note text, tenant_id int NOT NULL PRIMARY KEY)");
  exec_ok(c, "INSERT INTO at_positions VALUES " + values_for(100, "('x', {})"));
  expect_spread("at_positions", 100);
}

TEST(AutoTables, TableWithoutTheKeyIsUnshardedOnTheHomeShard) {
  const PgConnection c = connect_proxy();
  exec_ok(c, "CREATE TABLE at_settings (id int PRIMARY KEY, value text)");
  exec_ok(c, "INSERT INTO at_settings VALUES " + values_for(50, "({}, 'v')"));
  EXPECT_EQ(connect_shard(0).value("SELECT count(*) FROM at_settings"), "50");
  EXPECT_EQ(connect_shard(1).value("SELECT count(*) FROM at_settings"), "0")
      << "CREATE of a table new to the proxy ran on every shard; its rows live on the home shard only";
  EXPECT_EQ(c.value("SELECT count(*) FROM at_settings"), "50");
  EXPECT_EQ(std::stoi(c.value("SELECT inet_server_port() FROM at_settings WHERE id = 7")), cluster().primary_port(0));
}

TEST(AutoTables, ExplicitEntryWinsWithItsOwnKey) {
  const PgConnection c = connect_proxy();
  exec_ok(c, "CREATE TABLE at_explicit (tenant_id int NOT NULL, account_id int NOT NULL PRIMARY KEY)");
  // Every row has tenant 1: sharded by tenant_id they would all be on one shard.
  exec_ok(c, "INSERT INTO at_explicit (tenant_id, account_id) VALUES " + values_for(200, "(1, {})"));
  expect_spread("at_explicit", 200, "account_id");
}

TEST(AutoTables, ReferenceTableWithTheKeyColumnIsNeverSharded) {
  const PgConnection c = connect_proxy();
  exec_ok(c, "CREATE TABLE at_plans (plan_id int PRIMARY KEY, tenant_id int)");
  exec_ok(c, "INSERT INTO at_plans VALUES " + values_for(20, "({0}, {0})"));
  for (int i = 0; i < kShards; ++i)
    EXPECT_EQ(connect_shard(i).value("SELECT count(*) FROM at_plans"), "20") << "a full copy on s" << i;
}

TEST(AutoTables, TablesOnEveryShardBeforeStartAreLearnedAndOneShardOnlyStaysUnsharded) {
  for (int i = 0; i < kShards; ++i) {
    exec_ok(connect_shard(i), "CREATE TABLE at_existing (tenant_id text PRIMARY KEY, v int)");
  }
  exec_ok(connect_shard(0), "CREATE TABLE at_lonely (tenant_id int PRIMARY KEY)");
  ProxyProcess p(auto_config().yaml());
  const PgConnection c = connect_proxy(p);
  std::string values;
  for (int t = 1; t <= 100; ++t) values += fmt::format("{}('tenant-{}', {})", t == 1 ? "" : ", ", t, t);
  exec_ok(c, "INSERT INTO at_existing VALUES " + values);
  // Text keys: the shard of each row by PostgreSQL's text hash.
  std::set<std::string> all;
  for (int i = 0; i < kShards; ++i) {
    const PgResult r = connect_shard(i).exec("SELECT tenant_id FROM at_existing");
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_GT(r.rows(), 0) << "s" << i;
    for (int row = 0; row < r.rows(); ++row) {
      const std::string k = r.value(row, 0);
      const auto l = shardline::router::logical_shard_of_text(shardline::router::KeyType::Text, k, kLogicalShards, nullptr);
      ASSERT_TRUE(l.has_value());
      EXPECT_EQ(*l * kShards / kLogicalShards, i) << k;
      all.insert(k);
    }
  }
  EXPECT_EQ(all.size(), 100u);

  exec_ok(c, "INSERT INTO at_lonely VALUES " + values_for(30, "({})"));
  EXPECT_EQ(connect_shard(0).value("SELECT count(*) FROM at_lonely"), "30") << "unsharded: home shard";
  EXPECT_NE(p.log().find("auto_tables: public.at_lonely stays unsharded: shard(s) s1 have no such table"),
            std::string::npos)
      << p.log();
}

}  // namespace
