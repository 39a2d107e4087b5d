// sharding.auto_tables in the sharding schema and the router: learned tables that have the key
// are sharded, explicit entries and reference tables win, a table new to the proxy counts as
// sharded (so its CREATE runs on every shard) until its DDL is learned.

#include <gtest/gtest.h>

#include "config/loader.hpp"
#include "router/planner/router.hpp"

namespace shardline::router {
namespace {

config::Config config_with(const std::string& sharding) {
  auto r = config::parse_config(R"(
users: [{name: app, password: secret, database: app}]
backend: {user: app, password: secret, database: app}
directory: [{logical: 0-511, shard: s0}, {logical: 512-1023, shard: s1}]
shards: {s0: {primary: {host: 127.0.0.1, port: 1}}, s1: {primary: {host: 127.0.0.1, port: 2}}}
)" + sharding, "test.yaml");
  EXPECT_TRUE(r.ok());
  for (const auto& p : r.problems) ADD_FAILURE() << p.str();
  return *r.config;
}

LearnedTables learned_orders() {
  LearnedTables l;
  l.auto_tables = {"public.orders", "public.tenants", "sales.invoices", "public.accounts"};
  l.key_types = {{"public.orders", "bigint"}, {"public.tenants", "integer"}, {"sales.invoices", "text"},
                 {"public.accounts", "uuid"}};
  l.key_positions = {{"public.orders", 1}, {"public.tenants", 0}, {"sales.invoices", 2}, {"public.accounts", 0}};
  l.relations = std::set<std::string>{"public.orders",  "public.tenants",   "sales.invoices", "public.accounts",
                                      "public.plans",   "public.settings",  "pg_catalog.pg_class",
                                      "information_schema.tables"};
  return l;
}

struct Routed {
  Plan plan;
  std::string explain;
};

Routed route_sql(const ShardingSchema& s, const DirectorySnapshot& d, const std::string& sql) {
  auto t = build_route_template(sql, s);
  std::optional<std::string> no_tenant;
  RouteContext ctx{d, s, no_tenant, nullptr, true};
  Plan p = route(*t, ctx);
  std::string e = p.explain(d.shard_names());
  return {std::move(p), std::move(e)};
}

TEST(AutoTablesSchema, LearnedTablesWithTheKeyAreShardedByIt) {
  const auto cfg = config_with("sharding: {auto_tables: true}\n");
  const auto s = ShardingSchema::from_config(cfg, learned_orders());
  const auto* orders = s->sharded({"", "orders"});
  ASSERT_NE(orders, nullptr);
  EXPECT_EQ(orders->key, "tenant_id");
  EXPECT_EQ(orders->type, KeyType::BigInt);
  EXPECT_EQ(orders->key_position, 1);
  const auto* invoices = s->sharded({"sales", "invoices"});
  ASSERT_NE(invoices, nullptr);
  EXPECT_EQ(invoices->type, KeyType::Text);
  EXPECT_EQ(invoices->key_position, 2);
  EXPECT_EQ(s->sharded({"", "invoices"}), nullptr) << "public.invoices is not sales.invoices";
  // Relations the shards hold without the key column are unsharded (home shard).
  EXPECT_EQ(s->sharded({"", "settings"}), nullptr);
  EXPECT_EQ(s->sharded({"", "pg_class"}), nullptr);
  EXPECT_EQ(s->sharded({"pg_catalog", "pg_class"}), nullptr);
  EXPECT_EQ(s->sharded({"information_schema", "tables"}), nullptr);
}

TEST(AutoTablesSchema, ExplicitEntriesWinAndReferenceTablesNeverShard) {
  const auto cfg = config_with(
      "sharding: {auto_tables: true, tables: {orders: {key: order_tenant, type: integer}}, "
      "reference_tables: [tenants]}\n");
  const auto s = ShardingSchema::from_config(cfg, learned_orders());
  const auto* orders = s->sharded({"", "orders"});
  ASSERT_NE(orders, nullptr);
  EXPECT_EQ(orders->key, "order_tenant");
  EXPECT_EQ(orders->type, KeyType::Integer);
  EXPECT_EQ(s->sharded({"", "tenants"}), nullptr);
  EXPECT_TRUE(s->is_reference({"", "tenants"}));
  // A reference table the shards do not hold yet is not "new": it stays a reference table.
  const auto cfg2 = config_with("sharding: {auto_tables: true, reference_tables: [countries]}\n");
  const auto s2 = ShardingSchema::from_config(cfg2, learned_orders());
  EXPECT_EQ(s2->sharded({"", "countries"}), nullptr);
  EXPECT_TRUE(s2->is_reference({"", "countries"}));
}

TEST(AutoTablesSchema, OffByDefaultLearnedAutoTablesAreIgnored) {
  const auto cfg = config_with("sharding: {tables: {events: {}}}\n");
  const auto s = ShardingSchema::from_config(cfg, learned_orders());
  EXPECT_FALSE(s->auto_tables());
  EXPECT_EQ(s->sharded({"", "orders"}), nullptr);
  EXPECT_EQ(s->sharded({"", "brand_new"}), nullptr) << "without auto_tables an unknown table is unsharded";
  EXPECT_NE(s->sharded({"", "events"}), nullptr);
}

TEST(AutoTablesSchema, ANewTableCountsAsShardedOnlyOnceRelationsAreKnown) {
  const auto cfg = config_with("sharding: {auto_tables: true}\n");
  LearnedTables no_relations = learned_orders();
  no_relations.relations.reset();
  const auto before = ShardingSchema::from_config(cfg, no_relations);
  EXPECT_EQ(before->sharded({"", "brand_new"}), nullptr) << "nothing learned: never guess";
  EXPECT_TRUE(before->known_relation({"", "brand_new"}));

  const auto s = ShardingSchema::from_config(cfg, learned_orders());
  EXPECT_FALSE(s->known_relation({"", "brand_new"}));
  const auto* fresh = s->sharded({"", "brand_new"});
  ASSERT_NE(fresh, nullptr);
  EXPECT_EQ(fresh->name, "brand_new");
  EXPECT_EQ(fresh->schema, "public");
  EXPECT_EQ(fresh->key, "tenant_id");
  EXPECT_FALSE(fresh->type.has_value());
  EXPECT_EQ(s->sharded({"", "brand_new"}), fresh) << "one entry per name";
  EXPECT_EQ(s->sharded({"public", "brand_new"}), fresh);
  const auto* other = s->sharded({"sales", "brand_new"});
  ASSERT_NE(other, nullptr);
  EXPECT_NE(other, fresh);
}

TEST(AutoTablesSchema, NewTableEntriesAreBounded) {
  const auto cfg = config_with("sharding: {auto_tables: true}\n");
  const auto s = ShardingSchema::from_config(cfg, learned_orders());
  const ShardedTableInfo* last = nullptr;
  for (int i = 0; i < 5000; ++i) last = s->sharded({"", "t" + std::to_string(i)});
  ASSERT_NE(last, nullptr);
  EXPECT_EQ(last, s->sharded({"", "t4999999"})) << "past the bound every new name shares one entry";
  EXPECT_EQ(last->key, "tenant_id");
}

TEST(AutoTablesSchema, RouterSendsCreateOfANewTableToEveryShardAndRoutesLearnedTablesByTenant) {
  const auto cfg = config_with("sharding: {auto_tables: true, reference_tables: [plans]}\n");
  const auto dir = DirectorySnapshot::from_config(cfg);
  const auto s = ShardingSchema::from_config(cfg, learned_orders());

  auto create = route_sql(*s, *dir, "CREATE TABLE line_items (tenant_id bigint, id int, PRIMARY KEY (tenant_id, id))");
  EXPECT_EQ(create.plan.kind, RouteKind::Broadcast) << create.explain;
  EXPECT_TRUE(create.plan.ddl) << create.explain;
  EXPECT_EQ(create.plan.shards, (std::vector<int>{0, 1})) << create.explain;

  // Tenants 1 and 3 (bigint) are on s1 and s0 with this directory, as in the golden cases.
  auto one = route_sql(*s, *dir, "SELECT * FROM orders WHERE tenant_id = 1");
  auto three = route_sql(*s, *dir, "SELECT * FROM orders WHERE tenant_id = 3");
  EXPECT_EQ(one.plan.kind, RouteKind::Single) << one.explain;
  EXPECT_EQ(three.plan.kind, RouteKind::Single) << three.explain;
  EXPECT_EQ(one.plan.shards.size(), 1u);
  EXPECT_EQ(three.plan.shards.size(), 1u);
  EXPECT_NE(one.plan.shards, three.plan.shards) << one.explain << " / " << three.explain;

  auto scatter = route_sql(*s, *dir, "SELECT count(*) FROM orders");
  EXPECT_EQ(scatter.plan.shards, (std::vector<int>{0, 1})) << scatter.explain;

  auto unsharded = route_sql(*s, *dir, "SELECT * FROM settings");
  EXPECT_EQ(unsharded.plan.kind, RouteKind::Single) << unsharded.explain;
  EXPECT_EQ(unsharded.plan.shards, (std::vector<int>{0})) << unsharded.explain;

  auto catalog = route_sql(*s, *dir, "SELECT relname FROM pg_class");
  EXPECT_NE(catalog.plan.kind, RouteKind::Broadcast) << catalog.explain;
  EXPECT_LE(catalog.plan.shards.size(), 1u) << catalog.explain;

  auto reference = route_sql(*s, *dir, "CREATE TABLE plans (plan_id int PRIMARY KEY)");
  EXPECT_EQ(reference.plan.kind, RouteKind::Broadcast) << reference.explain;
}

}  // namespace
}  // namespace shardline::router
