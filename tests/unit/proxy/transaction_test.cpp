// The client's transaction as the proxy keeps it, transition by transition: held BEGIN and its
// savepoints, binding to a shard, failure, SETs inside it, what it wrote, and the shards taking
// part. Statements come from the real parser, replies are the statuses a server sends.

#include "proxy/session/transaction.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <string>

#include "config/loader.hpp"
#include "router/parser/statement.hpp"

namespace shardline::proxy::session {
namespace {

/// Parsed statements; Statement::text views into the SQL, kept alive here.
class Statements {
 public:
  const router::Statement& operator()(const std::string& sql) {
    auto& text = sql_.emplace_back(sql);
    auto a = router::analyze(text);
    EXPECT_EQ(a.statements.size(), 1u) << sql;
    return parsed_.emplace_back(std::move(a.statements.at(0)));
  }

 private:
  std::deque<std::string> sql_;
  std::deque<router::Statement> parsed_;
};

constexpr std::uint64_t kEpoch = 7;

class TransactionTest : public ::testing::Test {
 protected:
  Transaction tx{true};  // transaction pooling
  Statements st;

  Transaction::LocalAnswer local(const std::string& sql) {
    auto a = tx.answer_locally(st(sql), kEpoch);
    EXPECT_TRUE(a.has_value()) << sql;
    return a.value_or(Transaction::LocalAnswer{});
  }
};

TEST_F(TransactionTest, BeginIsHeldThenBoundToTheShardOfTheFirstStatement) {
  EXPECT_FALSE(tx.open());
  auto a = local("BEGIN");
  EXPECT_EQ(a.tag, "BEGIN");
  EXPECT_EQ(a.status, 'T');
  EXPECT_FALSE(a.already_open);
  EXPECT_TRUE(tx.held());
  EXPECT_TRUE(tx.open());
  EXPECT_EQ(tx.status(), 'T');
  EXPECT_EQ(tx.server_status(), 'I');  // no server has it yet
  EXPECT_EQ(tx.held_sql(), "BEGIN;");
  EXPECT_EQ(tx.epoch(), kEpoch);
  EXPECT_TRUE(tx.participants().empty());
  // A statement that is not transaction control goes to a server.
  EXPECT_FALSE(tx.local_answer(st("SELECT 1")));

  tx.bind(Participant{1, -1}, false);
  EXPECT_FALSE(tx.held());
  EXPECT_TRUE(tx.open());
  EXPECT_EQ(tx.server_status(), 'T');
  EXPECT_EQ(tx.held_sql(), "");
  ASSERT_EQ(tx.participants().size(), 1u);
  EXPECT_EQ(tx.participants()[0], (Participant{1, -1}));
  // Bound: transaction control goes to the server now.
  EXPECT_FALSE(tx.local_answer(st("COMMIT")));
  EXPECT_FALSE(tx.local_answer(st("SAVEPOINT a")));
  EXPECT_FALSE(tx.local_answer(st("BEGIN")));

  tx.ready_for_query('T', Participant{1, -1}, kEpoch + 1);
  EXPECT_EQ(tx.participants().size(), 1u);
  EXPECT_EQ(tx.epoch(), kEpoch);  // where it started, not where it is now
  tx.ready_for_query('I', Participant{1, -1}, kEpoch + 1);
  EXPECT_FALSE(tx.open());
  EXPECT_TRUE(tx.participants().empty());
}

TEST_F(TransactionTest, StartTransactionIsHeldLikeBegin) {
  auto a = local("START TRANSACTION ISOLATION LEVEL SERIALIZABLE");
  EXPECT_EQ(a.tag, "BEGIN");
  EXPECT_EQ(tx.held_sql(), "START TRANSACTION ISOLATION LEVEL SERIALIZABLE;");
}

TEST_F(TransactionTest, HeldCommitAndRollbackAreAnsweredLocally) {
  local("BEGIN");
  auto c = local("COMMIT");
  EXPECT_EQ(c.tag, "COMMIT");
  EXPECT_EQ(c.status, 'I');
  EXPECT_FALSE(tx.open());
  EXPECT_EQ(tx.held_sql(), "");

  local("BEGIN");
  auto r = local("ROLLBACK");
  EXPECT_EQ(r.tag, "ROLLBACK");
  EXPECT_EQ(r.status, 'I');
  EXPECT_FALSE(tx.open());

  local("BEGIN");
  EXPECT_EQ(local("END").tag, "COMMIT");
  local("BEGIN");
  EXPECT_EQ(local("ABORT").tag, "ROLLBACK");
}

TEST_F(TransactionTest, CommitWithoutATransactionGoesToTheServer) {
  // PostgreSQL's own WARNING 25P01 "there is no transaction in progress".
  EXPECT_FALSE(tx.local_answer(st("COMMIT")));
  EXPECT_FALSE(tx.local_answer(st("ROLLBACK")));
  EXPECT_FALSE(tx.local_answer(st("SAVEPOINT a")));
}

TEST_F(TransactionTest, BeginInsideAHeldTransactionWarnsAndChangesNothing) {
  local("BEGIN");
  auto a = local("BEGIN");
  EXPECT_TRUE(a.already_open);
  EXPECT_EQ(a.tag, "BEGIN");
  EXPECT_EQ(a.status, 'T');
  EXPECT_EQ(tx.held_sql(), "BEGIN;");
  EXPECT_TRUE(tx.held());
}

TEST_F(TransactionTest, ErrorWhileHeldFailsTheTransactionUntilItsEnd) {
  local("BEGIN");
  tx.refused();
  EXPECT_TRUE(tx.failed());
  EXPECT_TRUE(tx.aborted_while_held());
  EXPECT_EQ(tx.status(), 'E');
  // Savepoints are not taken in a failed transaction: like any statement, 25P02.
  EXPECT_FALSE(tx.local_answer(st("SAVEPOINT a")));
  EXPECT_EQ(Transaction::aborted_error().sqlstate, "25P02");
  auto b = local("BEGIN");
  EXPECT_TRUE(b.already_open);
  EXPECT_EQ(b.status, 'E');
  // COMMIT of a failed transaction rolls it back, as PostgreSQL answers.
  auto c = local("COMMIT");
  EXPECT_EQ(c.tag, "ROLLBACK");
  EXPECT_EQ(c.status, 'I');
  EXPECT_FALSE(tx.failed());
  EXPECT_FALSE(tx.open());
  // Outside a held transaction a refusal leaves no state behind.
  tx.refused();
  EXPECT_FALSE(tx.failed());
  EXPECT_EQ(tx.status(), 'I');
}

TEST_F(TransactionTest, SavepointsWhileHeldAreReplayedInOrderWhereItBinds) {
  local("BEGIN");
  EXPECT_EQ(local("SAVEPOINT a").tag, "SAVEPOINT");
  EXPECT_EQ(local("SAVEPOINT b").tag, "SAVEPOINT");
  auto r = local("ROLLBACK TO SAVEPOINT b");
  EXPECT_EQ(r.tag, "ROLLBACK");
  EXPECT_EQ(r.status, 'T');
  EXPECT_EQ(local("RELEASE a").tag, "RELEASE");
  EXPECT_TRUE(tx.held());
  EXPECT_EQ(tx.held_sql(), "BEGIN;SAVEPOINT a;SAVEPOINT b;ROLLBACK TO SAVEPOINT b;RELEASE a;");
  tx.bind(Participant{0, -1}, false);
  EXPECT_EQ(tx.held_sql(), "");
  // After binding, savepoints are the server's.
  EXPECT_FALSE(tx.local_answer(st("SAVEPOINT c")));
  EXPECT_FALSE(tx.local_answer(st("ROLLBACK TO c")));
  EXPECT_FALSE(tx.local_answer(st("RELEASE c")));
}

TEST_F(TransactionTest, ReadOnlyIsKnownForAHeldBegin) {
  local("BEGIN READ ONLY");
  EXPECT_TRUE(tx.read_only());
  EXPECT_EQ(tx.held_sql(), "BEGIN READ ONLY;");
  local("COMMIT");
  EXPECT_FALSE(tx.read_only());
  local("BEGIN ISOLATION LEVEL SERIALIZABLE, READ WRITE");
  EXPECT_FALSE(tx.read_only());
  local("ROLLBACK");
  local("START TRANSACTION READ ONLY");
  EXPECT_TRUE(tx.read_only());
  tx.bind(Participant{0, -1}, false);
  EXPECT_TRUE(tx.read_only());
  tx.ready_for_query('I', Participant{0, -1}, kEpoch);
  EXPECT_FALSE(tx.read_only());
}

TEST_F(TransactionTest, AProvisionalBindingKeepsTheReplayAndCanBeUndone) {
  local("BEGIN");
  local("SAVEPOINT a");
  tx.bind(Participant{0, -1}, true);  // a server taken only to prepare a statement
  EXPECT_FALSE(tx.held());
  EXPECT_EQ(tx.server_status(), 'T');
  EXPECT_EQ(tx.held_sql(), "BEGIN;SAVEPOINT a;");
  tx.unbind();  // rolled back there; the first routable statement needs another shard
  EXPECT_TRUE(tx.held());
  EXPECT_EQ(tx.server_status(), 'I');
  EXPECT_EQ(tx.status(), 'T');
  EXPECT_TRUE(tx.participants().empty());
  tx.bind(Participant{2, -1}, false);
  ASSERT_EQ(tx.participants().size(), 1u);
  EXPECT_EQ(tx.participants()[0].shard, 2);
  EXPECT_EQ(tx.held_sql(), "");
}

TEST_F(TransactionTest, SessionPoolingHoldsNothingAndRecordsWhereTheServerOpenedIt) {
  Transaction session{false};
  EXPECT_FALSE(session.local_answer(st("BEGIN")));
  EXPECT_FALSE(session.answer_locally(st("BEGIN"), kEpoch));
  EXPECT_FALSE(session.held());
  // The server ran the client's own BEGIN.
  session.ready_for_query('T', Participant{3, -1}, 11);
  EXPECT_TRUE(session.open());
  ASSERT_EQ(session.participants().size(), 1u);
  EXPECT_EQ(session.participants()[0], (Participant{3, -1}));
  EXPECT_EQ(session.epoch(), 11u);
  session.ready_for_query('E', Participant{3, -1}, 12);
  EXPECT_TRUE(session.failed());
  EXPECT_EQ(session.participants().size(), 1u);
  EXPECT_EQ(session.epoch(), 11u);
  session.ready_for_query('I', Participant{3, -1}, 12);
  EXPECT_FALSE(session.open());
  EXPECT_FALSE(session.failed());
}

TEST_F(TransactionTest, TransactionControlWhileTheServerHasTheTransactionGoesThere) {
  // The server reported an open transaction (a Query "BEGIN; ..." it ran itself).
  tx.ready_for_query('T', Participant{0, -1}, kEpoch);
  EXPECT_FALSE(tx.local_answer(st("BEGIN")));
  EXPECT_FALSE(tx.local_answer(st("COMMIT")));
  EXPECT_FALSE(tx.answer_locally(st("COMMIT"), kEpoch));
}

const std::vector<SetChange> kSets{{SetChange::Kind::Set, "work_mem", "SET work_mem = '8MB'"},
                                   {SetChange::Kind::Reset, "search_path", {}}};

TEST_F(TransactionTest, SetsInsideATransactionTakeEffectAtCommit) {
  tx.ready_for_query('T', Participant{0, -1}, kEpoch);
  tx.add_sets(kSets);
  EXPECT_TRUE(tx.command_complete("SELECT 1").empty());
  auto applied = tx.command_complete("COMMIT");
  ASSERT_EQ(applied.size(), 2u);
  EXPECT_EQ(applied[0].name, "work_mem");
  EXPECT_EQ(applied[1].kind, SetChange::Kind::Reset);
  EXPECT_TRUE(tx.pending_sets().empty());
  EXPECT_TRUE(tx.ready_for_query('I', Participant{0, -1}, kEpoch).empty());  // not twice
}

TEST_F(TransactionTest, SetsInsideATransactionAreDroppedAtRollback) {
  tx.ready_for_query('T', Participant{0, -1}, kEpoch);
  tx.add_sets(kSets);
  EXPECT_TRUE(tx.command_complete("ROLLBACK").empty());
  EXPECT_TRUE(tx.ready_for_query('I', Participant{0, -1}, kEpoch).empty());
  EXPECT_TRUE(tx.pending_sets().empty());
  EXPECT_FALSE(tx.error_since_ready());
}

TEST_F(TransactionTest, RollbackToSavepointDropsOnlyTheSetsMadeSinceIt) {
  // BEGIN; SET a; SAVEPOINT s; SET b; SAVEPOINT t; SET c; ROLLBACK TO s; SET d; COMMIT
  // commits a and d, as PostgreSQL does (ROLLBACK TO's tag is "ROLLBACK" too).
  auto set = [](const char* name) { return SetChange{SetChange::Kind::Set, name, std::string("SET ") + name + " = 1"}; };
  auto sp = [](SetChange::Kind k, const char* name) { return SetChange{k, name, {}}; };
  tx.ready_for_query('T', Participant{0, -1}, kEpoch);
  const std::vector<SetChange> before{set("a"), sp(SetChange::Kind::Savepoint, "s"), set("b"),
                                      sp(SetChange::Kind::Savepoint, "t"), set("c")};
  tx.add_sets(before);
  EXPECT_TRUE(tx.command_complete("ROLLBACK").empty());
  const std::vector<SetChange> rollback_to{sp(SetChange::Kind::RollbackTo, "s")};
  tx.add_sets(rollback_to);
  EXPECT_TRUE(tx.ready_for_query('T', Participant{0, -1}, kEpoch).empty());
  ASSERT_EQ(tx.pending_sets().size(), 1u);
  // The savepoint stays (a second ROLLBACK TO s works); t is gone (ROLLBACK TO t would fail).
  const std::vector<SetChange> after{set("d"), sp(SetChange::Kind::RollbackTo, "s"), set("e"),
                                     sp(SetChange::Kind::Savepoint, "u"), set("f"), sp(SetChange::Kind::Release, "u")};
  tx.add_sets(after);
  auto applied = tx.command_complete("COMMIT");
  ASSERT_EQ(applied.size(), 3u);
  EXPECT_EQ(applied[0].name, "a");
  EXPECT_EQ(applied[1].name, "e");  // d was rolled back by the second ROLLBACK TO s
  EXPECT_EQ(applied[2].name, "f");  // RELEASE keeps what was set after the savepoint
}

TEST_F(TransactionTest, SavepointsOfAHeldTransactionCountForRollbackTo) {
  local("BEGIN");
  local("SAVEPOINT s");
  tx.bind(Participant{0, -1}, false);
  tx.ready_for_query('T', Participant{0, -1}, kEpoch);
  const std::vector<SetChange> sets{{SetChange::Kind::Set, "work_mem", "SET work_mem = '7MB'"},
                                    {SetChange::Kind::RollbackTo, "s", {}}};
  tx.add_sets(sets);
  EXPECT_TRUE(tx.pending_sets().empty());
}

TEST_F(TransactionTest, AnImplicitTransactionsSetsApplyAtItsReadyForQueryUnlessItFailed) {
  // Extended protocol: Bind/Execute SET ... Sync, no BEGIN.
  tx.add_sets(kSets);
  EXPECT_EQ(tx.ready_for_query('I', Participant{0, -1}, kEpoch).size(), 2u);
  tx.add_sets(kSets);
  tx.error_seen();
  EXPECT_TRUE(tx.ready_for_query('I', Participant{0, -1}, kEpoch).empty());
  EXPECT_TRUE(tx.pending_sets().empty());
}

TEST_F(TransactionTest, AutocommitWritesAreProbedAtOnceAndReadsNever) {
  StatementEffects write;
  write.statements = 1;
  write.writes = true;
  StatementEffects read;
  read.statements = 1;
  const std::vector<int> logical{4};
  auto probe = tx.after_statements(write, false, logical);
  ASSERT_TRUE(probe);
  EXPECT_EQ(*probe, logical);
  EXPECT_FALSE(tx.after_statements(read, false, logical));
  EXPECT_FALSE(tx.has_written());
}

TEST_F(TransactionTest, ATransactionsWritesAreProbedAtItsCommitWithEveryLogicalShardTouched) {
  StatementEffects begin;
  begin.begins = true;
  StatementEffects write;
  write.writes = true;
  StatementEffects commit;
  commit.commits = true;
  EXPECT_FALSE(tx.after_statements(begin, false, {}));
  EXPECT_FALSE(tx.after_statements(write, true, std::vector<int>{5}));
  EXPECT_FALSE(tx.after_statements(write, true, std::vector<int>{2}));
  EXPECT_FALSE(tx.after_statements(write, true, std::vector<int>{5}));
  EXPECT_TRUE(tx.has_written());
  EXPECT_EQ(tx.written(), (std::vector<int>{5, 2}));
  auto probe = tx.after_statements(commit, true, {});
  ASSERT_TRUE(probe);
  EXPECT_EQ(*probe, (std::vector<int>{5, 2}));
  EXPECT_FALSE(tx.has_written());
  // A COMMIT after nothing was written needs no probe.
  EXPECT_FALSE(tx.after_statements(commit, true, {}));
}

TEST_F(TransactionTest, AWriteNotConfinedToTenantsMakesTheScopeShardWide) {
  StatementEffects write;
  write.writes = true;
  StatementEffects commit;
  commit.commits = true;
  tx.after_statements(write, true, std::vector<int>{5});
  tx.wrote({});  // e.g. COPY into an unsharded table
  auto probe = tx.after_statements(commit, true, {});
  ASSERT_TRUE(probe);
  EXPECT_TRUE(probe->empty());  // shard-wide
}

TEST_F(TransactionTest, ACopyInsideATransactionIsCoveredByTheCommitProbe) {
  StatementEffects commit;
  commit.commits = true;
  tx.wrote(std::vector<int>{9});
  EXPECT_TRUE(tx.has_written());
  auto probe = tx.after_statements(commit, true, {});
  ASSERT_TRUE(probe);
  EXPECT_EQ(*probe, (std::vector<int>{9}));
}

TEST_F(TransactionTest, TheLogicalShardsATransactionTouchedLastUntilItEnds) {
  local("BEGIN");
  EXPECT_FALSE(tx.has_touched());
  tx.touch(std::vector<int>{3});
  tx.ready_for_query('I', Participant{0, -1}, kEpoch);  // a late reply of a request before BEGIN
  tx.bind(Participant{1, -1}, false);
  tx.touch(std::vector<int>{5});
  tx.touch(std::vector<int>{3});
  EXPECT_TRUE(tx.has_touched());
  EXPECT_EQ(tx.touched(), (std::vector<int>{3, 5}));
  tx.ready_for_query('T', Participant{1, -1}, kEpoch);
  EXPECT_EQ(tx.touched(), (std::vector<int>{3, 5}));
  tx.ready_for_query('I', Participant{1, -1}, kEpoch);
  EXPECT_FALSE(tx.has_touched());
  EXPECT_TRUE(tx.touched().empty());

  // A statement not confined to tenants makes it the whole shard.
  local("BEGIN");
  tx.touch(std::vector<int>{3});
  tx.touch({});
  EXPECT_TRUE(tx.has_touched());
  EXPECT_TRUE(tx.touched().empty());
  local("ROLLBACK");
  local("BEGIN");  // a new transaction starts with nothing touched
  EXPECT_FALSE(tx.has_touched());
}

std::shared_ptr<const router::ShardingSchema> schema() {
  auto r = config::parse_config(R"(
users: [{name: app, password: secret, database: app}]
backend: {user: app, password: secret, database: app}
directory: [{logical: 0-1023, shard: s0}]
shards: {s0: {primary: {host: 127.0.0.1, port: 1}}}
)",
                                "test.yaml");
  EXPECT_TRUE(r.ok());
  return router::ShardingSchema::from_config(*r.config);
}

StatementEffects effects_of(const std::string& sql, const router::ShardingSchema& s) {
  StatementEffects e;
  e.add(*router::build_route_template(sql, s));
  return e;
}

TEST(StatementEffects, ReadsWritesAndTransactionControlOfATemplate) {
  auto s = schema();
  auto read = effects_of("SELECT * FROM t WHERE id = 1", *s);
  EXPECT_TRUE(read.replica_safe());
  EXPECT_FALSE(read.writes);
  auto write = effects_of("INSERT INTO t VALUES (1)", *s);
  EXPECT_FALSE(write.replica_safe());
  EXPECT_TRUE(write.writes);
  auto locking = effects_of("SELECT * FROM t FOR UPDATE", *s);
  EXPECT_TRUE(locking.writes);  // stays on the primary, and counts as a write for the probe
  auto tx = effects_of("BEGIN; UPDATE t SET a = 1; COMMIT", *s);
  EXPECT_EQ(tx.statements, 3);
  EXPECT_TRUE(tx.begins);
  EXPECT_TRUE(tx.commits);
  EXPECT_TRUE(tx.writes);
  EXPECT_TRUE(effects_of("COPY t FROM STDIN", *s).copy_in);
  EXPECT_FALSE(effects_of("COPY t TO STDOUT", *s).copy_in);
  EXPECT_FALSE(effects_of("SELEC 1", *s).replica_safe());  // no statements: the primary answers
  // Over several Binds of one unit the effects add up.
  StatementEffects unit;
  unit.add(*router::build_route_template("SELECT 1", *s));
  EXPECT_TRUE(unit.replica_safe());
  unit.add(*router::build_route_template("DELETE FROM t", *s));
  EXPECT_FALSE(unit.replica_safe());
  EXPECT_TRUE(unit.writes);
}

}  // namespace
}  // namespace shardline::proxy::session
