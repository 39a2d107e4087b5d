// Batches across shards with cross_shard_transactions: 2pc: drivers' executemany / JDBC batches /
// pipelines send many Bind/Execute pairs of one statement, each for another tenant, and one
// Sync. One PostgreSQL runs such a unit as one transaction; through the proxy each Bind goes to
// its key's shard and the unit is all-or-nothing across shards. PostgreSQL is the oracle: the
// same messages to a plain table (schema tb_oracle on shard 0, reached by search_path) must get
// the same replies, and the same rows must land (each on its key's shard through the proxy).
// COPY into a sharded table inside a 2pc transaction commits (or rolls back) with it.

#include <libpq-fe.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"
#include "tests/integration/support/raw_client.hpp"
#include "tests/integration/support/two_shard_tenants.hpp"

namespace {

using shardline::config::CrossShardTransactions;
using shardline::control::LocalCluster;
using shardline::testing::free_port;
using shardline::testing::must;
using shardline::testing::PgConnection;
using shardline::testing::PgResult;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using shardline::testing::RawClient;
using shardline::testing::ShardedTableSpec;
namespace raw = shardline::testing::raw;

constexpr int kShards = 2;
constexpr const char* kInsert = "INSERT INTO tb_rows VALUES ($1, $2, $3) RETURNING tenant_id, v";

LocalCluster& cluster() {
  shardline::testing::ClusterSpec spec;
  spec.shards = kShards;
  return shardline::testing::test_cluster(spec);
}

std::string yaml(CrossShardTransactions mode) {
  ProxyConfig c(cluster(), free_port());
  c.sharded_table(ShardedTableSpec{"tb_rows", "", "bigint"});
  c.cross_shard_transactions(mode);
  return c.yaml();
}

ProxyProcess& proxy() {
  static ProxyProcess p(yaml(CrossShardTransactions::TwoPhaseCommit));
  return p;
}

std::string proxy_conninfo(const ProxyProcess& p = proxy()) { return p.conninfo("app", "secret", "app"); }
/// Shard 0 directly, where `tb_rows` is the plain oracle table.
std::string oracle_conninfo() { return cluster().conninfo(0) + " options='-csearch_path=tb_oracle'"; }

PgConnection connect_shard(int i) {
  PgConnection c(cluster().conninfo(i));
  if (!c.ok()) throw std::runtime_error(fmt::format("cannot connect to shard {}: {}", i, c.error()));
  return c;
}

int shard_of(std::int64_t tenant) { return shardline::testing::two_shard_of(tenant); }
std::int64_t tenant_on(int shard, int skip = 0) { return shardline::testing::two_shard_tenant(shard, skip); }

std::int64_t next_txn() { return shardline::testing::next_run_id(); }

int count(const PgConnection& c, const std::string& table, std::int64_t txn) {
  return std::stoi(c.value(fmt::format("SELECT count(*) FROM {} WHERE txn = {}", table, txn)));
}
int rows_on(int shard, std::int64_t txn) { return count(connect_shard(shard), "public.tb_rows", txn); }
int oracle_rows(std::int64_t txn) { return count(connect_shard(0), "tb_oracle.tb_rows", txn); }
int prepared() {
  int n = 0;
  for (int s = 0; s < kShards; ++s)
    n += std::stoi(connect_shard(s).value("SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'shardline:%'"));
  return n;
}

struct Row {
  std::int64_t tenant;
  std::string v;
};

/// Bind/Describe/Execute of `statement` for each row (psycopg's, JDBC's and asyncpg's batch).
std::string batch(std::string_view statement, const std::vector<Row>& rows, std::int64_t txn) {
  std::string out;
  for (const auto& r : rows)
    out += raw::bind("", statement, {std::to_string(r.tenant), std::to_string(txn), r.v}) + raw::describe('P', "") +
           raw::execute("");
  return out;
}

/// Rows alternating between the shards.
std::vector<Row> across(int n) {
  std::vector<Row> rows;
  for (int i = 0; i < n; ++i) rows.push_back({tenant_on(i % kShards, i / kShards), fmt::format("r{}", i)});
  return rows;
}

/// Sends each request in turn to the oracle and through the proxy; the replies' summaries must
/// agree request by request. `txn` names the rows of this run in both places.
void same_replies(const std::vector<std::string>& requests, RawClient& direct, RawClient& through) {
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const std::string want = RawClient::summary(direct.round_trip(requests[i]));
    EXPECT_EQ(RawClient::summary(through.round_trip(requests[i])), want) << "request " << i;
  }
}

class TwopcBatch : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string table =
        "(tenant_id bigint NOT NULL, txn bigint NOT NULL, v text, UNIQUE (tenant_id, txn))";
    // A row with v = 'fail at prepare' makes COMMIT (and so PREPARE TRANSACTION) fail.
    const std::string check =
        "CREATE OR REPLACE FUNCTION public.tb_check() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.v = 'fail at prepare' THEN RAISE EXCEPTION 'deferred check failed for txn %', NEW.txn; END IF; "
        "RETURN NULL; END $$";
    for (int s = 0; s < kShards; ++s) {
      PgConnection c = connect_shard(s);
      must(c, "DROP TABLE IF EXISTS public.tb_rows");
      must(c, "CREATE TABLE public.tb_rows " + table);
      must(c, check);
      must(c, "CREATE CONSTRAINT TRIGGER tb_check AFTER INSERT ON public.tb_rows DEFERRABLE INITIALLY DEFERRED "
              "FOR EACH ROW EXECUTE FUNCTION public.tb_check()");
    }
    PgConnection o = connect_shard(0);
    must(o, "DROP SCHEMA IF EXISTS tb_oracle CASCADE");
    must(o, "CREATE SCHEMA tb_oracle");
    must(o, "CREATE TABLE tb_oracle.tb_rows " + table);
    must(o, "CREATE CONSTRAINT TRIGGER tb_check AFTER INSERT ON tb_oracle.tb_rows DEFERRABLE INITIALLY DEFERRED "
            "FOR EACH ROW EXECUTE FUNCTION public.tb_check()");
    proxy();
  }
};

TEST_F(TwopcBatch, AutocommitBatchAnswersAsPostgres) {
  RawClient direct(oracle_conninfo()), through(proxy_conninfo());
  const auto txn = next_txn();
  const auto rows = across(6);
  // psycopg's and JDBC's shape (the unnamed statement parsed once, then Bind/Describe/Execute
  // per row), and asyncpg's (a named statement prepared in a unit of its own).
  same_replies({raw::parse("", kInsert) + batch("", rows, txn) + raw::sync()}, direct, through);
  EXPECT_EQ(oracle_rows(txn), 6);
  EXPECT_EQ(rows_on(0, txn), 3);
  EXPECT_EQ(rows_on(1, txn), 3);
  const auto txn2 = next_txn();
  same_replies({raw::parse("ins", kInsert) + raw::describe('S', "ins") + raw::sync(),
                batch("ins", rows, txn2) + raw::sync(), raw::query("SELECT 1")},
               direct, through);
  EXPECT_EQ(rows_on(0, txn2), 3);
  EXPECT_EQ(rows_on(1, txn2), 3);
  EXPECT_EQ(prepared(), 0);
}

TEST_F(TwopcBatch, ErrorInTheMiddleRollsBackEveryShard) {
  RawClient direct(oracle_conninfo()), through(proxy_conninfo());
  const auto txn = next_txn();
  const std::int64_t taken = tenant_on(1, 7);
  direct.round_trip(raw::query(fmt::format("INSERT INTO tb_rows VALUES ({}, {}, 'before')", taken, txn)));
  through.round_trip(raw::query(fmt::format("INSERT INTO tb_rows VALUES ({}, {}, 'before')", taken, txn)));
  std::vector<Row> rows = across(4);
  rows.push_back({taken, "duplicate"});  // 23505 in the 5th Execute: the rest is skipped
  for (const auto& r : across(4)) rows.push_back({r.tenant + 1000000, r.v});
  same_replies({raw::parse("", kInsert) + batch("", rows, txn) + raw::sync(), raw::query("SELECT 2")}, direct,
               through);
  EXPECT_EQ(oracle_rows(txn), 1);
  EXPECT_EQ(rows_on(0, txn), 0);
  EXPECT_EQ(rows_on(1, txn), 1);  // only the row committed before
  EXPECT_EQ(prepared(), 0);
}

TEST_F(TwopcBatch, FailedPrepareAtSyncRollsBackEveryShard) {
  RawClient direct(oracle_conninfo()), through(proxy_conninfo());
  const auto txn = next_txn();
  std::vector<Row> rows = across(4);
  rows.push_back({tenant_on(1, 9), "fail at prepare"});  // the deferred check fails at the commit
  same_replies({raw::parse("", kInsert) + batch("", rows, txn) + raw::sync()}, direct, through);
  EXPECT_EQ(oracle_rows(txn), 0);
  EXPECT_EQ(rows_on(0, txn) + rows_on(1, txn), 0);
  EXPECT_EQ(prepared(), 0);
}

TEST_F(TwopcBatch, BatchInsideATransaction) {
  RawClient direct(oracle_conninfo()), through(proxy_conninfo());
  const auto txn = next_txn();
  same_replies({raw::query("BEGIN"), raw::parse("", kInsert) + batch("", across(5), txn) + raw::sync(),
                raw::query(fmt::format("SELECT count(*) FROM tb_rows WHERE txn = {}", txn)), raw::query("COMMIT")},
               direct, through);
  EXPECT_EQ(rows_on(0, txn), 3);
  EXPECT_EQ(rows_on(1, txn), 2);
  // An error in the batch fails the transaction (25P02 after it); ROLLBACK leaves nothing.
  const auto txn2 = next_txn();
  std::vector<Row> rows = across(3);
  rows.push_back(rows[0]);
  same_replies({raw::query("BEGIN"), raw::parse("", kInsert) + batch("", rows, txn2) + raw::sync(),
                raw::query("SELECT 1"), raw::query("ROLLBACK")},
               direct, through);
  EXPECT_EQ(oracle_rows(txn2), 0);
  EXPECT_EQ(rows_on(0, txn2) + rows_on(1, txn2), 0);
}

TEST_F(TwopcBatch, BeginInsideTheBatchKeepsTheTransactionOpen) {
  // psycopg 3 outside autocommit: BEGIN is the pipeline's first statement, before one Sync.
  RawClient direct(oracle_conninfo()), through(proxy_conninfo());
  const auto txn = next_txn();
  const std::string begin = raw::parse("", "BEGIN ISOLATION LEVEL REPEATABLE READ") + raw::bind("", "") +
                            raw::describe('P', "") + raw::execute("");
  same_replies({begin + raw::parse("", kInsert) + batch("", across(4), txn) + raw::sync(),
                raw::query(fmt::format("SELECT current_setting('transaction_isolation') FROM tb_rows WHERE txn = {} "
                                       "AND tenant_id = {}",
                                       txn, tenant_on(1, 1))),
                raw::query("COMMIT")},
               direct, through);
  EXPECT_EQ(rows_on(0, txn), 2);
  EXPECT_EQ(rows_on(1, txn), 2);
  EXPECT_EQ(prepared(), 0);
}

TEST_F(TwopcBatch, LargeBatchRoutesEveryBind) {
  // Far more than one read of client input: Binds past the proxy's lookahead are routed too.
  RawClient direct(oracle_conninfo()), through(proxy_conninfo());
  const auto txn = next_txn();
  std::vector<Row> rows;
  int expect[kShards] = {0, 0};
  for (int i = 0; i < 400; ++i) {
    const std::int64_t tenant = 1 + (i * 7919) % 100003;
    rows.push_back({tenant, fmt::format("row {} of a large batch", i)});
    ++expect[shard_of(tenant)];
  }
  same_replies({raw::parse("big", kInsert) + raw::sync(), batch("big", rows, txn) + raw::sync()}, direct, through);
  EXPECT_EQ(oracle_rows(txn), 400);
  EXPECT_EQ(rows_on(0, txn), expect[0]);
  EXPECT_EQ(rows_on(1, txn), expect[1]);
  EXPECT_GT(expect[0] * expect[1], 0);
}

/// A libpq pipeline: PQsendPrepare, PQsendQueryPrepared per row, one PQpipelineSync. Returns
/// each result's status and command tag.
std::vector<std::string> libpq_pipeline(const std::string& conninfo, const std::vector<Row>& rows, std::int64_t txn) {
  PgConnection c(conninfo);
  EXPECT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(PQenterPipelineMode(c.get()), 1);
  EXPECT_EQ(PQsendPrepare(c.get(), "pins", kInsert, 3, nullptr), 1);
  std::vector<std::string> values;
  for (const auto& r : rows) values.insert(values.end(), {std::to_string(r.tenant), std::to_string(txn), r.v});
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const char* params[] = {values[3 * i].c_str(), values[3 * i + 1].c_str(), values[3 * i + 2].c_str()};
    EXPECT_EQ(PQsendQueryPrepared(c.get(), "pins", 3, params, nullptr, nullptr, 0), 1);
  }
  EXPECT_EQ(PQpipelineSync(c.get()), 1);
  std::vector<std::string> got;
  for (std::size_t results = 0; results < rows.size() + 2;) {
    PgResult r(PQgetResult(c.get()));
    if (!r) continue;  // the end of one query's results
    ++results;
    got.push_back(fmt::format("{} {} {}", PQresStatus(r.status()), PQcmdStatus(r.get()), r.sqlstate()));
    if (r.status() == PGRES_PIPELINE_SYNC) break;
  }
  EXPECT_EQ(PQexitPipelineMode(c.get()), 1);
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_IDLE);
  return got;
}

TEST_F(TwopcBatch, LibpqPipelineAnswersAsPostgres) {
  const auto txn = next_txn();
  const auto rows = across(8);
  const auto want = libpq_pipeline(oracle_conninfo(), rows, txn);
  EXPECT_EQ(libpq_pipeline(proxy_conninfo(), rows, txn), want);
  EXPECT_EQ(rows_on(0, txn), 4);
  EXPECT_EQ(rows_on(1, txn), 4);
  // With an error in the middle: the same results, nothing left on either shard.
  const auto txn2 = next_txn();
  std::vector<Row> bad = across(6);
  bad.insert(bad.begin() + 3, bad[1]);
  const auto want2 = libpq_pipeline(oracle_conninfo(), bad, txn2);
  EXPECT_EQ(libpq_pipeline(proxy_conninfo(), bad, txn2), want2);
  EXPECT_EQ(rows_on(0, txn2) + rows_on(1, txn2), 0);
}

TEST_F(TwopcBatch, DenyRefusesNamingTheSetting) {
  ProxyProcess deny(yaml(CrossShardTransactions::Deny));
  RawClient c(proxy_conninfo(deny));
  const auto txn = next_txn();
  auto check = [&](const std::vector<Row>& rows) {
    const auto replies = c.round_trip(raw::parse("", kInsert) + batch("", rows, txn) + raw::sync());
    int errors = 0;
    for (const auto& m : replies)
      if (m.tag == 'E') {
        ++errors;
        EXPECT_EQ(m.sqlstate(), "0A000");
        EXPECT_NE(m.message().find("cross_shard_transactions: 2pc"), std::string::npos) << m.message();
      }
    EXPECT_EQ(errors, 1) << RawClient::summary(replies);
    EXPECT_EQ(replies.back().status(), 'I');
    EXPECT_EQ(rows_on(0, txn) + rows_on(1, txn), 0);
  };
  check(across(4));  // refused before anything runs
  // Shard 1 first appears far past the lookahead: refused at that Bind, the rows before it
  // rolled back with the unit.
  std::vector<Row> rows;
  for (int i = 0; i < 120; ++i) rows.push_back({tenant_on(0, i), fmt::format("row {} on shard 0 only", i)});
  rows.push_back({tenant_on(1), "shard 1"});
  check(rows);
}

/// COPY ... FROM STDIN of `data`; the COPY's result.
PgResult copy_in(const PgConnection& c, const std::string& sql, const std::string& data) {
  PgResult start(PQexec(c.get(), sql.c_str()));
  if (start.status() != PGRES_COPY_IN) return start;
  EXPECT_EQ(PQputCopyData(c.get(), data.data(), int(data.size())), 1);
  EXPECT_EQ(PQputCopyEnd(c.get(), nullptr), 1);
  PgResult result(PQgetResult(c.get()));
  while (PGresult* extra = PQgetResult(c.get())) PQclear(extra);
  return result;
}

std::string copy_rows(const std::vector<Row>& rows, std::int64_t txn) {
  std::string data;
  for (const auto& r : rows) data += fmt::format("{}\t{}\t{}\n", r.tenant, txn, r.v);
  return data;
}

TEST_F(TwopcBatch, CopyInsideATransactionCommitsWithIt) {
  PgConnection c(proxy_conninfo());
  ASSERT_TRUE(c.ok()) << c.error();
  const auto txn = next_txn();
  must(c, "BEGIN");
  must(c, fmt::format("INSERT INTO tb_rows VALUES ({}, {}, 'first')", tenant_on(0, 20), txn));
  const PgResult r = copy_in(c, "COPY tb_rows FROM STDIN", copy_rows(across(6), txn));
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_STREQ(PQcmdStatus(r.get()), "COPY 6");
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_INTRANS);
  EXPECT_EQ(c.value(fmt::format("SELECT count(*) FROM tb_rows WHERE txn = {}", txn)), "7");
  EXPECT_EQ(rows_on(0, txn) + rows_on(1, txn), 0) << "uncommitted rows are visible outside";
  must(c, "COMMIT");
  EXPECT_EQ(rows_on(0, txn), 4);
  EXPECT_EQ(rows_on(1, txn), 3);
  // ROLLBACK takes the COPY back on every shard.
  const auto txn2 = next_txn();
  must(c, "BEGIN");
  ASSERT_TRUE(copy_in(c, "COPY tb_rows FROM STDIN", copy_rows(across(4), txn2)).ok());
  must(c, "ROLLBACK");
  EXPECT_EQ(rows_on(0, txn2) + rows_on(1, txn2), 0);
  EXPECT_EQ(prepared(), 0);
}

TEST_F(TwopcBatch, FailedCopyFailsTheTransaction) {
  PgConnection c(proxy_conninfo());
  const auto txn = next_txn();
  must(c, "BEGIN");
  must(c, fmt::format("INSERT INTO tb_rows VALUES ({}, {}, 'first')", tenant_on(1, 20), txn));
  std::string data = copy_rows(across(4), txn) + fmt::format("not-a-number\t{}\tbad\n", txn);
  const PgResult r = copy_in(c, "COPY tb_rows FROM STDIN", data);
  EXPECT_EQ(r.sqlstate(), "22P02") << r.describe();
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_INERROR);
  EXPECT_EQ(c.exec("SELECT 1").sqlstate(), "25P02");
  must(c, "ROLLBACK");
  EXPECT_EQ(rows_on(0, txn) + rows_on(1, txn), 0);
  // An autocommit COPY across shards is atomic too: a failed PREPARE leaves no row anywhere.
  const auto txn2 = next_txn();
  std::vector<Row> rows = across(4);
  rows.push_back({tenant_on(1, 21), "fail at prepare"});
  const PgResult a = copy_in(c, "COPY tb_rows FROM STDIN", copy_rows(rows, txn2));
  EXPECT_EQ(a.sqlstate(), "P0001") << a.describe();
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_IDLE);
  EXPECT_EQ(rows_on(0, txn2) + rows_on(1, txn2), 0);
  EXPECT_EQ(prepared(), 0);
}

}  // namespace
