// Which reads a replica may answer: plain reads whose functions are all known to only read.

#include <gtest/gtest.h>

#include "config/loader.hpp"
#include "router/planner/route_template.hpp"

namespace shardline::router {
namespace {

std::shared_ptr<const ShardingSchema> schema(const std::string& replicas_yaml) {
  auto r = config::parse_config(R"(
users: [{name: app, password: secret, database: app}]
backend: {user: app, password: secret, database: app}
directory: [{logical: 0-1023, shard: s0}]
shards: {s0: {primary: {host: 127.0.0.1, port: 1}}}
)" + replicas_yaml, "test.yaml");
  EXPECT_TRUE(r.ok());
  return ShardingSchema::from_config(*r.config);
}

bool safe(const std::string& sql, const ShardingSchema& s) {
  auto t = build_route_template(sql, s);
  bool all = !t->statements.empty();
  for (const auto& st : t->statements) all = all && st.replica_safe;
  return all;
}

TEST(ReplicaSafe, PlainReadsAndReadOnlyBuiltinsMayUseAReplica) {
  auto s = schema("");
  EXPECT_TRUE(safe("SELECT * FROM t WHERE id = 1", *s));
  EXPECT_TRUE(safe("SELECT count(*), now(), lower(name), pg_is_in_recovery() FROM t", *s));
  EXPECT_TRUE(safe("SHOW search_path", *s));
  EXPECT_TRUE(safe("SELECT 1", *s));
}

TEST(ReplicaSafe, WritesLocksAndSideEffectsStayOnThePrimary) {
  auto s = schema("");
  EXPECT_FALSE(safe("INSERT INTO t VALUES (1)", *s));
  EXPECT_FALSE(safe("SELECT * FROM t FOR UPDATE", *s));
  EXPECT_FALSE(safe("SELECT nextval('seq')", *s));
  EXPECT_FALSE(safe("SELECT pg_advisory_lock(1)", *s));
  EXPECT_FALSE(safe("SELECT set_config('a.b', 'c', false)", *s));
  EXPECT_FALSE(safe("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", *s));
  EXPECT_FALSE(safe("SELECT my_function(1)", *s));  // unknown: maybe it writes
  EXPECT_FALSE(safe("SELECT other.now()", *s));      // not the built-in
  EXPECT_FALSE(safe("BEGIN", *s));
}

TEST(ReplicaSafe, ConfiguredReadOnlyFunctionsMayUseAReplica) {
  auto s = schema("replicas: {read_only_functions: [My_Function]}\n");
  EXPECT_TRUE(safe("SELECT my_function(1)", *s));
  EXPECT_FALSE(safe("SELECT other_function(1)", *s));
}

}  // namespace
}  // namespace shardline::router
