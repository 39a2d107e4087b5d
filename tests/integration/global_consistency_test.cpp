// Global consistency (SPEC section 7, the default): a replica serves a read only once it has
// replayed every write this proxy acknowledged, to any client, on the data the read can see.
// Tracked per logical shard, so reads of other tenants keep using the replica while one tenant
// writes. Also: every write path (DDL, COPY, multi-shard statements, transactions, commit-LSN
// tracking off) leaves a position that later reads wait for, and the consistency level can be
// chosen in the startup packet. ctest runs this with the shards' synchronous_commit on and off.

#include <libpq-fe.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"

namespace {

using namespace std::chrono_literals;
using shardline::control::LocalCluster;
using shardline::testing::free_port;
using shardline::testing::PgConnection;
using shardline::testing::PgResult;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using Clock = std::chrono::steady_clock;

constexpr int kTenants = 200;

/// One multi-row INSERT of every tenant's row (split across the shards by the proxy).
std::string insert_tenants() {
  std::string sql = "INSERT INTO gc_items (tenant_id, v) VALUES ";
  for (int t = 0; t < kTenants; ++t) sql += fmt::format("{}({}, 0)", t ? ", " : "", t);
  return sql;
}

LocalCluster& cluster() { return shardline::testing::test_cluster({.shards = 2, .replicas = 1}); }

const char* synchronous_commit() {
  const char* v = std::getenv("SHARDLINE_TEST_SYNCHRONOUS_COMMIT");
  return v && *v ? v : "on";
}

ProxyProcess& proxy() {
  static ProxyProcess p(ProxyConfig(cluster(), free_port())
                            .sharded_table({.name = "gc_items"})
                            .sharded_table({.name = "gc_wide"})
                            .replicas({.poll_interval_ms = 10})
                            .yaml());
  return p;
}

bool on_replica(const LocalCluster& c, int port) {
  for (int s = 0; s < 2; ++s)
    if (port == c.replica_port(s, 0)) return true;
  return false;
}

void exec_ok(const PgConnection& c, const std::string& sql) {
  PgResult r = c.exec(sql);
  ASSERT_TRUE(r.ok()) << sql << ": " << r.describe();
}

/// Waits until eventual reads (the replica) see `count` rows of `table`.
void wait_replicated(const std::string& table, int count) {
  PgConnection c(proxy().conninfo());
  const auto until = Clock::now() + 20s;
  for (;;) {
    PgResult r = c.exec(fmt::format("/* shardline: consistency=eventual */ SELECT count(*) FROM {}", table));
    if (r.ok() && r.value(0, 0) == std::to_string(count)) return;
    ASSERT_LT(Clock::now(), until) << table << " never reached the replicas: " << r.describe();
    std::this_thread::sleep_for(20ms);
  }
}

class GlobalConsistency : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    PgConnection c(proxy().conninfo());
    ASSERT_TRUE(c.ok()) << c.error();
    for (const std::string& sql :
         {std::string("DROP TABLE IF EXISTS gc_items"), std::string("DROP TABLE IF EXISTS gc_wide"),
          std::string("CREATE TABLE gc_items (tenant_id bigint PRIMARY KEY, v bigint NOT NULL)"),
          std::string("CREATE TABLE gc_wide (tenant_id bigint, id int, PRIMARY KEY (tenant_id, id))"),
          insert_tenants()}) {
      PgResult r = c.exec(sql);
      ASSERT_TRUE(r.ok()) << sql << ": " << r.describe();
    }
    std::printf("shards run with synchronous_commit = %s (SHOW through the proxy: %s)\n", synchronous_commit(),
                c.value("SHOW synchronous_commit").c_str());
    wait_replicated("gc_items", kTenants);
  }
};

// One tenant writes continuously; other connections read other tenants (served by the replica)
// and the writing tenant (never stale).
TEST_F(GlobalConsistency, OtherTenantsKeepTheReplicaWhileOneTenantWrites) {
  const LocalCluster& c = cluster();
  constexpr int kWriter = 0;
  constexpr auto kRun = 6s;
  std::atomic<long> acked{0};  // the writer's last acknowledged value
  std::atomic<bool> stop{false};
  std::atomic<long> write_errors{0};
  std::thread writer([&] {
    PgConnection w(proxy().conninfo());
    for (long i = 1; !stop.load(); ++i) {
      PgResult r = w.exec(fmt::format("UPDATE gc_items SET v = {} WHERE tenant_id = {}", i, kWriter));
      if (!r.ok()) {
        ++write_errors;
        return;
      }
      acked = i;
    }
  });
  const unsigned seed = std::random_device{}();
  std::printf("reader seed %u\n", seed);
  std::atomic<long> other_reads{0}, other_on_replica{0}, own_reads{0}, own_on_replica{0}, stale{0}, errors{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      std::mt19937 rng(seed + unsigned(t));
      PgConnection r(proxy().conninfo());
      const auto until = Clock::now() + kRun;
      while (Clock::now() < until) {
        const bool own = rng() % 4 == 0;
        const int tenant = own ? kWriter : 1 + int(rng() % (kTenants - 1));
        const long before = acked.load();
        PgResult q = r.exec(fmt::format("SELECT v, inet_server_port() FROM gc_items WHERE tenant_id = {}", tenant));
        if (!q.ok() || q.rows() != 1) {
          ++errors;
          continue;
        }
        const bool replica = on_replica(c, std::stoi(q.value(0, 1)));
        if (own) {
          ++own_reads;
          if (replica) ++own_on_replica;
          if (std::stol(q.value(0, 0)) < before) ++stale;
        } else {
          ++other_reads;
          if (replica) ++other_on_replica;
        }
      }
    });
  }
  for (auto& th : readers) th.join();
  stop = true;
  writer.join();
  const double other_share = other_reads ? double(other_on_replica) / double(other_reads) : 0.0;
  std::printf("global, one tenant writing (%ld writes acknowledged): other tenants' reads on the replica %ld of %ld "
              "(%.1f%%); the writing tenant's reads on the replica %ld of %ld, stale %ld\n",
              acked.load(), other_on_replica.load(), other_reads.load(), 100.0 * other_share, own_on_replica.load(),
              own_reads.load(), stale.load());
  EXPECT_EQ(write_errors.load(), 0);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(acked.load(), 10) << "the writer hardly wrote";
  EXPECT_EQ(stale.load(), 0) << "a global read of the writing tenant missed an acknowledged write";
  EXPECT_GE(other_share, 0.9) << "global consistency kept other tenants' reads off the replica";
}

// Every write path leaves a position that reads on other connections (global) and on the
// writing connection (session) wait for: DDL on sharded and unsharded tables, CREATE + INSERT,
// COPY, a multi-row INSERT across shards, a broadcast UPDATE, an explicit transaction.
TEST_F(GlobalConsistency, EveryWritePathIsCoveredForSessionAndGlobalReads) {
  PgConnection w(proxy().conninfo());
  PgConnection session(proxy().conninfo());  // the writer's own reads under session consistency
  exec_ok(w, "SET shardline.consistency = session");
  PgConnection other(proxy().conninfo());  // global, no cookie
  long misses = 0, checks = 0;
  auto expect_value = [&](const PgConnection& c, const std::string& sql, const std::string& want, const char* what) {
    PgResult r = c.exec(sql);
    ++checks;
    if (!r.ok() || r.rows() != 1 || r.value(0, 0) != want) {
      ++misses;
      ADD_FAILURE() << what << ": " << sql << " gave " << (r.ok() && r.rows() == 1 ? r.value(0, 0) : r.describe())
                    << ", expected " << want;
    }
  };
  constexpr int kRounds = 40;
  for (int i = 0; i < kRounds; ++i) {
    // DDL on a sharded table (every shard), then the column list.
    exec_ok(w, fmt::format("ALTER TABLE gc_wide ADD COLUMN c{} int DEFAULT {}", i, i));
    const std::string cols = fmt::format(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'gc_wide' AND column_name = 'c{}'", i);
    expect_value(w, cols, "1", "session read after its own ALTER TABLE");
    expect_value(other, cols, "1", "global read after another connection's ALTER TABLE");
    // CREATE + INSERT of an unsharded table (home shard), read at once.
    exec_ok(w, fmt::format("CREATE TABLE gc_plain_{} (id int)", i));
    exec_ok(w, fmt::format("INSERT INTO gc_plain_{} VALUES ({})", i, i));
    expect_value(w, fmt::format("SELECT id FROM gc_plain_{}", i), std::to_string(i), "session read of its new table");
    expect_value(other, fmt::format("SELECT id FROM gc_plain_{}", i), std::to_string(i),
                 "global read of another connection's new table");
    // A multi-row INSERT across shards (tenants 1000+i and 5000+i land apart for most i).
    exec_ok(w, fmt::format("INSERT INTO gc_wide (tenant_id, id) VALUES ({}, 1), ({}, 1), ({}, 1)", 1000 + i, 5000 + i,
                           9000 + i));
    for (long t : {1000L + i, 5000L + i, 9000L + i}) {
      const std::string q = fmt::format("SELECT count(*) FROM gc_wide WHERE tenant_id = {}", t);
      expect_value(w, q, "1", "session read after a multi-row INSERT");
      expect_value(other, q, "1", "global read after another connection's multi-row INSERT");
    }
    // A transaction through a held BEGIN.
    exec_ok(w, "BEGIN");
    exec_ok(w, fmt::format("UPDATE gc_items SET v = {} WHERE tenant_id = {}", 1000 + i, 7));
    exec_ok(w, "COMMIT");
    const std::string q7 = "SELECT v FROM gc_items WHERE tenant_id = 7";
    expect_value(w, q7, std::to_string(1000 + i), "session read after its transaction");
    expect_value(other, q7, std::to_string(1000 + i), "global read after another connection's transaction");
    // COPY of one tenant's rows (hinted: a single shard) and of several tenants (split).
    {
      PgResult r = w.exec(fmt::format("COPY gc_wide (tenant_id, id) FROM STDIN"));
      ASSERT_EQ(r.status(), PGRES_COPY_IN) << r.describe();
      const std::string rows = fmt::format("{}\t2\n{}\t2\n", 1000 + i, 5000 + i);
      ASSERT_EQ(PQputCopyData(w.get(), rows.data(), int(rows.size())), 1);
      ASSERT_EQ(PQputCopyEnd(w.get(), nullptr), 1);
      PgResult done(PQgetResult(w.get()));
      ASSERT_TRUE(done.ok()) << done.describe();
      while (PGresult* extra = PQgetResult(w.get())) PQclear(extra);
    }
    for (long t : {1000L + i, 5000L + i}) {
      const std::string q = fmt::format("SELECT count(*) FROM gc_wide WHERE tenant_id = {}", t);
      expect_value(w, q, "2", "session read after COPY");
      expect_value(other, q, "2", "global read after another connection's COPY");
    }
    // A tenant-less UPDATE on every shard.
    exec_ok(w, fmt::format("UPDATE gc_wide SET id = id + 10 WHERE id < 10 AND tenant_id >= {}", 1000 + i));
    const std::string moved = fmt::format("SELECT count(*) FROM gc_wide WHERE tenant_id = {} AND id > 10", 1000 + i);
    expect_value(w, moved, "2", "session read after a broadcast UPDATE");
    expect_value(other, moved, "2", "global read after another connection's broadcast UPDATE");
  }
  std::printf("write paths: %ld checks, %ld missed an acknowledged write\n", checks, misses);
  EXPECT_EQ(misses, 0);
  (void)session;
}

TEST_F(GlobalConsistency, StartupPacketChoosesTheLevel) {
  for (const char* level : {"strong", "global", "session", "eventual"}) {
    PgConnection c(proxy().conninfo() + fmt::format(" options='-c shardline.consistency={}'", level));
    ASSERT_TRUE(c.ok()) << c.error();
    EXPECT_EQ(c.value("SHOW shardline.consistency"), level);
    // It is the proxy's own setting: no server ever saw it.
    EXPECT_EQ(c.value("SELECT current_setting('shardline.consistency', true) IS NULL"), "t");
  }
  PgConnection bad(proxy().conninfo() + " options='-c shardline.consistency=sometimes'");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.connect_sqlstate(), "22023") << bad.error();
  // An eventual connection from the startup packet really reads the replica.
  PgConnection ev(proxy().conninfo() + " options='-c shardline.consistency=eventual'");
  bool replica = false;
  for (int i = 0; i < 50 && !replica; ++i)
    replica = on_replica(cluster(), std::stoi(ev.value("SELECT inet_server_port() FROM gc_items WHERE tenant_id = 3")));
  EXPECT_TRUE(replica) << "options=-c shardline.consistency=eventual never read the replica";
}

// Commit-LSN tracking off: no probe, yet global and session reads stay exact (they wait for a
// primary sample taken after the write was acknowledged).
TEST(GlobalConsistencyUntracked, ReadsStayExactWithoutCommitProbes) {
  LocalCluster& c = cluster();
  ProxyProcess p(ProxyConfig(c, free_port())
                     .sharded_table({.name = "gc_items"})
                     .replicas({.poll_interval_ms = 10, .track_commit_lsn = false})
                     .yaml());
  PgConnection w(p.conninfo());
  PgConnection other(p.conninfo());
  ASSERT_TRUE(w.ok() && other.ok()) << w.error() << other.error();
  exec_ok(w, "SET shardline.consistency = session");
  exec_ok(w, "CREATE TABLE IF NOT EXISTS gc_items (tenant_id bigint PRIMARY KEY, v bigint NOT NULL)");
  exec_ok(w, "DELETE FROM gc_items WHERE tenant_id = 11");
  exec_ok(w, "INSERT INTO gc_items (tenant_id, v) VALUES (11, 0)");
  long stale = 0, replica_reads = 0;
  constexpr int kRounds = 300;
  for (int i = 1; i <= kRounds; ++i) {
    exec_ok(w, fmt::format("UPDATE gc_items SET v = {} WHERE tenant_id = 11", 100000 + i));
    for (const PgConnection* r : {&w, &other}) {
      PgResult q = r->exec("SELECT v, inet_server_port() FROM gc_items WHERE tenant_id = 11");
      ASSERT_TRUE(q.ok()) << q.describe();
      if (std::stol(q.value(0, 0)) < 100000 + i) ++stale;
      if (on_replica(c, std::stoi(q.value(0, 1)))) ++replica_reads;
    }
  }
  std::printf("track_commit_lsn off: %d rounds, stale %ld, replica reads %ld of %d\n", kRounds, stale, replica_reads,
              2 * kRounds);
  EXPECT_EQ(stale, 0);
}

}  // namespace
