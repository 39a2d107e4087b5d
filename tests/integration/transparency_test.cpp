// Transparency of the proxy at the wire-protocol level: each test sends the exact message
// sequence a driver sends (asyncpg's Parse/Describe/Flush without Sync, ruby-pg's Parse/Sync,
// psycopg's DEALLOCATE ALL after ROLLBACK, pg_dump's set_config ...), once to a shard's primary
// directly and once through the proxy, and asserts that the client sees the same replies and
// the same data: PostgreSQL is the oracle. Where a test needs two shards it checks which shard
// holds the rows by connecting to each primary directly.
//
// One cluster of two shards (s0 owns logical shards 0-511, s1 owns 512-1023) and one proxy in
// transaction pooling shared by the tests.

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "router/sharding/shard_key.hpp"
#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"
#include "tests/integration/support/raw_client.hpp"

namespace {

using shardline::control::LocalCluster;
using shardline::testing::free_port;
using shardline::testing::PgConnection;
using shardline::testing::PgResult;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using shardline::testing::RawClient;
using shardline::testing::RawMessage;
using shardline::testing::ShardedTableSpec;
namespace raw = shardline::testing::raw;

constexpr int kLogicalShards = 1024;
constexpr int kShards = 2;

LocalCluster& cluster() {
  shardline::testing::ClusterSpec spec;
  spec.shards = kShards;
  spec.replicas = 0;
  return shardline::testing::test_cluster(spec);
}

const std::vector<std::string> kShardedTables = {"tp_items", "tp_cursor", "tp_nocols"};

ProxyProcess& proxy() {
  static ProxyProcess p([] {
    ProxyConfig c(cluster(), free_port());
    for (const auto& t : kShardedTables) c.sharded_table(ShardedTableSpec{t, "", ""});
    c.pool_size(4);
    return c.yaml();
  }());
  return p;
}

/// A proxy with one server per shard, so every client of it shares the same server connection:
/// what one client leaves on a server, the next one meets.
ProxyProcess& single_server_proxy() {
  static ProxyProcess p([] {
    ProxyConfig c(cluster(), free_port());
    for (const auto& t : kShardedTables) c.sharded_table(ShardedTableSpec{t, "", ""});
    c.pool_size(1);
    return c.yaml();
  }());
  return p;
}

std::string proxy_conninfo() { return proxy().conninfo() + " connect_timeout=5"; }
std::string single_server_conninfo() { return single_server_proxy().conninfo() + " connect_timeout=5"; }
std::string shard_conninfo(int shard) { return cluster().conninfo(shard) + " connect_timeout=5"; }

int shard_of(std::int64_t tenant) {
  return shardline::router::logical_shard_of_int(tenant, kLogicalShards) * kShards / kLogicalShards;
}

/// The `skip`-th smallest tenant >= 1 living on `shard`.
std::int64_t tenant_on(int shard, int skip = 0) {
  for (std::int64_t t = 1;; ++t)
    if (shard_of(t) == shard && skip-- == 0) return t;
}

void must(const std::string& conninfo, const std::string& sql) {
  PgConnection c(conninfo);
  if (!c.ok()) throw std::runtime_error("cannot connect: " + c.error());
  PgResult r = c.exec(sql);
  if (!r.ok()) throw std::runtime_error(fmt::format("`{}` failed: {}", sql, r.describe()));
}

std::string value_on(int shard, const std::string& sql) {
  PgConnection c(shard_conninfo(shard));
  if (!c.ok()) throw std::runtime_error("cannot connect to a shard: " + c.error());
  return c.value(sql);
}

/// One step of a conversation: bytes to send, then how many replies to read (-1: up to and
/// including ReadyForQuery).
struct Step {
  std::string bytes;
  int replies = -1;
};

/// Plays the steps and returns the replies' summaries, steps separated by " | ".
std::string play(RawClient& c, const std::vector<Step>& steps) {
  std::string out;
  for (const auto& s : steps) {
    c.send(s.bytes);
    std::vector<RawMessage> got;
    if (s.replies < 0) got = c.read_until_ready();
    else
      for (int i = 0; i < s.replies; ++i) got.push_back(c.read());
    if (!out.empty()) out += " | ";
    out += RawClient::summary(got);
  }
  return out;
}

class Transparency : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    must(proxy_conninfo(), "DROP TABLE IF EXISTS tp_items, tp_cursor");
    must(proxy_conninfo(), "CREATE TABLE tp_items (tenant_id bigint, id int, v text, PRIMARY KEY (tenant_id, id))");
    must(proxy_conninfo(), "CREATE TABLE tp_cursor (tenant_id bigint, id int, PRIMARY KEY (tenant_id, id))");
  }
  void SetUp() override {
    must(proxy_conninfo(), "DELETE FROM tp_items");
    for (int s = 0; s < kShards; ++s) must(shard_conninfo(s), "DELETE FROM tp_items");
  }
  void TearDown() override {
    if (HasFailure()) {
      const std::string log = proxy().log();
      std::cerr << "proxy log " << proxy().log_path() << " (last 12000 bytes):\n" << log.substr(log.size() > 12000 ? log.size() - 12000 : 0) << "\n";
    }
  }
};

std::string cat(const std::vector<std::string>& parts) {
  std::string s;
  for (const auto& p : parts) s += p;
  return s;
}

// ---- 1. the held BEGIN and every message that starts work on a server ----------------------

/// asyncpg inside `async with conn.transaction(isolation='serializable')`: each new statement
/// is prepared with Parse + Describe + Flush, then run with Bind + Execute + Sync.
std::string asyncpg_transaction(RawClient& c, std::int64_t tenant, bool unnamed) {
  const std::string ins = unnamed ? "" : "ins", sel = unnamed ? "" : "sel";
  const std::string t = std::to_string(tenant);
  return play(c, {
      {raw::query("BEGIN ISOLATION LEVEL SERIALIZABLE")},
      {cat({raw::parse(ins, "INSERT INTO tp_items (tenant_id, id, v) VALUES ($1, $2, $3)"), raw::describe('S', ins), raw::flush()}), 3},
      {cat({raw::bind("", ins, {t, "1", "a"}), raw::execute(""), raw::sync()})},
      {cat({raw::parse(sel, "SELECT current_setting('transaction_isolation'), count(*) FROM tp_items WHERE tenant_id = $1"),
            raw::describe('S', sel), raw::flush()}), 3},
      {cat({raw::bind("", sel, {t}), raw::execute(""), raw::sync()})},
      {raw::query("ROLLBACK")},
      {raw::query("SELECT count(*) FROM tp_items WHERE tenant_id = " + t)},
  });
}

TEST_F(Transparency, AsyncpgTransactionRunsInOneServerTransaction) {
  for (bool unnamed : {false, true}) {
    SCOPED_TRACE(unnamed ? "unnamed statements (statement_cache_size=0)" : "named statements");
    RawClient direct(shard_conninfo(0));
    const std::string expected = asyncpg_transaction(direct, tenant_on(0), unnamed);
    EXPECT_EQ(expected,
              "C:BEGIN Z:T | 1 t n | 2 C:INSERT 0 1 Z:T | 1 t T | 2 D:[serializable,1] C:SELECT 1 Z:T | "
              "C:ROLLBACK Z:I | T D:[0] C:SELECT 1 Z:I");
    // A tenant of s1: the statements prepared before any routable one must not pin s0.
    for (int shard : {0, 1}) {
      RawClient via(proxy_conninfo());
      EXPECT_EQ(asyncpg_transaction(via, tenant_on(shard), unnamed), expected) << "tenant on s" << shard;
    }
    EXPECT_EQ(value_on(0, "SELECT count(*) FROM tp_items"), "0");
    EXPECT_EQ(value_on(1, "SELECT count(*) FROM tp_items"), "0");
  }
}

TEST_F(Transparency, AsyncpgCursorPortalLivesUntilCommit) {
  const std::int64_t tenant = tenant_on(1);
  must(proxy_conninfo(), fmt::format("DELETE FROM tp_cursor WHERE tenant_id = {}", tenant));
  must(proxy_conninfo(), fmt::format("INSERT INTO tp_cursor (tenant_id, id) VALUES ({0}, 1), ({0}, 2), ({0}, 3)", tenant));
  must(shard_conninfo(0), fmt::format("DELETE FROM tp_cursor WHERE tenant_id = {}", tenant));
  must(shard_conninfo(0), fmt::format("INSERT INTO tp_cursor (tenant_id, id) VALUES ({0}, 1), ({0}, 2), ({0}, 3)", tenant));
  auto run = [&](RawClient& c) {
    return play(c, {
        {raw::query("BEGIN")},
        {cat({raw::parse("c", "SELECT id FROM tp_cursor WHERE tenant_id = $1 ORDER BY id"), raw::describe('S', "c"),
              raw::flush()}), 3},
        {cat({raw::bind("cur", "c", {std::to_string(tenant)}), raw::execute("cur", 2), raw::flush()}), 4},
        {cat({raw::execute("cur", 2), raw::flush()}), 2},
        {cat({raw::close('P', "cur"), raw::sync()})},
        {raw::query("COMMIT")},
    });
  };
  RawClient direct(shard_conninfo(0));
  const std::string expected = run(direct);
  EXPECT_EQ(expected, "C:BEGIN Z:T | 1 t T | 2 D:[1] D:[2] s | D:[3] C:SELECT 1 | 3 Z:T | C:COMMIT Z:I");
  RawClient via(proxy_conninfo());
  EXPECT_EQ(run(via), expected);
}

TEST_F(Transparency, RubyPgPrepareInsideBeginReportsTheTransaction) {
  const std::int64_t tenant = tenant_on(1);
  auto run = [&](RawClient& c) {
    return play(c, {
        {raw::query("BEGIN")},
        {cat({raw::parse("r", "SELECT v FROM tp_items WHERE tenant_id = $1"), raw::sync()})},
        {cat({raw::bind("", "r", {std::to_string(tenant)}), raw::describe('P', ""), raw::execute(""), raw::sync()})},
        {cat({raw::parse("w", "INSERT INTO tp_items (tenant_id, id, v) VALUES ($1, 7, 'x')"), raw::sync()})},
        {cat({raw::bind("", "w", {std::to_string(tenant)}), raw::execute(""), raw::sync()})},
        {raw::query("ROLLBACK")},
    });
  };
  RawClient direct(shard_conninfo(0));
  const std::string expected = run(direct);
  EXPECT_EQ(expected, "C:BEGIN Z:T | 1 Z:T | 2 T C:SELECT 0 Z:T | 1 Z:T | 2 C:INSERT 0 1 Z:T | C:ROLLBACK Z:I");
  RawClient via(proxy_conninfo());
  EXPECT_EQ(run(via), expected);
  EXPECT_EQ(value_on(shard_of(tenant), "SELECT count(*) FROM tp_items"), "0");
}

TEST_F(Transparency, ParseErrorInsideBeginAbortsTheTransaction) {
  auto run = [&](RawClient& c) {
    return play(c, {
        {raw::query("BEGIN")},
        {cat({raw::parse("", "SELEC 1"), raw::flush()}), 1},
        {raw::sync()},
        {raw::query("SELECT 1")},
        {raw::query("ROLLBACK")},
    });
  };
  RawClient direct(shard_conninfo(0));
  const std::string expected = run(direct);
  EXPECT_EQ(expected, "C:BEGIN Z:T | E:42601 | Z:E | E:25P02 Z:E | C:ROLLBACK Z:I");
  RawClient via(proxy_conninfo());
  EXPECT_EQ(run(via), expected);
}

TEST_F(Transparency, AutocommitPrepareThenBindRoutesByTheBind) {
  // Outside a transaction too: the Parse/Describe/Flush goes somewhere before the key is known;
  // the Bind's tenant decides where the row lands.
  const std::int64_t tenant = tenant_on(1);
  for (bool unnamed : {false, true}) {
    SCOPED_TRACE(unnamed ? "unnamed" : "named");
    const std::string name = unnamed ? "" : "a";
    auto run = [&](RawClient& c) {
      return play(c, {
          {cat({raw::parse(name, "INSERT INTO tp_items (tenant_id, id, v) VALUES ($1, $2, 'x')"), raw::describe('S', name),
                raw::flush()}), 3},
          {cat({raw::bind("", name, {std::to_string(tenant), unnamed ? "2" : "1"}), raw::execute(""), raw::sync()})},
      });
    };
    RawClient direct(shard_conninfo(0));
    const std::string expected = run(direct);
    EXPECT_EQ(expected, "1 t n | 2 C:INSERT 0 1 Z:I");
    RawClient via(proxy_conninfo());
    EXPECT_EQ(run(via), expected);
  }
  EXPECT_EQ(value_on(1, fmt::format("SELECT count(*) FROM tp_items WHERE tenant_id = {}", tenant)), "2");
  EXPECT_EQ(value_on(0, "SELECT count(*) FROM tp_items"), "2");  // the two direct runs
}

// asyncpg / psycopg 3 executemany: Bind/Execute for several tenants, then one Sync. The batch is
// one implicit transaction; tenants on two shards cannot share it, so it is refused whole and
// nothing lands anywhere (it once went, silently, to the first tenant's shard).
TEST_F(Transparency, OneBatchForTenantsOnTwoShardsIsRefusedWhole) {
  const std::int64_t t0 = tenant_on(0, 7), t1 = tenant_on(1, 7);
  RawClient via(proxy_conninfo());
  const std::string reply = play(via, {{cat({raw::parse("ins", "INSERT INTO tp_items (tenant_id, id, v) VALUES ($1, 900, 'b')"),
                                              raw::bind("", "ins", {std::to_string(t0)}), raw::execute(""),
                                              raw::bind("", "ins", {std::to_string(t1)}), raw::execute(""),
                                              raw::sync()})}});
  EXPECT_NE(reply.find("E:0A000"), std::string::npos) << reply;
  EXPECT_NE(reply.find("Z:I"), std::string::npos) << reply;
  for (int s = 0; s < 2; ++s)
    EXPECT_EQ(value_on(s, "SELECT count(*) FROM tp_items WHERE id = 900"), "0") << "shard " << s;
  // Per tenant (a Sync each), the same rows land where their tenants live. (The refused batch's
  // Parse did not take effect either: the whole batch is refused before it runs.)
  const std::string ok = play(via, {{cat({raw::parse("ins", "INSERT INTO tp_items (tenant_id, id, v) VALUES ($1, 900, 'b')"),
                                          raw::bind("", "ins", {std::to_string(t0)}), raw::execute(""), raw::sync()})},
                                    {cat({raw::bind("", "ins", {std::to_string(t1)}), raw::execute(""), raw::sync()})}});
  EXPECT_EQ(ok, "1 2 C:INSERT 0 1 Z:I | 2 C:INSERT 0 1 Z:I");
  EXPECT_EQ(value_on(0, fmt::format("SELECT count(*) FROM tp_items WHERE id = 900 AND tenant_id = {}", t0)), "1");
  EXPECT_EQ(value_on(1, fmt::format("SELECT count(*) FROM tp_items WHERE id = 900 AND tenant_id = {}", t1)), "1");
}

// ---- 2. DEALLOCATE / DISCARD act on the client's own statement namespace --------------------

/// The ways drivers drop every prepared statement: psycopg 3 (extended protocol, after its
/// ROLLBACK), ruby-pg and psql (simple protocol), poolers' clients (DISCARD ALL).
std::string drop_all(RawClient& c, int how) {
  switch (how) {
    case 0:
      return play(c, {{raw::query("ROLLBACK")},
                      {cat({raw::parse("", "DEALLOCATE ALL"), raw::bind("", ""), raw::describe('P', ""), raw::execute(""),
                            raw::sync()})}});
    case 1: return play(c, {{raw::query("DEALLOCATE ALL")}});
    case 2:
      return play(c, {{cat({raw::parse("", "DISCARD ALL"), raw::bind("", ""), raw::describe('P', ""), raw::execute(""),
                            raw::sync()})}});
    default: return play(c, {{raw::query("DISCARD ALL")}});
  }
}

TEST_F(Transparency, DeallocateAllOfOneClientKeepsOtherClientsStatements) {
  const std::vector<std::string> expected_drop = {"N:25P01 C:ROLLBACK Z:I | 1 2 n C:DEALLOCATE ALL Z:I",
                                                  "C:DEALLOCATE ALL Z:I", "1 2 n C:DISCARD ALL Z:I", "C:DISCARD ALL Z:I"};
  for (int how = 0; how < 4; ++how) {
    SCOPED_TRACE(expected_drop[std::size_t(how)]);
    auto run = [&](RawClient& a, RawClient& b) {
      const std::string prepare_b = play(b, {{cat({raw::parse("bq", "SELECT 41 + $1::int"), raw::sync()})}});
      const std::string prepare_a = play(a, {{cat({raw::parse("aq", "SELECT 41 + $1::int"), raw::sync()})},
                                             {cat({raw::bind("", "aq", {"1"}), raw::execute(""), raw::sync()})}});
      const std::string dropped = drop_all(a, how);
      const std::string after_a = play(a, {{cat({raw::bind("", "aq", {"1"}), raw::execute(""), raw::sync()})},
                                           {cat({raw::parse("aq", "SELECT 1"), raw::sync()})}});
      const std::string after_b = play(b, {{cat({raw::bind("", "bq", {"1"}), raw::execute(""), raw::sync()})}});
      return prepare_b + " || " + prepare_a + " || " + dropped + " || " + after_a + " || " + after_b;
    };
    RawClient da(shard_conninfo(0)), db(shard_conninfo(0));
    const std::string expected = run(da, db);
    EXPECT_EQ(expected, "1 Z:I || 1 Z:I | 2 D:[42] C:SELECT 1 Z:I || " + expected_drop[std::size_t(how)] +
                            " || E:26000 Z:I | 1 Z:I || 2 D:[42] C:SELECT 1 Z:I");
    // Both clients share the proxy's one server of s0, and the statement's server-side copy.
    RawClient pa(single_server_conninfo()), pb(single_server_conninfo());
    EXPECT_EQ(run(pa, pb), expected);
  }
}

TEST_F(Transparency, DeallocateNameActsOnTheClientsName) {
  auto run = [&](RawClient& c) {
    return play(c, {
        {cat({raw::parse("r1", "SELECT 1"), raw::sync()})},
        {cat({raw::parse("", "DEALLOCATE r1"), raw::bind("", ""), raw::execute(""), raw::sync()})},
        {cat({raw::bind("", "r1"), raw::execute(""), raw::sync()})},
        {raw::query("DEALLOCATE r1")},
        {cat({raw::parse("r1", "SELECT 2"), raw::sync()})},
        {raw::query("DEALLOCATE r1")},
        {cat({raw::parse("r1", "SELECT 3"), raw::close('S', "r1"), raw::bind("", "r1"), raw::sync()})},
    });
  };
  RawClient direct(shard_conninfo(0));
  const std::string expected = run(direct);
  EXPECT_EQ(expected, "1 Z:I | 1 2 C:DEALLOCATE Z:I | E:26000 Z:I | E:26000 Z:I | 1 Z:I | C:DEALLOCATE Z:I | 1 3 E:26000 Z:I");
  RawClient via(single_server_conninfo());
  EXPECT_EQ(run(via), expected);
}

// ---- 5. session settings made with set_config(..., false) stay with their client ------------

/// search_path as ten fresh connections of the single-server proxy see it.
std::vector<std::string> fresh_search_paths() {
  std::vector<std::string> out;
  for (int i = 0; i < 10; ++i) {
    RawClient c(single_server_conninfo());
    out.push_back(c.query_values("SHOW search_path").at(0).value_or("NULL"));
  }
  return out;
}

TEST_F(Transparency, SetConfigSessionSettingStaysWithItsClient) {
  const std::vector<std::string> defaults(10, "\"$user\", public");
  struct Case {
    std::string name;
    std::vector<Step> steps;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"pg_dump's simple query", {{raw::query("SELECT pg_catalog.set_config('search_path', '', false)")},
                                  {raw::query("SHOW search_path")}},
       "T D:[] C:SELECT 1 Z:I | T D:[] C:SHOW Z:I"},
      {"parameters through the extended protocol",
       {{cat({raw::parse("", "SELECT set_config($1, $2, $3)"), raw::bind("", "", {"search_path", "pg_catalog", "off"}),
              raw::execute(""), raw::sync()})},
        {raw::query("SHOW search_path")}},
       "1 2 D:[pg_catalog] C:SELECT 1 Z:I | T D:[pg_catalog] C:SHOW Z:I"},
      {"transaction-local", {{raw::query("BEGIN")}, {raw::query("SELECT set_config('search_path', 'pg_catalog', true)")},
                             {raw::query("COMMIT")}, {raw::query("SHOW search_path")}},
       "C:BEGIN Z:T | T D:[pg_catalog] C:SELECT 1 Z:T | C:COMMIT Z:I | T D:[\"$user\", public] C:SHOW Z:I"},
      {"computed arguments", {{raw::query("SELECT set_config('search' || '_path', 'pg_catalog', 1 = 2)")}},
       "T D:[pg_catalog] C:SELECT 1 Z:I"},
      // ROLLBACK TO (tag "ROLLBACK") undoes only what came after its savepoint.
      {"a SET before a savepoint survives ROLLBACK TO",
       {{raw::query("BEGIN")}, {raw::query("SET search_path = pg_catalog")}, {raw::query("SAVEPOINT s")},
        {raw::query("SET search_path = public")}, {raw::query("ROLLBACK TO s")}, {raw::query("COMMIT")},
        {raw::query("SHOW search_path")}},
       "C:BEGIN Z:T | C:SET Z:T | C:SAVEPOINT Z:T | C:SET Z:T | C:ROLLBACK Z:T | C:COMMIT Z:I | "
       "T D:[pg_catalog] C:SHOW Z:I"},
      {"a SET after a savepoint is undone by ROLLBACK TO in the extended protocol",
       {{raw::query("BEGIN")}, {raw::query("SAVEPOINT s")}, {raw::query("SET search_path = pg_catalog")},
        {cat({raw::parse("", "ROLLBACK TO s"), raw::bind("", "", {}), raw::execute(""), raw::sync()})},
        {raw::query("COMMIT")}, {raw::query("SHOW search_path")}},
       "C:BEGIN Z:T | C:SAVEPOINT Z:T | C:SET Z:T | 1 2 C:ROLLBACK Z:T | C:COMMIT Z:I | "
       "T D:[\"$user\", public] C:SHOW Z:I"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    RawClient direct(shard_conninfo(0));
    EXPECT_EQ(play(direct, c.steps), c.expected);
    {
      RawClient via(single_server_conninfo());
      EXPECT_EQ(play(via, c.steps), c.expected);
      // Other clients, on the same server connection, never see it, while it is connected...
      EXPECT_EQ(fresh_search_paths(), defaults);
    }
    EXPECT_EQ(fresh_search_paths(), defaults);  // ... nor after it left
  }
}

// ---- 3. prepared statements after DDL ---------------------------------------------------------

TEST_F(Transparency, StatementsPreparedAfterDdlSeeTheNewSchema) {
  // `external`: the ALTER goes to the shard directly (another proxy, a migration tool);
  // otherwise through the proxy. tp_plain is unsharded: it lives on the home shard s0.
  for (bool external : {false, true}) {
    SCOPED_TRACE(external ? "DDL applied on the shard directly" : "DDL through the proxy");
    auto reset = [&](const std::string& conninfo) {
      must(conninfo, "DROP TABLE IF EXISTS tp_plain");
      must(conninfo, "CREATE TABLE tp_plain (a int)");
      must(conninfo, "INSERT INTO tp_plain VALUES (1)");
    };
    // A: prepares and runs; the schema changes; A's statement is stale (PostgreSQL reports
    // 0A000 to the session that prepared it); A re-prepares under a new name, as asyncpg does.
    auto run = [&](const std::string& conninfo, const std::string& ddl_conninfo) {
      RawClient a(conninfo);
      std::string out = play(a, {{cat({raw::parse("s1", "SELECT * FROM tp_plain"), raw::bind("", "s1"), raw::execute(""),
                                       raw::sync()})}});
      must(ddl_conninfo, "ALTER TABLE tp_plain ADD COLUMN b int DEFAULT 2");
      out += " || " + play(a, {{cat({raw::bind("", "s1"), raw::execute(""), raw::sync()})},
                               {cat({raw::parse("s2", "SELECT * FROM tp_plain"), raw::bind("", "s2"), raw::execute(""),
                                     raw::sync()})}});
      // A brand-new connection prepares the same text after the change.
      RawClient b(conninfo);
      out += " || " + play(b, {{cat({raw::parse("s1", "SELECT * FROM tp_plain"), raw::bind("", "s1"), raw::execute(""),
                                     raw::sync()})}});
      return out;
    };
    reset(shard_conninfo(0));
    const std::string expected = run(shard_conninfo(0), shard_conninfo(0));
    EXPECT_EQ(expected, "1 2 D:[1] C:SELECT 1 Z:I || E:0A000 Z:I | 1 2 D:[1,2] C:SELECT 1 Z:I || 1 2 D:[1,2] C:SELECT 1 Z:I");
    reset(single_server_conninfo());
    EXPECT_EQ(run(single_server_conninfo(), external ? shard_conninfo(0) : single_server_conninfo()), expected);
  }
}

// ---- 6. ParameterStatus carries the server's spelling of the client's settings ---------------

TEST_F(Transparency, StartupSettingsAreReportedAsTheServerNormalisesThem) {
  // asyncpg's client_encoding, and other reported settings in the startup packet's options.
  const std::string settings = "client_encoding=utf-8 options='-c DateStyle=iso,dmy -c IntervalStyle=SQL_STANDARD -c TimeZone=utc'";
  const std::vector<std::string> reported = {"client_encoding", "DateStyle", "IntervalStyle", "TimeZone"};
  auto observe = [&](const std::string& conninfo) {
    RawClient c(conninfo + " " + settings);
    std::string out;
    for (const auto& name : reported) out += name + "=" + c.startup_parameter(name) + " ";
    // What a statement then reports: no late ParameterStatus correcting the startup values.
    out += "| " + RawClient::summary(c.round_trip(raw::query("SELECT current_setting('DateStyle')")));
    return out;
  };
  const std::string expected = observe(shard_conninfo(0));
  EXPECT_EQ(expected, "client_encoding=UTF8 DateStyle=ISO, DMY IntervalStyle=sql_standard TimeZone=UTC | T D:[ISO, DMY] C:SELECT 1 Z:I");
  for (int round = 0; round < 2; ++round) EXPECT_EQ(observe(proxy_conninfo()), expected) << "connection " << round;
  // A value PostgreSQL refuses ends the connection attempt with its FATAL, as it does directly.
  PgConnection bad_direct(shard_conninfo(0) + " options='-c DateStyle=nonsense'");
  PgConnection bad_proxy(proxy_conninfo() + " options='-c DateStyle=nonsense'");
  EXPECT_FALSE(bad_direct.ok());
  EXPECT_FALSE(bad_proxy.ok());
  EXPECT_EQ(bad_proxy.connect_sqlstate(), bad_direct.connect_sqlstate());
}

// ---- 8. LISTEN in transaction pooling is refused, never accepted silently --------------------

TEST_F(Transparency, ListenIsRefusedInTransactionPooling) {
  RawClient direct(shard_conninfo(0));
  EXPECT_EQ(play(direct, {{raw::query("LISTEN tp_channel")}, {raw::query("UNLISTEN *")}}), "C:LISTEN Z:I | C:UNLISTEN Z:I");
  RawClient via(proxy_conninfo());
  auto listen = via.round_trip(raw::query("LISTEN tp_channel"));
  EXPECT_EQ(RawClient::summary(listen), "E:0A000 Z:I");
  EXPECT_NE(listen.at(0).message().find("LISTEN is not supported in transaction pooling"), std::string::npos)
      << listen.at(0).message();
  EXPECT_EQ(play(via, {{cat({raw::parse("", "LISTEN tp_channel"), raw::bind("", ""), raw::execute(""), raw::sync()})},
                       {raw::query("BEGIN")},
                       {raw::query("LISTEN tp_channel")},
                       {raw::query("ROLLBACK")},
                       {raw::query("UNLISTEN *")}}),
            "E:0A000 Z:I | C:BEGIN Z:T | E:0A000 Z:E | C:ROLLBACK Z:I | C:UNLISTEN Z:I");
}

// ---- 7. INSERT without a column list into a sharded table ------------------------------------

TEST_F(Transparency, InsertWithoutColumnListRoutesByTheKeysPosition) {
  const std::int64_t t0 = tenant_on(0), t1 = tenant_on(1);
  must(proxy_conninfo(), "DROP TABLE IF EXISTS tp_nocols");
  must(proxy_conninfo(), "CREATE TABLE tp_nocols (id int, v text, tenant_id bigint, PRIMARY KEY (tenant_id, id))");
  must(shard_conninfo(0), "DROP TABLE IF EXISTS tp_nocols_direct");
  must(shard_conninfo(0), "CREATE TABLE tp_nocols_direct (id int, v text, tenant_id bigint, PRIMARY KEY (tenant_id, id))");
  auto run = [&](RawClient& c, const std::string& table) {
    return play(c, {
        {raw::query(fmt::format("INSERT INTO {} VALUES (1, 'a', {}), (2, 'b', {})", table, t1, t0))},
        {cat({raw::parse("", fmt::format("INSERT INTO {} VALUES ($1, $2, $3)", table)), raw::bind("", "", {"3", "c", std::to_string(t1)}),
              raw::execute(""), raw::sync()})},
    });
  };
  RawClient direct(shard_conninfo(0));
  const std::string expected = run(direct, "tp_nocols_direct");
  EXPECT_EQ(expected, "C:INSERT 0 2 Z:I | 1 2 C:INSERT 0 1 Z:I");
  RawClient via(proxy_conninfo());
  EXPECT_EQ(run(via, "tp_nocols"), expected);
  EXPECT_EQ(value_on(shard_of(t1), fmt::format("SELECT string_agg(v, ',' ORDER BY id) FROM tp_nocols WHERE tenant_id = {}", t1)), "a,c");
  EXPECT_EQ(value_on(shard_of(t0), fmt::format("SELECT string_agg(v, ',' ORDER BY id) FROM tp_nocols WHERE tenant_id = {}", t0)), "b");
  // A column dropped through the proxy moves the key: the next INSERT follows it.
  must(proxy_conninfo(), "ALTER TABLE tp_nocols DROP COLUMN v");
  EXPECT_EQ(play(via, {{raw::query(fmt::format("INSERT INTO tp_nocols VALUES (4, {})", t1))}}), "C:INSERT 0 1 Z:I");
  EXPECT_EQ(value_on(shard_of(t1), fmt::format("SELECT count(*) FROM tp_nocols WHERE tenant_id = {}", t1)), "3");
  EXPECT_EQ(value_on(shard_of(t0), "SELECT count(*) FROM tp_nocols"), "1");
}

}  // namespace
