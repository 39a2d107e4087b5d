// Transactions across shards with cross_shard_transactions: 2pc (SPEC sections 3 and 5), as a
// libpq client sees them, checked on each shard's primary directly: a transaction on two shards
// commits both rows or neither (ROLLBACK, a statement error, a PREPARE that fails on the second
// shard, a client that leaves); one statement on several shards is atomic; the resolver finishes
// prepared transactions from shardline.twopc_log and respects a live owner.

#include <libpq-fe.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"
#include "tests/integration/support/raw_client.hpp"
#include "tests/integration/support/two_shard_tenants.hpp"

namespace {

using namespace std::chrono_literals;
using shardline::config::CrossShardTransactions;
using shardline::control::LocalCluster;
using shardline::testing::free_port;
using shardline::testing::must;
using shardline::testing::PgConnection;
using shardline::testing::PgResult;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using shardline::testing::RawClient;
namespace raw = shardline::testing::raw;
using shardline::testing::ShardedTableSpec;
using Clock = std::chrono::steady_clock;

constexpr int kShards = 2;

LocalCluster& cluster() {
  shardline::testing::ClusterSpec spec;
  spec.shards = kShards;
  return shardline::testing::test_cluster(spec);
}

std::string yaml(CrossShardTransactions mode) {
  ProxyConfig c(cluster(), free_port());
  c.sharded_table(ShardedTableSpec{"tp_rows", "", "bigint"});
  c.cross_shard_transactions(mode);
  return c.yaml();
}

ProxyProcess& proxy() {
  static ProxyProcess p(yaml(CrossShardTransactions::TwoPhaseCommit));
  return p;
}

PgConnection connect(const ProxyProcess& p = proxy(), const std::string& db = "app") {
  PgConnection c(p.conninfo("app", "secret", db) + " sslmode=disable gssencmode=disable connect_timeout=5");
  if (!c.ok()) throw std::runtime_error("cannot connect to the proxy: " + c.error());
  return c;
}

PgConnection connect_shard(int i) {
  PgConnection c(cluster().conninfo(i));
  if (!c.ok()) throw std::runtime_error(fmt::format("cannot connect to shard {}: {}", i, c.error()));
  return c;
}

std::int64_t tenant_on(int shard, int skip = 0) { return shardline::testing::two_shard_tenant(shard, skip); }

std::string sqlstate(const PgResult& r) {
  const char* s = r ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
  return s ? s : "";
}

/// Rows of tp_rows with `txn` on shard `i`.
int rows_on(int i, std::int64_t txn) {
  return std::stoi(connect_shard(i).value(fmt::format("SELECT count(*) FROM tp_rows WHERE txn = {}", txn)));
}

int prepared_on(int i) {
  return std::stoi(connect_shard(i).value("SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'shardline:%'"));
}

/// One multi-row INSERT of a row on each shard (split by the proxy).
std::string insert_both(std::int64_t txn) {
  return fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'a'), ({}, {}, 'b')", tenant_on(0), txn, tenant_on(1), txn);
}

std::int64_t next_txn() { return shardline::testing::next_run_id(); }

class TwoPhaseCommit : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (int s = 0; s < kShards; ++s) {
      PgConnection c = connect_shard(s);
      must(c, "DROP TABLE IF EXISTS tp_rows");
      must(c, "CREATE TABLE tp_rows (tenant_id bigint NOT NULL, txn bigint NOT NULL, v text, UNIQUE (tenant_id, txn))");
      // A row with v = 'fail at prepare' makes COMMIT (and so PREPARE TRANSACTION) fail there.
      must(c,
           "CREATE OR REPLACE FUNCTION tp_check() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
           "IF NEW.v = 'fail at prepare' THEN RAISE EXCEPTION 'deferred check failed for txn %', NEW.txn; END IF; "
           "RETURN NULL; END $$");
      must(c,
           "CREATE CONSTRAINT TRIGGER tp_check AFTER INSERT ON tp_rows DEFERRABLE INITIALLY DEFERRED "
           "FOR EACH ROW EXECUTE FUNCTION tp_check()");
    }
    proxy();
  }
};

TEST_F(TwoPhaseCommit, TwoShardTransactionCommitsBothRows) {
  PgConnection c = connect();
  const auto txn = next_txn();
  must(c, "BEGIN ISOLATION LEVEL REPEATABLE READ");
  must(c, fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'a')", tenant_on(0), txn));
  must(c, fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'b')", tenant_on(1), txn));
  // The second shard runs the client's isolation level, and a scatter read sees both writes.
  EXPECT_EQ(c.value(fmt::format("SELECT current_setting('transaction_isolation') FROM tp_rows WHERE tenant_id = {} "
                                "AND txn = {}", tenant_on(1), txn)),
            "repeatable read");
  EXPECT_EQ(c.value(fmt::format("SELECT count(*) FROM tp_rows WHERE txn = {}", txn)), "2");
  EXPECT_EQ(rows_on(0, txn) + rows_on(1, txn), 0) << "uncommitted rows are visible outside";
  const PgResult r = c.exec("COMMIT");
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_STREQ(PQcmdStatus(r.get()), "COMMIT");
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_IDLE);
  EXPECT_EQ(rows_on(0, txn), 1);
  EXPECT_EQ(rows_on(1, txn), 1);
  EXPECT_EQ(prepared_on(0) + prepared_on(1), 0);
  // The decision row is trimmed once both shards committed.
  const auto start = Clock::now();
  std::string left;
  while (Clock::now() - start < 10s) {
    left = connect_shard(0).value("SELECT count(*) FROM shardline.twopc_log");
    if (left == "0") break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(left, "0");
}

TEST_F(TwoPhaseCommit, SingleShardTransactionCommitsPlainly) {
  PgConnection c = connect();
  const auto txn = next_txn();
  must(c, "BEGIN");
  must(c, fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'a')", tenant_on(0), txn));
  must(c, fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'b')", tenant_on(0, 1), txn));
  must(c, "COMMIT");
  EXPECT_EQ(rows_on(0, txn), 2);
}

TEST_F(TwoPhaseCommit, RollbackLeavesNeither) {
  PgConnection c = connect();
  const auto txn = next_txn();
  must(c, "BEGIN");
  must(c, fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'a')", tenant_on(0), txn));
  must(c, fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'b')", tenant_on(1), txn));
  const PgResult r = c.exec("ROLLBACK");
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_STREQ(PQcmdStatus(r.get()), "ROLLBACK");
  EXPECT_EQ(rows_on(0, txn) + rows_on(1, txn), 0);
  EXPECT_EQ(c.value("SELECT 1"), "1");  // the session goes on
}

TEST_F(TwoPhaseCommit, StatementErrorOnSecondShardLeavesNeither) {
  PgConnection c = connect();
  const auto txn = next_txn();
  must(c, fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'before')", tenant_on(1), txn));
  must(c, "BEGIN");
  must(c, fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'a')", tenant_on(0), txn));
  const PgResult dup = c.exec(fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'b')", tenant_on(1), txn));
  EXPECT_EQ(sqlstate(dup), "23505") << dup.describe();
  const PgResult after = c.exec(fmt::format("SELECT * FROM tp_rows WHERE tenant_id = {}", tenant_on(0)));
  EXPECT_EQ(sqlstate(after), "25P02") << after.describe();
  const PgResult end = c.exec("COMMIT");
  EXPECT_STREQ(PQcmdStatus(end.get()), "ROLLBACK");
  EXPECT_EQ(rows_on(0, txn), 0);
  EXPECT_EQ(rows_on(1, txn), 1);  // only the row committed before
}

TEST_F(TwoPhaseCommit, PrepareFailureOnSecondShardLeavesNeither) {
  PgConnection c = connect();
  const auto txn = next_txn();
  must(c, "BEGIN");
  must(c, fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'a')", tenant_on(0), txn));
  must(c, fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'fail at prepare')", tenant_on(1), txn));
  const PgResult r = c.exec("COMMIT");
  EXPECT_EQ(r.status(), PGRES_FATAL_ERROR);
  EXPECT_EQ(sqlstate(r), "P0001") << r.describe();
  const char* d = PQresultErrorField(r.get(), PG_DIAG_MESSAGE_DETAIL);
  EXPECT_NE(std::string(d ? d : "").find("on shard s1"), std::string::npos) << r.describe();
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_IDLE);
  EXPECT_EQ(rows_on(0, txn) + rows_on(1, txn), 0);
  EXPECT_EQ(prepared_on(0) + prepared_on(1), 0);
}

TEST_F(TwoPhaseCommit, DroppedClientLeavesNeither) {
  const auto txn = next_txn();
  {
    PgConnection c = connect();
    must(c, "BEGIN");
    must(c, fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'a')", tenant_on(0), txn));
    must(c, fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'b')", tenant_on(1), txn));
  }  // the client leaves mid-transaction
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(rows_on(0, txn) + rows_on(1, txn), 0);
  // The shards' locks went with the transactions: the same keys insert at once.
  PgConnection c = connect();
  must(c, "SET statement_timeout = '5s'");
  must(c, insert_both(txn));
  EXPECT_EQ(rows_on(0, txn) + rows_on(1, txn), 2);
}

TEST_F(TwoPhaseCommit, MultiShardStatementsInsideTheTransaction) {
  PgConnection c = connect();
  const auto txn = next_txn();
  must(c, "BEGIN");
  // A split INSERT and a scatter read inside the transaction, then ROLLBACK: nothing stays.
  must(c, insert_both(txn));
  EXPECT_EQ(c.value(fmt::format("SELECT count(*) FROM tp_rows WHERE txn = {}", txn)), "2");
  must(c, fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'c')", tenant_on(1, 1), txn));
  EXPECT_EQ(c.value(fmt::format("SELECT count(*) FROM tp_rows WHERE txn = {}", txn)), "3");
  must(c, "ROLLBACK");
  EXPECT_EQ(rows_on(0, txn) + rows_on(1, txn), 0);
  // The same as a committed transaction.
  must(c, "BEGIN");
  must(c, insert_both(txn));
  must(c, "COMMIT");
  EXPECT_EQ(rows_on(0, txn), 1);
  EXPECT_EQ(rows_on(1, txn), 1);
}

TEST_F(TwoPhaseCommit, ExtendedProtocolCommitAnswersAsPostgres) {
  // JDBC's way: COMMIT as Parse/Bind/Describe/Execute/Sync. PostgreSQL (a shard, directly) is
  // the oracle for the replies; through the proxy the transaction spans both shards.
  const std::string commit = raw::parse("", "COMMIT") + raw::bind("", "") + raw::describe('P', "") + raw::execute("") +
                             raw::sync();
  auto run = [&](RawClient& c, bool two_shards) {
    const auto txn = next_txn();
    c.round_trip(raw::query("BEGIN"));
    c.round_trip(raw::query(fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'a')", tenant_on(0), txn)));
    if (two_shards) c.round_trip(raw::query(fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'b')", tenant_on(1), txn)));
    const std::string got = RawClient::summary(c.round_trip(commit));
    EXPECT_EQ(rows_on(0, txn), 1);
    if (two_shards) {
      EXPECT_EQ(rows_on(1, txn), 1);
    }
    return got;
  };
  RawClient direct(cluster().conninfo(0));
  RawClient through(proxy().conninfo("app", "secret", "app"));
  const std::string want = run(direct, false);
  EXPECT_EQ(run(through, true), want);
  // ROLLBACK the same way leaves neither row.
  const auto txn = next_txn();
  through.round_trip(raw::query("BEGIN"));
  through.round_trip(raw::query(insert_both(txn)));
  const std::string rb = RawClient::summary(
      through.round_trip(raw::parse("", "ROLLBACK") + raw::bind("", "") + raw::execute("") + raw::sync()));
  EXPECT_NE(rb.find("ROLLBACK"), std::string::npos) << rb;
  EXPECT_EQ(rows_on(0, txn) + rows_on(1, txn), 0);
}

TEST_F(TwoPhaseCommit, AutocommitMultiShardWriteIsAtomic) {
  PgConnection c = connect();
  const auto txn = next_txn();
  const PgResult r = c.exec(fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'a'), ({}, {}, 'fail at prepare')",
                                        tenant_on(0), txn, tenant_on(1), txn));
  EXPECT_EQ(sqlstate(r), "P0001") << r.describe();
  EXPECT_EQ(rows_on(0, txn) + rows_on(1, txn), 0);
  must(c, insert_both(txn));
  EXPECT_EQ(rows_on(0, txn) + rows_on(1, txn), 2);
}

TEST_F(TwoPhaseCommit, SavepointsAndClientPrepareAreRefused) {
  PgConnection c = connect();
  const auto txn = next_txn();
  must(c, "BEGIN");
  must(c, "SAVEPOINT before_any");  // one shard so far: savepoints work as on PostgreSQL
  must(c, fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'a')", tenant_on(0), txn));
  must(c, fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'b')", tenant_on(1), txn));
  const PgResult sp = c.exec("SAVEPOINT later");
  EXPECT_EQ(sqlstate(sp), "0A000") << sp.describe();
  EXPECT_EQ(sqlstate(c.exec("SELECT 1")), "25P02");
  must(c, "ROLLBACK");
  EXPECT_EQ(rows_on(0, txn) + rows_on(1, txn), 0);
  must(c, "BEGIN");
  must(c, fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'a')", tenant_on(0), txn));
  const PgResult prep = c.exec("PREPARE TRANSACTION 'mine'");
  EXPECT_EQ(sqlstate(prep), "0A000") << prep.describe();
  must(c, "ROLLBACK");
}

TEST_F(TwoPhaseCommit, DenyRefusesNamingTheSetting) {
  ProxyProcess deny(yaml(CrossShardTransactions::Deny));
  PgConnection c = connect(deny);
  must(c, "BEGIN");
  must(c, fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'a')", tenant_on(0), next_txn()));
  const PgResult r = c.exec(fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'b')", tenant_on(1), next_txn()));
  EXPECT_EQ(sqlstate(r), "0A000");
  EXPECT_NE(r.describe().find("cross_shard_transactions is deny"), std::string::npos) << r.describe();
  must(c, "ROLLBACK");
}

TEST_F(TwoPhaseCommit, ResolverFinishesFromTheLogAndRespectsLiveOwners) {
  // Prepared transactions as a crashed coordinator leaves them, by hand on the shards.
  const auto txn = next_txn();
  auto prepare = [&](int shard, const std::string& gid, std::int64_t tenant) {
    PgConnection s = connect_shard(shard);
    must(s, "BEGIN");
    must(s, fmt::format("INSERT INTO tp_rows VALUES ({}, {}, 'resolver')", tenant, txn));
    must(s, fmt::format("PREPARE TRANSACTION '{}'", gid));
  };
  PgConnection cat = connect_shard(0);
  // A live owner (fresh heartbeat; not on this host's process table: pid 0) with no decision.
  must(cat, "INSERT INTO shardline.twopc_owners (owner, host, pid) VALUES ('alive:1', 'elsewhere', 0) "
            "ON CONFLICT (owner) DO UPDATE SET heartbeat = now()");
  prepare(0, "shardline:alive:1:1", tenant_on(0, 2));
  prepare(1, "shardline:alive:1:1", tenant_on(1, 2));
  // A dead owner without a decision: rolled back. One with a commit decision: committed.
  prepare(0, "shardline:dead:1:1", tenant_on(0, 3));
  prepare(0, "shardline:dead:1:2", tenant_on(0, 4));
  prepare(1, "shardline:dead:1:2", tenant_on(1, 4));
  must(cat, "INSERT INTO shardline.twopc_log (gid, shards, state, owner) VALUES "
            "('shardline:dead:1:2', '{s0,s1}', 'committing', 'dead:1')");
  auto gone = [&](const std::string& gid) {
    return connect_shard(0).value(fmt::format("SELECT count(*) FROM pg_prepared_xacts WHERE gid = '{}'", gid)) == "0" &&
           connect_shard(1).value(fmt::format("SELECT count(*) FROM pg_prepared_xacts WHERE gid = '{}'", gid)) == "0";
  };
  const auto start = Clock::now();
  while (Clock::now() - start < 15s && !(gone("shardline:dead:1:1") && gone("shardline:dead:1:2")))
    std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(gone("shardline:dead:1:1"));
  EXPECT_TRUE(gone("shardline:dead:1:2"));
  EXPECT_EQ(rows_on(0, txn), 1);  // dead:1:2's row on s0 (dead:1:1's was rolled back)
  EXPECT_EQ(rows_on(1, txn), 1);  // dead:1:2's row on s1
  // The live owner's transaction is still in doubt, listed by SHOW TRANSACTIONS.
  EXPECT_FALSE(gone("shardline:alive:1:1"));
  PgConnection admin = connect(proxy(), "shardline");
  const PgResult shown = admin.exec("SHOW TRANSACTIONS");
  ASSERT_TRUE(shown.ok()) << shown.describe();
  int listed = 0;
  for (int i = 0; i < shown.rows(); ++i)
    if (shown.value(i, 0) == "shardline:alive:1:1") {
      ++listed;
      EXPECT_EQ(shown.value(i, 1), "alive:1");
      EXPECT_EQ(shown.value(i, 4), "none");
    }
  EXPECT_EQ(listed, 2);
  // Its owner's decision arrives: the resolver commits it on both shards.
  must(cat, "INSERT INTO shardline.twopc_log (gid, shards, state, owner) VALUES "
            "('shardline:alive:1:1', '{s0,s1}', 'committing', 'alive:1')");
  const auto start2 = Clock::now();
  while (Clock::now() - start2 < 10s && !gone("shardline:alive:1:1")) std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(gone("shardline:alive:1:1"));
  EXPECT_EQ(rows_on(0, txn), 2);
  EXPECT_EQ(rows_on(1, txn), 2);
  must(cat, "DELETE FROM shardline.twopc_owners WHERE owner = 'alive:1'");
}

}  // namespace
