// Online reshard end to end (SPEC.md section 8, issue 11) against real PostgreSQL through the
// real proxy: RESHARD MOVE of a logical shard s0 -> s1 -> s0 while 8 clients write to tenants of
// every logical shard and readers re-read acknowledged rows; then the proxy SIGKILLed in each
// phase and restarted. Invariants every time: every acknowledged write present exactly once
// across the shards, no row of the moved logical shard left on the shard that does not own it,
// no replication slot, publication or subscription left, readers never missed an acked row.
// Also: the row filter expression equals satisfies_hash_partition for every key type.

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "proxy/control/reshard_sql.hpp"
#include "router/sharding/shard_key.hpp"
#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"
#include "tests/integration/support/reshard_harness.hpp"

namespace {

using namespace std::chrono_literals;
using shardline::testing::free_port;
using shardline::testing::must;
using shardline::testing::PgConnection;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using shardline::testing::test_cluster;
using namespace shardline::testing;
using Clock = std::chrono::steady_clock;

class ReshardTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    test_cluster();
  }
  void SetUp() override {
    for (int s = 0; s < 2; ++s) {
      auto c = superuser(s);
      must(c, "DROP TABLE IF EXISTS items");
      must(c, "DROP SCHEMA IF EXISTS shardline CASCADE");
    }
  }
  std::string config(std::uint16_t port) {
    ProxyConfig cfg(test_cluster(), port);
    cfg.sharded_table({"items", "", ""});
    return cfg.yaml();
  }
  static void create_items(const ProxyProcess& p) {
    PgConnection c(p.conninfo());
    must(c, "CREATE TABLE items (tenant_id bigint, id bigint, v text, PRIMARY KEY (tenant_id, id))");
  }
  static std::string admin(const ProxyProcess& p) { return p.conninfo("app", "secret", "shardline"); }
};

TEST_F(ReshardTest, RowFilterEqualsSatisfiesHashPartition) {
  auto c = superuser(0);
  struct Case { std::string type, values; };
  const std::vector<Case> cases = {
      {"smallint", "SELECT g::smallint FROM generate_series(-32768, 32767) g"},
      {"integer", "SELECT (g * 65537)::integer FROM generate_series(-30000, 30000) g"},
      {"bigint", "SELECT (g * 4294967311)::bigint FROM generate_series(-30000, 30000) g"},
      {"text", "SELECT md5(g::text) || repeat('x', g % 40) FROM generate_series(1, 30000) g"},
      {"uuid", "SELECT md5(g::text)::uuid FROM generate_series(1, 30000) g"},
  };
  for (const auto& k : cases) {
    must(c, "DROP TABLE IF EXISTS hp; CREATE TABLE hp (k " + k.type + ") PARTITION BY HASH (k)");
    const std::string expr = shardline::control::logical_shard_sql("v.k", k.type, kModulus);
    const auto bad = c.value("SELECT count(*) FROM (" + k.values + ") v(k) WHERE NOT satisfies_hash_partition("
                             "'hp'::regclass, 1024, (" + expr + ")::int, v.k)");
    EXPECT_EQ(bad, "0") << k.type;
  }
  must(c, "DROP TABLE hp");
}

TEST_F(ReshardTest, MoveThereAndBackUnderTraffic) {
  ProxyProcess proxy(config(free_port()));
  create_items(proxy);
  const int L = logical_on_s0();
  Traffic traffic({proxy.conninfo()}, tenants_for(L));
  traffic.start(8, 2);
  std::this_thread::sleep_for(1s);

  const std::string a = start_move(admin(proxy), L, "s1");
  EXPECT_EQ(wait_phase(admin(proxy), a, {"done", "failed", "aborted"}), "done") << job_row(admin(proxy), a)["error"];
  auto done = job_row(admin(proxy), a);
  EXPECT_GT(std::stoll(done["rows_total"]), 0);
  EXPECT_GE(std::stoll(done["rows_copied"]), std::stoll(done["rows_total"]));
  std::printf("move %s: %s rows copied of %s, started %s, finished %s\n", a.c_str(), done["rows_copied"].c_str(),
              done["rows_total"].c_str(), done["started_at"].c_str(), done["finished_at"].c_str());
  std::this_thread::sleep_for(500ms);
  {
    auto s0 = superuser(0);
    EXPECT_EQ(s0.value("SELECT count(*) FROM items WHERE " +
                       shardline::control::logical_filter_sql(items_table(), kModulus, L)),
              "0");
  }
  const std::string b = start_move(admin(proxy), L, "s0");
  EXPECT_EQ(wait_phase(admin(proxy), b, {"done", "failed", "aborted"}), "done") << job_row(admin(proxy), b)["error"];
  std::this_thread::sleep_for(500ms);
  traffic.stop();
  EXPECT_GT(traffic.acked_count(), 200u);
  std::printf("%zu acknowledged writes (%d refused), %d reads\n", traffic.acked_count(), traffic.errors(),
              traffic.reads());
  check_invariants(traffic, L, 0);
  if (std::getenv("RESHARD_TEST_LOG")) std::fprintf(stderr, "%s\n", proxy.log().c_str());
}

/// Runs `shardline reshard ...`; returns the exit code, stdout+stderr in `output`.
int run_cli(const std::string& args, std::string& output) {
  const std::string cmd = shardline::testing::shardline_binary().string() + " reshard " + args + " 2>&1";
  FILE* f = ::popen(cmd.c_str(), "r");
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, f)) output.append(buf, n);
  const int st = ::pclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST_F(ReshardTest, CliMovesAndReports) {
  ProxyProcess proxy(config(free_port()));
  create_items(proxy);
  {
    PgConnection c(proxy.conninfo());
    for (int t = 1; t <= 200; ++t) must(c, "INSERT INTO items VALUES (" + std::to_string(t) + ", 1, 'x')");
  }
  const int L = logical_on_s0();
  std::string out;
  EXPECT_EQ(run_cli("move --logical " + std::to_string(L) + " --to s1 --config " + proxy.config_path().string(), out), 0)
      << out;
  // Not a terminal: plain lines, one per phase at least, ending in done.
  EXPECT_NE(out.find(" copy "), std::string::npos) << out;
  EXPECT_NE(out.find(" done "), std::string::npos) << out;
  std::printf("%s", out.c_str());
  out.clear();
  EXPECT_EQ(run_cli("status --admin '" + admin(proxy) + "'", out), 0) << out;
  EXPECT_NE(out.find("\tmove\t" + std::to_string(L) + "\t\ts0\ts1\tdone\t"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(run_cli("move --logical 3 --to nowhere --config " + proxy.config_path().string(), out), 1) << out;
  EXPECT_NE(out.find("unknown target shard 'nowhere'"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(run_cli("abort --config " + proxy.config_path().string(), out), 2) << out;
  EXPECT_NE(out.find("no reshard job is running"), std::string::npos) << out;
  PgConnection c(proxy.conninfo());
  EXPECT_EQ(c.value("SELECT count(*) FROM items"), "200");
}

TEST_F(ReshardTest, RefusesBadRequests) {
  ProxyProcess proxy(config(free_port()));
  create_items(proxy);
  PgConnection c(admin(proxy));
  auto r = c.exec("RESHARD MOVE 5 TO s9");
  EXPECT_EQ(r.sqlstate(), "22023") << r.describe();
  r = c.exec("RESHARD MOVE 5000 TO s1");
  EXPECT_EQ(r.sqlstate(), "22023") << r.describe();
  r = c.exec("RESHARD MOVE 600 TO s1");  // already there
  EXPECT_EQ(r.sqlstate(), "22023") << r.describe();
  r = c.exec("RESHARD MOVE x TO s1");
  EXPECT_EQ(r.sqlstate(), "42601") << r.describe();
  r = c.exec("RESHARD ABORT");
  EXPECT_EQ(r.sqlstate(), "55000") << r.describe();
}

TEST_F(ReshardTest, VerifyMismatchFailsTheJobAndLeavesTrafficOnTheSource) {
  // A row of the moved logical shard written straight into the target (no proxy, no source):
  // the copies differ, so the job must fail at verify and the directory stay on s0.
  ::setenv("SHARDLINE_TEST_RESHARD_PHASE_DELAY_MS", "1500", 1);
  ProxyProcess proxy(config(free_port()));
  ::unsetenv("SHARDLINE_TEST_RESHARD_PHASE_DELAY_MS");
  create_items(proxy);
  const int L = logical_on_s0();
  const std::int64_t tenant = tenants_for(L)[0];
  PgConnection app(proxy.conninfo());
  for (int id = 1; id <= 50; ++id)
    must(app, fmt::format("INSERT INTO items VALUES ({}, {}, 'through the proxy')", tenant, id));
  const std::string job = start_move(admin(proxy), L, "s1");
  ASSERT_EQ(wait_phase(admin(proxy), job, {"catchup", "failed", "aborted", "done"}), "catchup");
  {
    auto target = superuser(1);
    must(target, fmt::format("INSERT INTO items VALUES ({}, 1000000, 'only on the target')", tenant));
  }
  EXPECT_EQ(wait_phase(admin(proxy), job, {"done", "failed", "aborted"}), "failed");
  const std::string error = job_row(admin(proxy), job)["error"];
  EXPECT_NE(error.find("verify failed for table"), std::string::npos) << error;
  std::printf("verify mismatch: job %s failed: %s\n", job.c_str(), error.c_str());
  // Traffic stays on the source, which still has every row; nothing of the job is left.
  EXPECT_EQ(app.value(fmt::format("SELECT count(*) FROM items WHERE tenant_id = {}", tenant)), "50");
  must(app, fmt::format("INSERT INTO items VALUES ({}, 51, 'after the failed job')", tenant));
  auto source = superuser(0);
  EXPECT_EQ(source.value(fmt::format("SELECT count(*) FROM items WHERE tenant_id = {}", tenant)), "51");
  for (int s = 0; s < 2; ++s) {
    auto c = superuser(s);
    EXPECT_EQ(c.value("SELECT count(*) FROM pg_replication_slots"), "0") << "shard " << s;
    EXPECT_EQ(c.value("SELECT count(*) FROM pg_publication"), "0") << "shard " << s;
    EXPECT_EQ(c.value("SELECT count(*) FROM pg_subscription"), "0") << "shard " << s;
  }
  EXPECT_EQ(superuser(1).value(fmt::format("SELECT count(*) FROM items WHERE tenant_id = {}", tenant)), "0")
      << "the failed job's copy is still on the target";
}

}  // namespace
