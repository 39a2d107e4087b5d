// A server goes back to its pool only in a state where it answers the next client: clients that
// vanish (or say Terminate) in the middle of an extended-protocol unit after an error (the
// server then ignores everything up to Sync), in the middle of a unit that wrote (an implicit
// transaction a later client's statement would commit), during a COPY (single-shard and
// sharded), inside a transaction or while a statement runs. Meanwhile a healthy client queries
// throughout and is never delayed over 100 ms; afterwards nothing the vanished clients did is
// committed, and SHOW POOLS / SHOW CLIENTS are back to the baseline.

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/health_probe.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"
#include "tests/integration/support/raw_client.hpp"

namespace {

using namespace std::chrono_literals;
using shardline::testing::free_port;
using shardline::testing::HealthyClient;
using shardline::testing::must;
using shardline::testing::PgConnection;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using shardline::testing::RawClient;
using shardline::testing::RawMessage;
using shardline::testing::ShardedTableSpec;
namespace raw = shardline::testing::raw;

shardline::control::LocalCluster& cluster() { return shardline::testing::test_cluster({.shards = 2}); }

std::string copy_data(std::string_view row) { return raw::message('d', row); }
std::string terminate_message() { return raw::message('X', ""); }

/// Reads messages until one with `tag`; fails the test (throws) on a timeout.
void expect_tag(RawClient& c, char tag) {
  for (;;) {
    RawMessage m = c.read();
    if (m.tag == tag) return;
    if (m.tag == 'E' && tag != 'E') throw std::runtime_error("unexpected error: " + m.message());
  }
}

struct Scenario {
  std::string name;
  std::function<void(RawClient&)> act;  ///< leaves the client mid-something
};

std::vector<Scenario> scenarios() {
  return {
      {"error in an extended unit, no Sync",
       [](RawClient& c) {
         c.send(raw::parse("", "SELEC 1") + raw::flush());
         expect_tag(c, 'E');
       }},
      {"a write in an extended unit, no Sync",
       [](RawClient& c) {
         c.send(raw::parse("", "INSERT INTO resync_plain VALUES (1)") + raw::bind("", "") + raw::execute("") +
                raw::flush());
         expect_tag(c, 'C');
       }},
      {"a statement running in an extended unit",
       [](RawClient& c) {
         c.send(raw::parse("", "SELECT pg_sleep(2)") + raw::bind("", "") + raw::execute("") + raw::flush());
         expect_tag(c, '2');
       }},
      {"COPY into an unsharded table",
       [](RawClient& c) {
         c.send(raw::query("COPY resync_plain FROM STDIN"));
         expect_tag(c, 'G');
         c.send(copy_data("7\n"));
       }},
      {"COPY into a sharded table",
       [](RawClient& c) {
         c.send(raw::query("COPY resync_items FROM STDIN"));
         expect_tag(c, 'G');
         c.send(copy_data("1\tone\n") + copy_data("2\ttwo\n"));
       }},
      {"inside a transaction that wrote",
       [](RawClient& c) {
         c.round_trip(raw::query("BEGIN"));
         c.round_trip(raw::query("INSERT INTO resync_plain VALUES (2)"));
       }},
      {"a simple query running",
       [](RawClient& c) { c.send(raw::query("SELECT pg_sleep(2)")); }},
  };
}

class ServerResync : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (int s = 0; s < 2; ++s) {
      PgConnection c(cluster().conninfo(s));
      ASSERT_TRUE(c.ok()) << c.error();
      must(c, "DROP TABLE IF EXISTS resync_plain, resync_items");
      must(c, "CREATE TABLE resync_items (tenant_id int, v text)");
      if (s == 0) must(c, "CREATE TABLE resync_plain (v int)");
    }
  }
};

void run_scenarios(bool vanish) {
  ProxyConfig cfg(cluster(), free_port());
  // Two servers per shard: one for the mistreating client, one for the healthy client, which
  // takes the newest idle server first and so the one just released.
  cfg.pool_size(2).query_wait_timeout_ms(10000).sharded_table(ShardedTableSpec{"resync_items", "", "int"});
  ProxyProcess proxy(cfg.yaml());
  const std::string app = proxy.conninfo() + " sslmode=disable gssencmode=disable connect_timeout=5";
  const std::string admin = proxy.conninfo("app", "secret", "shardline") + " sslmode=disable";
  const auto baseline = shardline::testing::wait_pools_idle(admin, 1, 5s);
  const double alone_ms = shardline::testing::worst_delay_alone_ms(app, "SELECT count(*) FROM resync_plain", 2s);
  HealthyClient healthy(app, "SELECT count(*) FROM resync_plain");
  for (int round = 0; round < 3; ++round) {
    for (const Scenario& s : scenarios()) {
      RawClient c(proxy.conninfo(), 10s);
      ASSERT_NO_THROW(s.act(c)) << s.name;
      if (vanish) c.vanish();
      else c.send(terminate_message());
      // The healthy client keeps going meanwhile; the next mistreating client comes soon after.
      std::this_thread::sleep_for(30ms);
    }
  }
  std::this_thread::sleep_for(200ms);
  healthy.stop();
  EXPECT_GT(healthy.statements(), 50);
  EXPECT_TRUE(healthy.errors().empty()) << healthy.errors().front();
  EXPECT_LE(healthy.worst_ms(), shardline::testing::allowed_delay_ms(alone_ms)) << "the healthy client was delayed";
  std::printf("healthy client: %d statements, worst %.1f ms (alone before: %.1f ms)\n", healthy.statements(),
              healthy.worst_ms(), alone_ms);

  // Nothing the vanished clients did is committed (PostgreSQL aborts a dead client's work).
  PgConnection check(app);
  ASSERT_TRUE(check.ok()) << check.error();
  EXPECT_EQ(check.value("SELECT count(*) FROM resync_plain"), "0");
  EXPECT_EQ(check.value("SELECT count(*) FROM resync_items"), "0");
  // The statements still running when their clients left (pg_sleep(2)) must have ended too.
  const auto after = shardline::testing::wait_pools_idle(admin, 2, 5s);
  EXPECT_EQ(after.text(), (shardline::testing::PoolUsage{0, 0, 0, 2}).text())
      << "baseline was " << baseline.text();
}

TEST_F(ServerResync, VanishedClientsLeaveServersThatAnswer) { run_scenarios(true); }

TEST_F(ServerResync, TerminatedClientsLeaveServersThatAnswer) { run_scenarios(false); }

}  // namespace
