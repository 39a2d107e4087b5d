// sharding.auto_tables in the YAML: a boolean, off by default, every bad value at its line:col.

#include <gtest/gtest.h>

#include "config/loader.hpp"

namespace shardline::config {
namespace {

constexpr const char* kRest =
    "users: [{name: app, password: secret}]\n"
    "backend: {user: app}\n"
    "directory: [{logical: 0-1023, shard: s0}]\n"
    "shards: {s0: {primary: {host: db0}}}\n";

LoadResult parse(const std::string& first_lines) { return parse_config(first_lines + kRest, "auto.yaml"); }

TEST(AutoTablesConfig, OffByDefault) {
  const auto r = parse("sharding: {key: tenant_id}\n");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.config->sharding.auto_tables);
}

TEST(AutoTablesConfig, BooleanSpellings) {
  for (const auto& [written, value] : {std::pair<std::string, bool>{"true", true}, {"on", true}, {"false", false}, {"off", false}}) {
    const auto r = parse("sharding: {auto_tables: " + written + "}\n");
    ASSERT_TRUE(r.ok()) << written;
    EXPECT_EQ(r.config->sharding.auto_tables, value) << written;
  }
}

TEST(AutoTablesConfig, WorksWithExplicitAndReferenceTables) {
  const auto r = parse(
      "sharding:\n"
      "  auto_tables: true\n"
      "  tables: {events: {key: account_id}}\n"
      "  reference_tables: [plans]\n");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.config->sharding.auto_tables);
  ASSERT_EQ(r.config->sharding.tables.size(), 1u);
  EXPECT_EQ(r.config->sharding.tables[0].key, "account_id");
  EXPECT_EQ(r.config->sharding.reference_tables, std::vector<std::string>{"plans"});
}

TEST(AutoTablesConfig, BadValuesAreReportedWithFileLineAndColumn) {
  const auto r = parse("sharding:\n  logical_shards: 1024\n  auto_tables: yes please\n");
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].line, 3);
  EXPECT_EQ(r.problems[0].column, 16);
  EXPECT_EQ(r.problems[0].str().rfind("auto.yaml:3:16: ", 0), 0u) << r.problems[0].str();
  EXPECT_NE(r.problems[0].message.find("unknown value 'yes please' (allowed: true, on, false, off)"), std::string::npos)
      << r.problems[0].message;

  const auto seq = parse("sharding: {auto_tables: [true]}\n");
  ASSERT_EQ(seq.problems.size(), 1u);
  EXPECT_EQ(seq.problems[0].line, 1);
  EXPECT_EQ(seq.problems[0].column, 25);
  EXPECT_NE(seq.problems[0].message.find("expected one of true, on, false, off"), std::string::npos)
      << seq.problems[0].message;
}

TEST(AutoTablesConfig, MisspelledKeyIsAnErrorNamingIt) {
  const auto r = parse("sharding: {auto_table: true}\n");
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_EQ(r.problems[0].line, 1);
  EXPECT_NE(r.problems[0].message.find("auto_table"), std::string::npos) << r.problems[0].message;
  EXPECT_NE(r.problems[0].message.find("auto_tables"), std::string::npos) << r.problems[0].message;
}

}  // namespace
}  // namespace shardline::config
