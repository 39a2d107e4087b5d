// Crash recovery of two-phase commit: 4 clients loop transactions that write one row on each of
// two shards (same txn id), while the proxy is killed with SIGKILL at several moments: by the
// test-only fault points between PREPARE and the decision and between the decision and COMMIT
// PREPARED (SHARDLINE_FAULT), and by the test at an arbitrary moment. After each kill the proxy
// is restarted on the same port (a new instance: its resolver finishes the dead one's
// transactions). Afterwards every txn id has both rows or neither, every acknowledged COMMIT
// has both, and no shard holds a shardline prepared transaction within 30 s.

#include <libpq-fe.h>
#include <signal.h>
#include <stdlib.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "router/sharding/shard_key.hpp"
#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"

namespace {

using namespace std::chrono_literals;
using shardline::testing::must;
using shardline::testing::PgConnection;
using shardline::testing::PgResult;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using shardline::testing::ShardedTableSpec;
using Clock = std::chrono::steady_clock;

constexpr int kLogicalShards = 1024;
constexpr int kShards = 2;
constexpr int kClients = 4;

shardline::control::LocalCluster& cluster() {
  shardline::testing::ClusterSpec spec;
  spec.shards = kShards;
  return shardline::testing::test_cluster(spec);
}

int shard_of(std::int64_t tenant) {
  return shardline::router::logical_shard_of_int(tenant, kLogicalShards) * kShards / kLogicalShards;
}
std::int64_t tenant_on(int shard, int skip) {
  for (std::int64_t t = 1;; ++t)
    if (shard_of(t) == shard && skip-- == 0) return t;
}

std::set<std::int64_t> txns_on(int shard) {
  PgConnection c(cluster().conninfo(shard));
  const PgResult r = c.exec("SELECT txn FROM tc_rows");
  if (!r.ok()) throw std::runtime_error(r.describe());
  std::set<std::int64_t> out;
  for (int i = 0; i < r.rows(); ++i) out.insert(std::stoll(r.value(i, 0)));
  return out;
}

int prepared_on(int shard) {
  PgConnection c(cluster().conninfo(shard));
  return std::stoi(c.value("SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'shardline:%'"));
}

/// One client: 2-shard transactions in a loop, reconnecting whenever the proxy is gone.
void client_loop(int id, const std::string& conninfo, const std::atomic<bool>& stop, std::mutex& mu,
                 std::set<std::int64_t>& acked, std::atomic<int>& commits) {
  const std::int64_t t0 = tenant_on(0, id), t1 = tenant_on(1, id);
  std::int64_t next = std::int64_t(id + 1) * 10000000;
  while (!stop) {
    PgConnection c(conninfo, 2s);
    if (!c.ok()) {
      std::this_thread::sleep_for(20ms);
      continue;
    }
    while (!stop) {
      const std::int64_t txn = ++next;
      auto ok = [&](const std::string& sql) { return c.exec(sql).ok(); };
      if (!ok("BEGIN") || !ok(fmt::format("INSERT INTO tc_rows VALUES ({}, {})", t0, txn)) ||
          !ok(fmt::format("INSERT INTO tc_rows VALUES ({}, {})", t1, txn)))
        break;
      const PgResult r = c.exec("COMMIT");
      if (!r.ok()) break;
      if (std::string(PQcmdStatus(r.get())) == "COMMIT") {
        std::lock_guard lock(mu);
        acked.insert(txn);
        ++commits;
      }
    }
  }
}

TEST(TwoPhaseCommitCrash, KilledProxyLeavesEveryTransactionWholeOrAbsent) {
  for (int s = 0; s < kShards; ++s) {
    PgConnection c(cluster().conninfo(s));
    must(c, "DROP TABLE IF EXISTS tc_rows");
    must(c, "CREATE TABLE tc_rows (tenant_id bigint NOT NULL, txn bigint NOT NULL, PRIMARY KEY (tenant_id, txn))");
  }
  ProxyConfig cfg(cluster(), shardline::testing::free_port());
  cfg.sharded_table(ShardedTableSpec{"tc_rows", "", "bigint"});
  cfg.cross_shard_transactions(shardline::config::CrossShardTransactions::TwoPhaseCommit);
  const std::string yaml = cfg.yaml();

  std::unique_ptr<ProxyProcess> proxy = std::make_unique<ProxyProcess>(yaml);
  const std::string conninfo =
      proxy->conninfo("app", "secret", "app") + " sslmode=disable gssencmode=disable connect_timeout=2";
  std::atomic<bool> stop{false};
  std::atomic<int> commits{0};
  std::mutex mu;
  std::set<std::int64_t> acked;
  std::vector<std::thread> clients;
  struct Joiner {  // the clients stop however the test ends (an ASSERT returns early)
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~Joiner() {
      stop = true;
      for (auto& t : threads)
        if (t.joinable()) t.join();
    }
  } joiner{stop, clients};
  for (int i = 0; i < kClients; ++i)
    clients.emplace_back(client_loop, i, conninfo, std::cref(stop), std::ref(mu), std::ref(acked), std::ref(commits));

  // Each phase ends with the proxy killed: by itself at a fault point, or by the test.
  struct Phase {
    const char* fault;  ///< SHARDLINE_FAULT, or nullptr: SIGKILL after `run`
    std::chrono::milliseconds run;
  };
  const std::vector<Phase> phases = {{nullptr, 1500ms}, {"after_prepare:30", 0ms}, {"after_decision:30", 0ms},
                                     {nullptr, 700ms},  {"after_prepare:5", 0ms},  {"after_decision:5", 0ms}};
  int kills = 0;
  std::string logs;  // of every instance: what their resolvers did
  for (const auto& ph : phases) {
    if (ph.fault) {
      // This instance dies at the fault point; the next starts without it.
      ::setenv("SHARDLINE_FAULT", ph.fault, 1);
      logs += proxy->log();
      proxy = std::make_unique<ProxyProcess>(yaml);
      ::unsetenv("SHARDLINE_FAULT");
      const int code = proxy->wait_exit(20s);
      ASSERT_EQ(code, 128 + SIGKILL) << "the proxy did not reach fault point " << ph.fault << ":\n" << proxy->log();
    } else {
      if (kills > 0) {
        logs += proxy->log();
        proxy = std::make_unique<ProxyProcess>(yaml);
      }
      std::this_thread::sleep_for(ph.run);
      proxy->signal(SIGKILL);
      ASSERT_GE(proxy->wait_exit(10s), 0);
    }
    ++kills;
  }
  // A last instance, without faults: the clients go on a while, then stop.
  logs += proxy->log();
  proxy = std::make_unique<ProxyProcess>(yaml);
  const int before = commits.load();
  const auto resumed = Clock::now();
  while (commits.load() < before + 20 && Clock::now() - resumed < 10s) std::this_thread::sleep_for(20ms);
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_GE(commits.load(), before + 20) << "the clients did not commit again after the last restart";

  const auto start = Clock::now();
  int left = 0;
  do {
    left = prepared_on(0) + prepared_on(1);
    if (left == 0) break;
    std::this_thread::sleep_for(100ms);
  } while (Clock::now() - start < 30s);
  EXPECT_EQ(left, 0) << "prepared transactions still on the shards after 30 s";
  std::cerr << fmt::format("[crash test] {} kills, {} acknowledged commits, prepared transactions gone after {} ms\n",
                           kills, acked.size(),
                           std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());

  logs += proxy->log();
  // The fault points left prepared transactions both ways: undecided (rolled back by the next
  // instance's resolver) and decided (committed by it).
  EXPECT_NE(logs.find("2pc resolver: ROLLBACK PREPARED"), std::string::npos) << logs;
  EXPECT_NE(logs.find("2pc resolver: COMMIT PREPARED"), std::string::npos) << logs;

  const auto s0 = txns_on(0), s1 = txns_on(1);
  int half = 0;
  for (auto t : s0) half += !s1.contains(t);
  for (auto t : s1) half += !s0.contains(t);
  EXPECT_EQ(half, 0) << "transactions with a row on one shard only";
  int lost = 0;
  for (auto t : acked) lost += !(s0.contains(t) && s1.contains(t));
  EXPECT_EQ(lost, 0) << "acknowledged commits missing a row";
  EXPECT_GT(acked.size(), 50u);
}

}  // namespace
