// choose_auto_tables: which tables that have the key column become auto-sharded tables.

#include "proxy/control/table_learner.hpp"

#include <gtest/gtest.h>

#include "config/loader.hpp"

namespace shardline::control {
namespace {

config::Config config_with(const std::string& sharding) {
  auto r = config::parse_config(R"(
users: [{name: app, password: secret, database: app}]
backend: {user: app, password: secret, database: app}
directory: [{logical: 0-511, shard: s0}, {logical: 512-1023, shard: s1}]
shards: {s0: {primary: {host: 127.0.0.1, port: 1}}, s1: {primary: {host: 127.0.0.1, port: 2}}}
)" + sharding, "test.yaml");
  EXPECT_TRUE(r.ok());
  return *r.config;
}

bool has_note(const std::vector<std::string>& notes, const std::string& fragment) {
  for (const auto& n : notes)
    if (n.find(fragment) != std::string::npos) return true;
  return false;
}

TEST(ChooseAutoTables, TablesWithTheKeyOnEveryShardAreChosenWithHomePositions) {
  const auto cfg = config_with("sharding: {auto_tables: true}\n");
  const std::vector<std::map<std::string, KeyColumn>> shards{
      {{"public.orders", {"bigint", 2}}, {"sales.invoices", {"character varying", 0}}},
      {{"public.orders", {"bigint", 3}}, {"sales.invoices", {"text", 0}}},
  };
  router::LearnedTables out;
  std::vector<std::string> notes;
  choose_auto_tables(cfg, {"s0", "s1"}, shards, 1, out, notes);
  EXPECT_TRUE(notes.empty());
  EXPECT_EQ(out.auto_tables, (std::set<std::string>{"public.orders", "sales.invoices"}));
  EXPECT_EQ(out.key_types.at("public.orders"), "bigint");
  EXPECT_EQ(out.key_types.at("sales.invoices"), "text");
  EXPECT_EQ(out.key_positions.at("public.orders"), 3) << "position from the home shard (index 1)";
}

TEST(ChooseAutoTables, IntegerWidthsMayDifferButFamiliesMayNot) {
  const auto cfg = config_with("sharding: {auto_tables: true}\n");
  const std::vector<std::map<std::string, KeyColumn>> shards{
      {{"public.a", {"integer", 0}}, {"public.b", {"integer", 0}}},
      {{"public.a", {"bigint", 0}}, {"public.b", {"text", 0}}},
  };
  router::LearnedTables out;
  std::vector<std::string> notes;
  choose_auto_tables(cfg, {"s0", "s1"}, shards, 0, out, notes);
  EXPECT_EQ(out.auto_tables, (std::set<std::string>{"public.a"}));
  EXPECT_EQ(out.key_types.at("public.a"), "integer");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_TRUE(has_note(notes, "public.b stays unsharded")) << notes[0];
  EXPECT_TRUE(has_note(notes, "hash differently")) << notes[0];
}

TEST(ChooseAutoTables, MissingOnAShardOrUnsupportedTypeStaysUnsharded) {
  const auto cfg = config_with("sharding: {auto_tables: true}\n");
  const std::vector<std::map<std::string, KeyColumn>> shards{
      {{"public.only_here", {"integer", 0}}, {"public.money", {"numeric", 0}}},
      {{"public.money", {"numeric", 0}}},
  };
  router::LearnedTables out;
  std::vector<std::string> notes;
  choose_auto_tables(cfg, {"s0", "s1"}, shards, 0, out, notes);
  EXPECT_TRUE(out.auto_tables.empty());
  EXPECT_TRUE(out.key_types.empty());
  EXPECT_TRUE(has_note(notes, "public.only_here stays unsharded: shard(s) s1 have no such table"));
  EXPECT_TRUE(has_note(notes, "public.money stays unsharded: its tenant_id column on shard s0 has type numeric"));
}

TEST(ChooseAutoTables, ExplicitAndReferenceTablesAreLeftToTheConfig) {
  const auto cfg = config_with(
      "sharding: {auto_tables: true, tables: {orders: {key: account_id}, sales.invoices: {}}, "
      "reference_tables: [plans]}\n");
  const std::vector<std::map<std::string, KeyColumn>> shards{
      {{"public.orders", {"integer", 0}}, {"sales.invoices", {"integer", 0}}, {"public.plans", {"integer", 0}},
       {"public.items", {"integer", 1}}},
      {{"public.orders", {"integer", 0}}, {"sales.invoices", {"integer", 0}}, {"public.plans", {"integer", 0}},
       {"public.items", {"integer", 1}}},
  };
  router::LearnedTables out;
  std::vector<std::string> notes;
  choose_auto_tables(cfg, {"s0", "s1"}, shards, 0, out, notes);
  EXPECT_EQ(out.auto_tables, (std::set<std::string>{"public.items"}));
  EXPECT_TRUE(notes.empty());
}

}  // namespace
}  // namespace shardline::control
