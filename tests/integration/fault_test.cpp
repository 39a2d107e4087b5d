// Shard servers crash (kill -9 of the postmaster and all its processes) under load:
// - a replica under `eventual` reads: 0 read errors (the primary answers while it is down);
// - a primary under writes: every error its tenants' clients see carries a SQLSTATE, the other
//   shard's clients see none, every acknowledged write is on its shard exactly once, and the
//   proxy (never restarted) serves the shard again once the server is back.
// Shard s1 is the one that crashes: s0 holds the proxy's catalog and is the home shard logins
// use, which a crash of s0 would take down for everyone.

#include <libpq-fe.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"
#include "tests/integration/support/server_kill.hpp"

namespace {

using namespace std::chrono_literals;
using shardline::control::ServerInfo;
using shardline::testing::free_port;
using shardline::testing::must;
using shardline::testing::PgConnection;
using shardline::testing::PgResult;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using shardline::testing::ShardedTableSpec;
using Clock = std::chrono::steady_clock;

shardline::control::LocalCluster& cluster() {
  return shardline::testing::test_cluster({.shards = 2, .replicas = 1});
}

const ServerInfo& server(int shard, int replica) {
  for (const auto& s : cluster().servers())
    if (s.shard == fmt::format("s{}", shard) && s.replica == replica) return s;
  throw std::runtime_error("no such server");
}

struct Fixture {
  std::unique_ptr<ProxyProcess> proxy;
  std::string conninfo;
  std::vector<int> tenants[2];  ///< tenants living on s0 and s1
};

Fixture& fixture() {
  static Fixture f = [] {
    for (int s = 0; s < 2; ++s) {
      PgConnection c(cluster().conninfo(s));
      if (!c.ok()) throw std::runtime_error(c.error());
      must(c, "DROP TABLE IF EXISTS fault_ledger");
      must(c, "CREATE TABLE fault_ledger (tenant_id int, writer int, seq int)");
    }
    Fixture fx;
    ProxyConfig cfg(cluster(), free_port());
    cfg.pool_size(10).query_wait_timeout_ms(5000).sharded_table(ShardedTableSpec{"fault_ledger", "", "int"});
    cfg.replicas({.poll_interval_ms = 50});
    fx.proxy = std::make_unique<ProxyProcess>(cfg.yaml());
    fx.conninfo = fx.proxy->conninfo() + " sslmode=disable gssencmode=disable connect_timeout=5";
    PgConnection c(fx.conninfo);
    if (!c.ok()) throw std::runtime_error(c.error());
    for (int k = 1; fx.tenants[0].size() < 4 || fx.tenants[1].size() < 4; ++k) {
      const int port = std::stoi(c.value(fmt::format("/* shardline: tenant={} */ SELECT inet_server_port()", k)));
      // A read: s0's primary or its replica may answer.
      const int shard = port == cluster().primary_port(0) || port == cluster().replica_port(0, 0) ? 0 : 1;
      if (fx.tenants[shard].size() < 4) fx.tenants[shard].push_back(k);
    }
    return fx;
  }();
  return f;
}

/// Every error a client saw, and whether each carried a SQLSTATE.
struct Errors {
  std::mutex mu;
  std::map<std::string, int> by_state;  ///< SQLSTATE -> count ("" = none)
  std::vector<std::string> samples;
  void add(const std::string& state, const std::string& what) {
    std::lock_guard lock(mu);
    ++by_state[state];
    if (samples.size() < 10) samples.push_back(state + ": " + what);
  }
  int total() {
    std::lock_guard lock(mu);
    int n = 0;
    for (auto& [s, c] : by_state) n += c;
    return n;
  }
  int without_sqlstate() {
    std::lock_guard lock(mu);
    return by_state.count("") ? by_state[""] : 0;
  }
  std::string text() {
    std::lock_guard lock(mu);
    std::string out;
    for (auto& [s, c] : by_state) out += fmt::format("{}{}x{}", out.empty() ? "" : ", ", s.empty() ? "(none)" : s, c);
    for (auto& s : samples) out += "\n  " + s;
    return out;
  }
};

/// Runs `sql` (simple Query); on failure records the error's SQLSTATE (from the result, else
/// from libpq's verbose text, where a FATAL's survives) and reconnects a dead connection.
bool run(std::unique_ptr<PgConnection>& c, const std::string& conninfo, const std::string& sql, Errors& errors,
         PgResult* out = nullptr) {
  if (!c || !c->ok()) {
    c = std::make_unique<PgConnection>(conninfo);
    if (!c->ok()) {
      const auto states = c->error_sqlstates();
      errors.add(states.empty() ? "" : states.back(), "connect: " + c->error());
      return false;
    }
    must(*c, "SET shardline.consistency = eventual");
  }
  PgResult r = c->exec(sql);
  if (r.ok()) {
    if (out) *out = std::move(r);
    return true;
  }
  std::string state = r.sqlstate();
  if (state.empty()) {
    const auto states = c->error_sqlstates();
    if (!states.empty()) state = states.back();
  }
  errors.add(state, r.describe());
  return false;
}

/// The proxy's log lines that contain `word` (for a failure's message).
std::string lines_about(const Fixture& fx, std::string_view word) {
  std::string out, line;
  std::istringstream log(fx.proxy->log());
  while (std::getline(log, line))
    if (line.find(word) != std::string::npos) out += line + "\n";
  return out;
}

TEST(Fault, ReplicaKilledUnderEventualReadsGivesNoReadError) {
  Fixture& fx = fixture();
  Errors errors;
  std::atomic<bool> running{true};
  std::atomic<int> reads{0}, replica_reads{0}, replica_reads_after_kill{0};
  std::atomic<bool> killed{false};
  std::vector<std::thread> readers;
  for (int shard = 0; shard < 2; ++shard)
    for (int tenant : fx.tenants[shard])
      readers.emplace_back([&, tenant] {
        std::unique_ptr<PgConnection> c;
        const std::string sql =
            fmt::format("SELECT pg_is_in_recovery(), count(*) FROM fault_ledger WHERE tenant_id = {}", tenant);
        while (running) {
          PgResult r{nullptr};
          if (run(c, fx.conninfo, sql, errors, &r)) {
            ++reads;
            if (r.value(0, 0) == "t") {
              ++replica_reads;
              if (killed) ++replica_reads_after_kill;
            }
          }
          std::this_thread::sleep_for(2ms);
        }
      });
  std::this_thread::sleep_for(1500ms);
  const int before = replica_reads;
  shardline::testing::kill_server(cluster(), server(1, 0));
  killed = true;
  const int reads_at_kill = reads;
  std::this_thread::sleep_for(2000ms);
  const int reads_while_down = reads - reads_at_kill;
  cluster().start_server(server(1, 0));
  std::this_thread::sleep_for(1000ms);
  running = false;
  for (auto& t : readers) t.join();
  std::printf("replica kill: %d reads (%d from replicas before the kill), %d while s1's replica was down, %d errors\n",
              reads.load(), before, reads_while_down, errors.total());
  EXPECT_GT(before, 0) << "no read went to a replica: the test shows nothing";
  EXPECT_GT(reads_while_down, 100);
  EXPECT_EQ(errors.total(), 0) << errors.text() << "\nthe proxy's log about lost servers:\n" << lines_about(fx, "");
}

TEST(Fault, PrimaryKilledUnderWritesLosesNoAcknowledgedWrite) {
  Fixture& fx = fixture();
  Errors errors[2];
  std::atomic<bool> running{true};
  std::atomic<bool> restarted{false};
  struct Writer {
    int shard, tenant, id;
    std::vector<int> acked;
    int acked_after_restart = 0;
  };
  std::vector<Writer> writers;
  for (int shard = 0; shard < 2; ++shard)
    for (int tenant : fx.tenants[shard]) writers.push_back(Writer{shard, tenant, int(writers.size()), {}, 0});
  std::vector<std::thread> threads;
  for (auto& w : writers)
    threads.emplace_back([&] {
      std::unique_ptr<PgConnection> c;
      for (int seq = 1; running; ++seq) {
        if (run(c, fx.conninfo, fmt::format("INSERT INTO fault_ledger VALUES ({}, {}, {})", w.tenant, w.id, seq),
                errors[w.shard])) {
          w.acked.push_back(seq);
          if (restarted) ++w.acked_after_restart;
        } else {
          std::this_thread::sleep_for(20ms);
        }
      }
    });
  std::string failure;
  try {
    std::this_thread::sleep_for(1000ms);
    shardline::testing::kill_server(cluster(), server(1, -1));
    std::this_thread::sleep_for(1500ms);
    cluster().start_server(server(1, -1));
    restarted = true;
    std::this_thread::sleep_for(2500ms);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  running = false;
  for (auto& t : threads) t.join();
  ASSERT_EQ(failure, "") << "killing or restarting s1's primary failed";

  int acked = 0;
  for (auto& w : writers) acked += int(w.acked.size());
  std::printf("primary kill: %d acknowledged writes; s0 errors: %d; s1 errors: %d (%s)\n", acked, errors[0].total(),
              errors[1].total(), errors[1].text().c_str());
  EXPECT_EQ(errors[0].total(), 0) << "the other shard's clients were hurt: " << errors[0].text();
  EXPECT_GT(errors[1].total(), 0) << "the crash was not noticed: the test shows nothing";
  EXPECT_EQ(errors[1].without_sqlstate(), 0) << errors[1].text();

  // Every acknowledged write is on its shard exactly once.
  int lost = 0, duplicated = 0;
  for (int shard = 0; shard < 2; ++shard) {
    PgConnection direct(cluster().conninfo(shard));
    ASSERT_TRUE(direct.ok()) << direct.error();
    for (auto& w : writers) {
      if (w.shard != shard) continue;
      const PgResult r = direct.exec(fmt::format(
          "SELECT seq, count(*) FROM fault_ledger WHERE writer = {} AND tenant_id = {} GROUP BY seq", w.id, w.tenant));
      ASSERT_TRUE(r.ok()) << r.describe();
      std::map<int, int> present;
      for (int i = 0; i < r.rows(); ++i) present[std::stoi(r.value(i, 0))] = std::stoi(r.value(i, 1));
      for (int seq : w.acked) {
        if (!present.count(seq)) ++lost;
        else if (present[seq] > 1) ++duplicated;
      }
      if (shard == 1) {
        EXPECT_GT(w.acked_after_restart, 0) << "writer " << w.id << " never wrote again after the restart";
      }
    }
  }
  std::printf("primary kill: %d lost, %d duplicated\n", lost, duplicated);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(duplicated, 0);
}

}  // namespace
