// Online reshard survives its proxy (SPEC.md section 8, issue 11): the proxy running a move is
// SIGKILLed in each phase (copy, catchup, verify, cutover, cleanup) and restarted; the job is
// rolled back (before the flip) or finished (after it), with the same invariants as
// reshard_test: acknowledged writes exactly once, no rows of the moved logical shard on the
// shard not owning it, no slot/publication/subscription left. Also RESHARD ABORT, and two
// proxies sharing the catalog with writers on both while the move runs through one.
//
// SHARDLINE_TEST_RESHARD_PHASE_DELAY_MS makes each phase last long enough to be killed in.

#include <gtest/gtest.h>

#include <signal.h>
#include <stdlib.h>

#include <memory>

#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"
#include "tests/integration/support/reshard_harness.hpp"

namespace {

using namespace shardline::testing;

class ReshardCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int s = 0; s < 2; ++s) {
      auto c = superuser(s);
      must(c, "DROP TABLE IF EXISTS items");
      must(c, "DROP SCHEMA IF EXISTS shardline CASCADE");
    }
    port_ = free_port();
    ProxyConfig cfg(test_cluster(), port_);
    cfg.sharded_table({"items", "", ""});
    yaml_ = cfg.yaml();
  }
  std::unique_ptr<ProxyProcess> start_proxy(int phase_delay_ms, std::string yaml = "") {
    ::setenv("SHARDLINE_TEST_RESHARD_PHASE_DELAY_MS", std::to_string(phase_delay_ms).c_str(), 1);
    auto p = std::make_unique<ProxyProcess>(yaml.empty() ? yaml_ : yaml);
    ::unsetenv("SHARDLINE_TEST_RESHARD_PHASE_DELAY_MS");
    return p;
  }
  static void create_items(const ProxyProcess& p) {
    PgConnection c(p.conninfo());
    must(c, "CREATE TABLE items (tenant_id bigint, id bigint, v text, PRIMARY KEY (tenant_id, id))");
  }
  static std::string admin(const ProxyProcess& p) { return p.conninfo("app", "secret", "shardline"); }

  std::uint16_t port_ = 0;
  std::string yaml_;
};

TEST_F(ReshardCrashTest, SigkillInEveryPhaseThenRestart) {
  auto proxy = start_proxy(1500);
  create_items(*proxy);
  const int L = logical_on_s0();
  Traffic traffic({proxy->conninfo()}, tenants_for(L));
  traffic.start(8, 2);
  int owner = 0;
  for (const std::string phase : {"copy", "catchup", "verify", "cutover", "cleanup"}) {
    SCOPED_TRACE("killed in phase " + phase);
    const std::string target = owner == 0 ? "s1" : "s0";
    const std::string id = start_move(admin(*proxy), L, target);
    ASSERT_EQ(wait_phase(admin(*proxy), id, {phase}, std::chrono::seconds(30)), phase);
    proxy->signal(SIGKILL);
    ASSERT_NE(proxy->wait_exit(5s), -1);
    proxy.reset();
    proxy = start_proxy(0);
    const std::string expected = phase == "cleanup" ? "done" : "aborted";
    const std::string ended = wait_phase(admin(*proxy), id, {"done", "aborted", "failed"});
    EXPECT_EQ(ended, expected) << job_row(admin(*proxy), id)["error"];
    if (ended == "done") owner = 1 - owner;
    std::this_thread::sleep_for(300ms);
    check_invariants(traffic, L, owner);
    proxy.reset();
    proxy = start_proxy(1500);
  }
  traffic.stop();
  check_invariants(traffic, L, owner);
  std::printf("%zu acknowledged writes (%d refused), %d reads\n", traffic.acked_count(), traffic.errors(),
              traffic.reads());
}

TEST_F(ReshardCrashTest, AbortRollsBack) {
  auto proxy = start_proxy(1500);
  create_items(*proxy);
  const int L = logical_on_s0();
  Traffic traffic({proxy->conninfo()}, tenants_for(L));
  traffic.start(4, 1);
  const std::string id = start_move(admin(*proxy), L, "s1");
  ASSERT_EQ(wait_phase(admin(*proxy), id, {"catchup"}), "catchup");
  PgConnection c(admin(*proxy));
  auto r = c.exec("RESHARD ABORT");
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(wait_phase(admin(*proxy), id, {"done", "aborted", "failed"}), "aborted");
  EXPECT_EQ(job_row(admin(*proxy), id)["error"], "aborted by RESHARD ABORT");
  traffic.stop();
  check_invariants(traffic, L, 0);
}

TEST_F(ReshardCrashTest, IsolateRollsBackOrFinishesAfterAKillAndAborts) {
  auto proxy = start_proxy(1500);
  create_items(*proxy);
  const int L = logical_on_s0();
  const std::vector<std::int64_t> tenants = tenants_for(L);
  const std::string hot = std::to_string(tenants[0]);
  const std::string moved = "tenant_id = " + hot;
  Traffic traffic({proxy->conninfo()}, tenants);
  traffic.start(8, 2);
  // RESHARD ABORT in catchup: back to the start.
  std::string id = start_isolate(admin(*proxy), hot, "s1");
  ASSERT_EQ(wait_phase(admin(*proxy), id, {"catchup"}), "catchup");
  {
    PgConnection c(admin(*proxy));
    auto r = c.exec("RESHARD ABORT");
    EXPECT_TRUE(r.ok()) << r.describe();
  }
  EXPECT_EQ(wait_phase(admin(*proxy), id, {"done", "aborted", "failed"}), "aborted");
  check_invariants(traffic, moved, 0, "tenant " + hot);
  // Killed with the tenant held (verify): rolled back on restart; killed in cleanup: finished.
  int owner = 0;
  for (const std::string phase : {"verify", "cleanup"}) {
    SCOPED_TRACE("killed in phase " + phase);
    id = start_isolate(admin(*proxy), hot, "s1");
    ASSERT_EQ(wait_phase(admin(*proxy), id, {phase}, std::chrono::seconds(30)), phase);
    proxy->signal(SIGKILL);
    ASSERT_NE(proxy->wait_exit(5s), -1);
    proxy.reset();
    proxy = start_proxy(0);
    const std::string ended = wait_phase(admin(*proxy), id, {"done", "aborted", "failed"});
    EXPECT_EQ(ended, phase == "cleanup" ? "done" : "aborted") << job_row(admin(*proxy), id)["error"];
    if (ended == "done") owner = 1;
    std::this_thread::sleep_for(300ms);
    check_invariants(traffic, moved, owner, "tenant " + hot);
    proxy.reset();
    proxy = start_proxy(1500);
  }
  traffic.stop();
  EXPECT_EQ(owner, 1);
  check_invariants(traffic, moved, owner, "tenant " + hot);
  std::printf("%zu acknowledged writes (%d refused), %d reads\n", traffic.acked_count(), traffic.errors(),
              traffic.reads());
}

TEST_F(ReshardCrashTest, TwoProxiesShareTheCatalog) {
  auto a = start_proxy(0);
  create_items(*a);
  ProxyConfig other(test_cluster(), free_port());
  other.sharded_table({"items", "", ""});
  auto b = start_proxy(0, other.yaml());
  const int L = logical_on_s0();
  Traffic traffic({a->conninfo(), b->conninfo()}, tenants_for(L));
  traffic.start(8, 2);
  std::this_thread::sleep_for(500ms);
  const std::string there = start_move(admin(*a), L, "s1");
  EXPECT_EQ(wait_phase(admin(*a), there, {"done", "aborted", "failed"}), "done") << job_row(admin(*a), there)["error"];
  // The other proxy shows the same job, and routes the moved logical shard to s1.
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(job_row(admin(*b), there)["phase"], "done");
  const std::string back = start_move(admin(*b), L, "s0");
  EXPECT_EQ(wait_phase(admin(*b), back, {"done", "aborted", "failed"}), "done") << job_row(admin(*b), back)["error"];
  std::this_thread::sleep_for(500ms);
  traffic.stop();
  check_invariants(traffic, L, 0);
  std::printf("%zu acknowledged writes (%d refused), %d reads\n", traffic.acked_count(), traffic.errors(),
              traffic.reads());
}

}  // namespace
