// Unit tests of router/parser: ParseTree, analyze(), and the
// keyword table. PostgreSQL's grammar (libpg_query) is the oracle wherever one is needed.

#include <cctype>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include "router/parser/keywords.hpp"
#include "router/parser/parse_tree.hpp"
#include "router/parser/statement.hpp"

namespace shardline::router {
namespace {

Statement only(std::string_view sql) {
  Analysis a = analyze(sql);
  EXPECT_FALSE(a.error.has_value()) << sql << ": " << a.error.value_or("");
  EXPECT_EQ(a.statements.size(), 1u) << sql;
  if (a.statements.size() != 1) return {};
  return a.statements[0];
}

std::vector<std::string> names(const Statement& st) {
  std::vector<std::string> out;
  for (const auto& t : st.tables) out.push_back(t.schema.empty() ? t.name : t.schema + "." + t.name);
  return out;
}

using Names = std::vector<std::string>;

// ---- ParseTree ------------------------------------------------------------------------------

TEST(ParseTree, ParsesStatementsWithLocations) {
  const ParseTree tree = ParseTree::parse("SELECT 1; SELECT 2");
  ASSERT_TRUE(tree.ok());
  ASSERT_EQ(tree.statements().size(), 2u);
  EXPECT_EQ(tree.statements()[0]->stmt->node_case, PG_QUERY__NODE__NODE_SELECT_STMT);
  EXPECT_EQ(tree.statements()[1]->stmt_location, 9);
}

TEST(ParseTree, ReportsSyntaxErrorWithPosition) {
  const ParseTree tree = ParseTree::parse("SELECT * FORM orders");
  ASSERT_FALSE(tree.ok());
  EXPECT_EQ(tree.result(), nullptr);
  EXPECT_TRUE(tree.statements().empty());
  EXPECT_EQ(tree.error()->message, "syntax error at or near \"FORM\"");
  EXPECT_EQ(tree.error()->cursor_pos, 10);
}

TEST(ParseTree, MoveTransfersOwnership) {
  ParseTree a = ParseTree::parse("SELECT 1");
  const PgQuery__ParseResult* tree = a.result();
  ASSERT_NE(tree, nullptr);
  ParseTree b = std::move(a);
  EXPECT_EQ(b.result(), tree);
  EXPECT_EQ(a.result(), nullptr);  // NOLINT(bugprone-use-after-move): documented moved-from state
  ParseTree c = ParseTree::parse("SELEC");
  EXPECT_FALSE(c.ok());
  c = std::move(b);
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(c.result(), tree);
}

TEST(ParseTree, InputNeedNotBeNulTerminated) {
  const std::string buf = "SELECT 1xyz";
  const ParseTree tree = ParseTree::parse(std::string_view(buf).substr(0, 8));
  ASSERT_TRUE(tree.ok());
  EXPECT_EQ(tree.statements().size(), 1u);
}

TEST(ParseTree, RejectsNulByte) {
  const std::string sql("SELECT 1;\0DROP TABLE t", 22);
  const ParseTree tree = ParseTree::parse(sql);
  ASSERT_FALSE(tree.ok());
  EXPECT_NE(tree.error()->message.find("NUL"), std::string::npos);
  EXPECT_EQ(tree.error()->cursor_pos, 10);
}

std::string chain(int terms, std::string_view op = "+") {
  std::string q = "SELECT 1";
  for (int i = 1; i < terms; ++i) q.append(op).append("1");
  return q;
}

TEST(ParseTree, RefusesOperatorChainsThatWouldOverflowTheStack) {
  // libpg_query itself crashes on ~30000 chained '+' with an 8 MB stack; we must refuse first.
  for (const std::string& q : {chain(100000), chain(40000, "::int"), chain(3000, " || ")}) {
    const ParseTree tree = ParseTree::parse(q);
    ASSERT_FALSE(tree.ok());
    EXPECT_NE(tree.error()->message.find("chained operators"), std::string::npos);
    EXPECT_GT(tree.error()->cursor_pos, 1000);
  }
}

std::string nested_selects(int depth) {
  std::string q = "SELECT ";
  for (int i = 0; i < depth; ++i) q += "(SELECT ";
  q += "1";
  q.append(static_cast<std::size_t>(depth), ')');
  return q;
}

TEST(ParseTree, RefusesDeeplyNestedSubqueries) {
  // libpg_query overflows an 8 MB stack on ~2500 nested sub-selects.
  for (int depth : {300, 2600, 9000}) {
    const ParseTree tree = ParseTree::parse(nested_selects(depth));
    ASSERT_FALSE(tree.ok()) << depth;
    EXPECT_NE(tree.error()->message.find("parentheses"), std::string::npos);
  }
  const ParseTree ok = ParseTree::parse(nested_selects(100));
  EXPECT_TRUE(ok.ok()) << ok.error().value_or(ParseError{}).message;
  // Parentheses inside literals and comments do not count.
  EXPECT_TRUE(ParseTree::parse("SELECT '" + std::string(5000, '(') + "' /* ((( */").ok());
}

TEST(ParseTree, RefusesTreesDeeperThanTheUnpackerHandles) {
  // NOT nests to the right (bounded only by the grammar's stack), ~2 protobuf levels each.
  std::string nots = "SELECT ";
  for (int i = 0; i < 1500; ++i) nots += "NOT ";
  const ParseTree tree = ParseTree::parse(nots + "true");
  ASSERT_FALSE(tree.ok());
  EXPECT_NE(tree.error()->message.find("levels deep"), std::string::npos);
  EXPECT_TRUE(ParseTree::parse(chain(500)).ok());
}

TEST(ParseTree, WideButShallowStatementsAreFine) {
  // Operators in separate list elements, string literals, dollar quotes and comments do not add
  // up: a 12000-row INSERT and a 12000-term OR chain must parse.
  std::string insert = "INSERT INTO t VALUES ";
  std::string ors = "SELECT * FROM t WHERE a = 0";
  for (int i = 0; i < 12000; ++i) {
    insert += (i ? "," : "");
    insert += "(-1, 2::int, 'x+y-z', $$a+b$$, E'\\'+') /* + */";
    ors += " OR a = -" + std::to_string(i);
  }
  std::string literal = "SELECT '" + std::string(60000, '+') + "' -- " + std::string(100, '+');
  for (const std::string& q : {insert, ors, literal}) {
    const ParseTree tree = ParseTree::parse(q);
    EXPECT_TRUE(tree.ok()) << tree.error().value_or(ParseError{}).message;
  }
}

// ---- analyze(): statement splitting -----------------------------------------------------------

TEST(Analyze, SplitsMultiStatementStrings) {
  const std::string sql = "  SELECT 1;INSERT INTO t VALUES (';');\n\n /* hint */ COMMIT ; ";
  const Analysis a = analyze(sql);
  ASSERT_FALSE(a.error);
  ASSERT_EQ(a.statements.size(), 3u);
  EXPECT_EQ(a.statements[0].kind, StatementKind::Select);
  EXPECT_EQ(a.statements[0].text, "SELECT 1");
  EXPECT_EQ(a.statements[1].kind, StatementKind::Insert);
  EXPECT_EQ(a.statements[1].text, "INSERT INTO t VALUES (';')");
  EXPECT_EQ(a.statements[2].kind, StatementKind::Transaction);
  EXPECT_EQ(a.statements[2].text, "/* hint */ COMMIT");  // comments kept: routing hints live there
  // Views point into the caller's string.
  EXPECT_GE(a.statements[1].text.data(), sql.data());
  EXPECT_LE(a.statements[1].text.data() + a.statements[1].text.size(), sql.data() + sql.size());
}

TEST(Analyze, EmptyStatementsBetweenSemicolonsAreDropped) {
  const Analysis a = analyze("SELECT 1;;; SELECT 2;");
  ASSERT_EQ(a.statements.size(), 2u);
  EXPECT_EQ(a.statements[1].text, "SELECT 2");
}

TEST(Analyze, EmptyAndCommentOnlyStringsAreEmpty) {
  for (std::string_view sql : {"", "   \n\t", ";", " ; ; ", "-- just a comment", "/* a */ /* b */"}) {
    const Analysis a = analyze(sql);
    ASSERT_FALSE(a.error) << sql;
    ASSERT_EQ(a.statements.size(), 1u) << sql;
    EXPECT_EQ(a.statements[0].kind, StatementKind::Empty) << sql;
    EXPECT_TRUE(a.statements[0].tables.empty());
  }
}

TEST(Analyze, SyntaxErrorGivesMessageAndPositionAndNoStatements) {
  const Analysis a = analyze("SELECT 1; SELECT * FROM WHERE x = 1");
  ASSERT_TRUE(a.error);
  EXPECT_EQ(*a.error, "syntax error at or near \"WHERE\"");
  EXPECT_EQ(a.error_pos, 25);
  EXPECT_TRUE(a.statements.empty());

  const Analysis b = analyze("SELECT 'unterminated");
  ASSERT_TRUE(b.error);
  EXPECT_EQ(*b.error, "unterminated quoted string at or near \"'unterminated\"");
  EXPECT_EQ(b.error_pos, 8);

  // Positions count characters, not bytes, as PostgreSQL's ErrorResponse does.
  const Analysis c = analyze("SELECT 'héhé' FRM t");
  ASSERT_TRUE(c.error);
  EXPECT_EQ(c.error_pos, 19);
}

// ---- analyze(): kinds and flags -------------------------------------------------------------

struct KindCase {
  std::string_view sql;
  StatementKind kind;
  bool writes;
  bool locking;
};

TEST(Analyze, ClassifiesEveryKind) {
  using K = StatementKind;
  const KindCase cases[] = {
      {"SELECT 1", K::Select, false, false},
      {"VALUES (1), (2)", K::Select, false, false},
      {"TABLE orders", K::Select, false, false},
      {"SELECT * FROM orders FOR UPDATE", K::Select, false, true},
      {"SELECT * FROM orders FOR NO KEY UPDATE SKIP LOCKED", K::Select, false, true},
      {"SELECT * FROM (SELECT * FROM orders FOR SHARE) s", K::Select, false, true},
      {"SELECT * FROM a WHERE id IN (SELECT id FROM b FOR KEY SHARE)", K::Select, false, true},
      {"SELECT * INTO archive FROM orders", K::Select, true, false},
      {"WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d", K::Select, true, false},
      {"WITH s AS (SELECT 1) SELECT * FROM s", K::Select, false, false},
      {"INSERT INTO orders VALUES (1)", K::Insert, true, false},
      {"INSERT INTO orders SELECT * FROM staging FOR UPDATE", K::Insert, true, true},
      {"UPDATE orders SET x = 1", K::Update, true, false},
      {"DELETE FROM orders", K::Delete, true, false},
      {"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", K::Other, true, false},
      {"COPY orders FROM STDIN", K::Copy, true, false},
      {"COPY orders TO STDOUT", K::Copy, false, false},
      {"COPY (SELECT * FROM orders) TO STDOUT", K::Copy, false, false},
      {"CREATE TABLE t (id int)", K::Ddl, true, false},
      {"ALTER TABLE t ADD COLUMN x int", K::Ddl, true, false},
      {"DROP TABLE t", K::Ddl, true, false},
      {"CREATE INDEX ON t (x)", K::Ddl, true, false},
      {"TRUNCATE t", K::Ddl, true, false},
      {"CREATE TABLE t2 AS SELECT * FROM t", K::Ddl, true, false},
      {"COMMENT ON TABLE t IS 'x'", K::Ddl, true, false},
      {"GRANT SELECT ON t TO bob", K::Ddl, true, false},
      {"CREATE VIEW v AS SELECT * FROM t", K::Ddl, true, false},
      {"REFRESH MATERIALIZED VIEW mv", K::Ddl, true, false},
      {"CREATE EXTENSION pgcrypto", K::Ddl, true, false},
      {"BEGIN", K::Transaction, false, false},
      {"SET x = 1", K::Set, false, false},
      {"SHOW x", K::Show, false, false},
      {"DISCARD ALL", K::Discard, false, false},
      {"DEALLOCATE p", K::Deallocate, false, false},
      {"LISTEN chan", K::Listen, false, false},
      {"UNLISTEN *", K::Listen, false, false},
      {"EXPLAIN SELECT * FROM t", K::Explain, false, false},
      {"EXPLAIN DELETE FROM t", K::Explain, false, false},
      {"EXPLAIN ANALYZE DELETE FROM t", K::Explain, true, false},
      {"EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM t FOR UPDATE", K::Explain, false, true},
      {"EXPLAIN (ANALYZE off) DELETE FROM t", K::Explain, false, false},
      {"EXPLAIN (ANALYZE true) UPDATE t SET x = 1", K::Explain, true, false},
      {"EXPLAIN ANALYZE CREATE TABLE t2 AS SELECT 1", K::Explain, true, false},
      {"LOCK TABLE t IN ACCESS EXCLUSIVE MODE", K::Other, false, true},
      {"CALL proc(1)", K::Other, true, false},
      {"DO $$ BEGIN END $$", K::Other, true, false},
      {"EXECUTE p(1)", K::Other, true, false},
      {"PREPARE p AS DELETE FROM t", K::Other, false, false},
      {"VACUUM t", K::Other, true, false},
      {"NOTIFY chan, 'x'", K::Other, true, false},
      {"DECLARE c CURSOR FOR SELECT * FROM t FOR UPDATE", K::Other, false, true},
      {"FETCH 10 FROM c", K::Other, false, false},
      {"CHECKPOINT", K::Other, true, false},
  };
  for (const auto& c : cases) {
    const Statement st = only(c.sql);
    EXPECT_EQ(st.kind, c.kind) << c.sql << " -> " << to_string(st.kind);
    EXPECT_EQ(st.writes, c.writes) << c.sql;
    EXPECT_EQ(st.locking, c.locking) << c.sql;
    EXPECT_EQ(st.text, c.sql);
  }
}

TEST(Analyze, CopyDirection) {
  EXPECT_EQ(only("COPY orders (a, b) FROM STDIN WITH (FORMAT csv)").copy_direction, "from");
  EXPECT_EQ(only("COPY orders TO STDOUT").copy_direction, "to");
  EXPECT_EQ(only("SELECT 1").copy_direction, "");
  // COPY (INSERT ... RETURNING) TO runs the INSERT.
  EXPECT_TRUE(only("COPY (INSERT INTO t VALUES (1) RETURNING *) TO STDOUT").writes);
}

TEST(Analyze, DeclareCursorAndWithHold) {
  const Statement d = only("DECLARE c SCROLL CURSOR FOR SELECT * FROM orders WHERE tenant_id = 1");
  EXPECT_TRUE(d.declare_cursor);
  EXPECT_FALSE(d.cursor_hold);
  EXPECT_EQ(d.tables, (std::vector<TableRef>{{"", "orders"}}));
  EXPECT_TRUE(only("DECLARE c CURSOR WITH HOLD FOR SELECT 1").cursor_hold);
  EXPECT_TRUE(only("declare \"pg3_hold\" no scroll binary cursor with hold for select 1").cursor_hold);
  EXPECT_FALSE(only("DECLARE c BINARY INSENSITIVE SCROLL CURSOR WITHOUT HOLD FOR SELECT 1").cursor_hold);
  for (const char* sql : {"FETCH 10 FROM c", "MOVE ALL IN c", "CLOSE c", "CLOSE ALL", "SELECT 1"}) {
    EXPECT_FALSE(only(sql).declare_cursor) << sql;
    EXPECT_FALSE(only(sql).cursor_hold) << sql;
  }
}

struct TxCase {
  std::string_view sql;
  TxCommand tx;
  bool read_only;
};

TEST(Analyze, EveryTransactionCommand) {
  using T = TxCommand;
  const TxCase cases[] = {
      {"BEGIN", T::Begin, false},
      {"BEGIN WORK", T::Begin, false},
      {"BEGIN TRANSACTION ISOLATION LEVEL SERIALIZABLE", T::Begin, false},
      {"BEGIN READ ONLY", T::Begin, true},
      {"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY, DEFERRABLE", T::Begin, true},
      {"BEGIN READ ONLY READ WRITE", T::Begin, false},
      {"START TRANSACTION", T::Start, false},
      {"START TRANSACTION READ ONLY", T::Start, true},
      {"COMMIT", T::Commit, false},
      {"COMMIT AND CHAIN", T::Commit, false},
      {"END", T::Commit, false},
      {"END TRANSACTION", T::Commit, false},
      {"ROLLBACK", T::Rollback, false},
      {"ROLLBACK AND NO CHAIN", T::Rollback, false},
      {"ABORT", T::Rollback, false},
      {"SAVEPOINT sp1", T::Savepoint, false},
      {"RELEASE sp1", T::Release, false},
      {"RELEASE SAVEPOINT sp1", T::Release, false},
      {"ROLLBACK TO sp1", T::RollbackTo, false},
      {"ROLLBACK TO SAVEPOINT sp1", T::RollbackTo, false},
      {"ROLLBACK WORK TO SAVEPOINT sp1", T::RollbackTo, false},
      {"PREPARE TRANSACTION 'gid1'", T::Prepare, false},
      {"COMMIT PREPARED 'gid1'", T::CommitPrepared, false},
      {"ROLLBACK PREPARED 'gid1'", T::RollbackPrepared, false},
  };
  for (const auto& c : cases) {
    const Statement st = only(c.sql);
    EXPECT_EQ(st.kind, StatementKind::Transaction) << c.sql;
    EXPECT_EQ(st.tx, c.tx) << c.sql << " -> " << to_string(st.tx);
    EXPECT_EQ(st.read_only_tx, c.read_only) << c.sql;
    EXPECT_FALSE(st.writes);
    EXPECT_TRUE(st.tables.empty());
  }
  EXPECT_EQ(only("SELECT 1").tx, TxCommand::None);
}

// ---- analyze(): SET / SHOW / DEALLOCATE -------------------------------------------------------

struct SetCase {
  std::string_view sql;
  SetCommand::Kind kind;
  std::string_view name;
  std::string_view value;
};

TEST(Analyze, SetForms) {
  using S = SetCommand::Kind;
  const SetCase cases[] = {
      {"SET x TO 'a'", S::Value, "x", "a"},
      {"SET x = 1", S::Value, "x", "1"},
      {"SET x = 'a','b'", S::Value, "x", "a, b"},
      {"SET x = 007", S::Value, "x", "7"},
      {"SET x = -5", S::Value, "x", "-5"},
      {"SET x = 1.50", S::Value, "x", "1.50"},
      {"SET x = -1.5", S::Value, "x", "-1.5"},
      {"SET x = 2147483648", S::Value, "x", "2147483648"},
      {"SET x = on", S::Value, "x", "on"},
      {"SET x = TRUE", S::Value, "x", "true"},
      {"SET Application_Name = MyApp", S::Value, "application_name", "myapp"},
      {"SET application_name = 'MyApp'", S::Value, "application_name", "MyApp"},
      {"SET \"Shardline\".Tenant = '42'", S::Value, "shardline.tenant", "42"},
      {"SET LOCAL statement_timeout = 5000", S::Local, "statement_timeout", "5000"},
      {"SET LOCAL x TO DEFAULT", S::Local, "x", ""},
      {"SET SESSION statement_timeout = 5000", S::Value, "statement_timeout", "5000"},
      {"SET x TO DEFAULT", S::Default, "x", ""},
      {"SET x = DEFAULT", S::Default, "x", ""},
      {"RESET x", S::Reset, "x", ""},
      {"RESET ALL", S::ResetAll, "", ""},
      {"SET TIME ZONE 'UTC'", S::Value, "timezone", "UTC"},
      {"SET TIME ZONE LOCAL", S::Default, "timezone", ""},
      {"SET TIME ZONE -5", S::Value, "timezone", "-5"},
      {"SET TIME ZONE INTERVAL '+02:00' HOUR TO MINUTE", S::Value, "timezone", "+02:00"},
      {"RESET TIME ZONE", S::Reset, "timezone", ""},
      {"SET NAMES 'UTF8'", S::Value, "client_encoding", "UTF8"},
      {"SET NAMES DEFAULT", S::Default, "client_encoding", ""},
      {"SET SCHEMA 'app'", S::Value, "search_path", "app"},
      {"SET ROLE admin", S::Value, "role", "admin"},
      {"SET SESSION AUTHORIZATION DEFAULT", S::Default, "session_authorization", ""},
      {"SET XML OPTION DOCUMENT", S::Value, "xmloption", "DOCUMENT"},
      {"SET search_path = a, \"B\"", S::Value, "search_path", "a, \"B\""},
      {"SET search_path TO \"$user\", public", S::Value, "search_path", "\"$user\", public"},
      {"SET search_path = 'My Schema', time", S::Value, "search_path", "\"My Schema\", \"time\""},
      {"SET temp_tablespaces = 'Fast'", S::Value, "temp_tablespaces", "\"Fast\""},
      {"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY", S::Local, "transaction",
       "isolation level serializable, read only"},
      {"SET TRANSACTION SNAPSHOT '00000003-0000001B-1'", S::Local, "transaction snapshot",
       "00000003-0000001B-1"},
      {"SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE, NOT DEFERRABLE", S::Value,
       "session characteristics", "read write, not deferrable"},
  };
  for (const auto& c : cases) {
    const Statement st = only(c.sql);
    ASSERT_EQ(st.kind, StatementKind::Set) << c.sql;
    ASSERT_TRUE(st.set.has_value()) << c.sql;
    EXPECT_EQ(st.set->kind, c.kind) << c.sql << " -> " << to_string(st.set->kind);
    EXPECT_EQ(st.set->name, c.name) << c.sql;
    EXPECT_EQ(st.set->value, c.value) << c.sql;
    EXPECT_EQ(st.set->text, c.sql);
    EXPECT_FALSE(st.writes);
  }
}

TEST(Analyze, SetTextIsTheStatementsOwnSlice) {
  const Analysis a = analyze("SET a = 1; /* keep */ SET LOCAL b TO 'x';SELECT 1");
  ASSERT_EQ(a.statements.size(), 3u);
  EXPECT_EQ(a.statements[0].set->text, "SET a = 1");
  EXPECT_EQ(a.statements[1].set->text, "/* keep */ SET LOCAL b TO 'x'");
  EXPECT_FALSE(a.statements[2].set.has_value());
}

TEST(Analyze, ShowAndDeallocateNames) {
  EXPECT_EQ(only("SHOW search_path").show_name, "search_path");
  EXPECT_EQ(only("SHOW TimeZone").show_name, "timezone");
  EXPECT_EQ(only("SHOW TIME ZONE").show_name, "timezone");
  EXPECT_EQ(only("SHOW TRANSACTION ISOLATION LEVEL").show_name, "transaction_isolation");
  EXPECT_EQ(only("SHOW \"Shardline\".lsn").show_name, "shardline.lsn");
  EXPECT_EQ(only("SHOW ALL").show_name, "all");
  EXPECT_FALSE(only("SELECT 1").show_name.has_value());
  // Prepared statement names are case-sensitive when quoted.
  EXPECT_EQ(only("DEALLOCATE \"P1\"").deallocate_name, "P1");
  EXPECT_EQ(only("DEALLOCATE PREPARE p1").deallocate_name, "p1");
  EXPECT_EQ(only("DEALLOCATE ALL").deallocate_name, "");
  EXPECT_FALSE(only("SELECT 1").deallocate_name.has_value());
}

// ---- analyze(): table references ----------------------------------------------------------------

TEST(Analyze, IdentifiersAreFoldedLikePostgres) {
  EXPECT_EQ(names(only("SELECT * FROM \"Orders\"")), Names{"Orders"});
  EXPECT_EQ(names(only("SELECT * FROM ORDERS")), Names{"orders"});
  EXPECT_EQ(names(only("SELECT * FROM public.orders")), Names{"public.orders"});
  EXPECT_EQ(names(only("SELECT * FROM \"My Schema\".\"Order Items\"")),
            Names{"My Schema.Order Items"});
  EXPECT_EQ(names(only("SELECT * FROM mydb.Public.Orders")), Names{"public.orders"});
  const Statement st = only("SELECT * FROM Sales.\"T\"");
  ASSERT_EQ(st.tables.size(), 1u);
  EXPECT_EQ(st.tables[0], (TableRef{"sales", "T"}));
}

TEST(Analyze, TablesInJoinsSubqueriesAndSetOperations) {
  EXPECT_EQ(names(only("SELECT * FROM orders o JOIN items i ON i.oid = o.id "
                       "LEFT JOIN s.customers c USING (cid), payments")),
            (Names{"orders", "items", "s.customers", "payments"}));
  EXPECT_EQ(names(only("SELECT (SELECT max(x) FROM a) FROM b WHERE EXISTS (SELECT 1 FROM c) "
                       "AND y IN (SELECT y FROM d) UNION SELECT 1 FROM e")),
            (Names{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(names(only("SELECT * FROM (SELECT * FROM (SELECT * FROM deep) x) y, LATERAL "
                       "(SELECT * FROM lat WHERE lat.id = y.id) z")),
            (Names{"deep", "lat"}));
  // Each relation once, in order of first appearance.
  EXPECT_EQ(names(only("SELECT * FROM a JOIN a a2 ON true JOIN b ON true, a a3")),
            (Names{"a", "b"}));
  EXPECT_TRUE(only("SELECT now(), generate_series(1, 3)").tables.empty());
  EXPECT_TRUE(only("SELECT * FROM generate_series(1, 3) g").tables.empty());
}

TEST(Analyze, TablesInDml) {
  EXPECT_EQ(names(only("INSERT INTO orders (id) SELECT id FROM staging s JOIN extra e USING (id)")),
            (Names{"orders", "staging", "extra"}));
  EXPECT_EQ(names(only("INSERT INTO orders VALUES (1) ON CONFLICT (id) DO UPDATE SET x = "
                       "(SELECT x FROM defaults)")),
            (Names{"orders", "defaults"}));
  EXPECT_EQ(names(only("UPDATE orders o SET total = s.total FROM sums s WHERE s.id = o.id")),
            (Names{"orders", "sums"}));
  EXPECT_EQ(names(only("DELETE FROM orders USING customers c WHERE c.id = orders.cid "
                       "RETURNING (SELECT 1 FROM audit)")),
            (Names{"orders", "customers", "audit"}));
  EXPECT_EQ(names(only("MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED THEN INSERT "
                       "VALUES (s.id)")),
            (Names{"t", "s"}));
  EXPECT_EQ(names(only("COPY sch.orders (a) FROM STDIN")), Names{"sch.orders"});
}

TEST(Analyze, CteNamesAreNotTablesButTheirBodiesAre) {
  EXPECT_EQ(names(only("WITH t AS (SELECT * FROM orders), u AS (SELECT * FROM t JOIN items "
                       "ON true) SELECT * FROM u, t")),
            (Names{"orders", "items"}));
  // A CTE may shadow a table of the same name only where it is in scope.
  EXPECT_EQ(names(only("WITH orders AS (SELECT * FROM orders) SELECT * FROM orders")),
            Names{"orders"});
  EXPECT_EQ(names(only("SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) a, x")),
            Names{"x"});
  EXPECT_EQ(names(only("WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a")),
            Names{"b"});  // non-recursive: the first body sees the table b, not the later CTE
  EXPECT_TRUE(only("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r "
                   "WHERE n < 10) SELECT * FROM r")
                  .tables.empty());
  // A schema-qualified name is never a CTE.
  EXPECT_EQ(names(only("WITH t AS (SELECT 1) SELECT * FROM public.t")), Names{"public.t"});
  // The target of a DML statement is always a table, even when a CTE has its name.
  EXPECT_EQ(names(only("WITH t AS (SELECT 1 AS id) INSERT INTO t SELECT id FROM t")), Names{"t"});
}

TEST(Analyze, DataModifyingCteIsAWriteAndItsTablesCount) {
  const Statement st = only(
      "WITH moved AS (DELETE FROM orders WHERE id = 1 RETURNING *) "
      "INSERT INTO archive SELECT * FROM moved");
  EXPECT_EQ(st.kind, StatementKind::Insert);
  EXPECT_TRUE(st.writes);
  EXPECT_EQ(names(st), (Names{"archive", "orders"}));
  const Statement sel = only("WITH u AS (UPDATE t SET x = 1 RETURNING *) SELECT * FROM u");
  EXPECT_EQ(sel.kind, StatementKind::Select);
  EXPECT_TRUE(sel.writes);
  EXPECT_EQ(names(sel), Names{"t"});
}

TEST(Analyze, ForUpdateOfNamesAliasesNotTables) {
  const Statement st = only("SELECT * FROM orders o JOIN items i ON true FOR UPDATE OF o");
  EXPECT_TRUE(st.locking);
  EXPECT_EQ(names(st), (Names{"orders", "items"}));
}

TEST(Analyze, TablesInDdlAndUtilityStatements) {
  EXPECT_EQ(names(only("CREATE TABLE s.t (id int REFERENCES parent (id), LIKE tmpl)")),
            (Names{"s.t", "parent", "tmpl"}));
  EXPECT_EQ(names(only("DROP TABLE IF EXISTS a, s.b, db.s.c CASCADE")),
            (Names{"a", "s.b", "s.c"}));
  EXPECT_EQ(names(only("DROP VIEW v")), Names{"v"});
  EXPECT_TRUE(only("DROP FUNCTION f(int)").tables.empty());
  EXPECT_TRUE(only("DROP SCHEMA s").tables.empty());
  EXPECT_EQ(names(only("ALTER TABLE orders ADD COLUMN x int")), Names{"orders"});
  EXPECT_EQ(names(only("TRUNCATE a, b")), (Names{"a", "b"}));
  EXPECT_EQ(names(only("CREATE INDEX i ON orders (tenant_id)")), Names{"orders"});
  EXPECT_EQ(names(only("CREATE TABLE t2 AS SELECT * FROM t1")), (Names{"t1", "t2"}));
  EXPECT_EQ(names(only("SELECT * INTO t2 FROM t1")), (Names{"t2", "t1"}));
  EXPECT_EQ(names(only("LOCK TABLE a, b")), (Names{"a", "b"}));
  EXPECT_EQ(names(only("EXPLAIN SELECT * FROM a JOIN b ON true")), (Names{"a", "b"}));
  EXPECT_EQ(names(only("PREPARE p AS SELECT * FROM orders WHERE id = $1")), Names{"orders"});
  EXPECT_EQ(names(only("COPY (SELECT * FROM a) TO STDOUT")), Names{"a"});
  EXPECT_EQ(names(only("VACUUM ANALYZE orders")), Names{"orders"});
}

// ---- keywords --------------------------------------------------------------------------------

KeywordCategory from_libpg_query(PgQuery__KeywordKind k) {
  switch (k) {
    case PG_QUERY__KEYWORD_KIND__UNRESERVED_KEYWORD: return KeywordCategory::Unreserved;
    case PG_QUERY__KEYWORD_KIND__COL_NAME_KEYWORD: return KeywordCategory::ColName;
    case PG_QUERY__KEYWORD_KIND__TYPE_FUNC_NAME_KEYWORD: return KeywordCategory::TypeFuncName;
    case PG_QUERY__KEYWORD_KIND__RESERVED_KEYWORD: return KeywordCategory::Reserved;
    default: return KeywordCategory::None;
  }
}

/// The category libpg_query's scanner gives `word` (None unless it is one keyword token).
KeywordCategory scanned_category(const std::string& word) {
  PgQueryScanResult r = pg_query_scan(word.c_str());
  KeywordCategory out = KeywordCategory::None;
  if (r.error == nullptr) {
    PgQuery__ScanResult* s = pg_query__scan_result__unpack(
        nullptr, r.pbuf.len, reinterpret_cast<const uint8_t*>(r.pbuf.data));
    if (s != nullptr && s->n_tokens == 1 && s->tokens[0]->end - s->tokens[0]->start ==
                                               static_cast<int>(word.size())) {
      out = from_libpg_query(s->tokens[0]->keyword_kind);
    }
    pg_query__scan_result__free_unpacked(s, nullptr);
  }
  pg_query_free_scan_result(r);
  return out;
}

TEST(Keywords, TableMatchesLibpgQuery) {
  // Every entry has the category PostgreSQL's scanner gives it ...
  for (const Keyword& k : all_keywords()) {
    EXPECT_EQ(scanned_category(std::string(k.word)), k.category) << k.word;
  }
  // ... and every keyword token of the grammar (named after the keyword, "_P" dropped) is in
  // the table, so the table is complete.
  std::size_t keyword_tokens = 0;
  const ProtobufCEnumDescriptor& tokens = pg_query__token__descriptor;
  for (unsigned i = 0; i < tokens.n_values; ++i) {
    std::string word = tokens.values[i].name;
    if (word.size() > 2 && word.ends_with("_P")) word.resize(word.size() - 2);
    for (char& c : word) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const KeywordCategory scanned = scanned_category(word);
    if (scanned == KeywordCategory::None) continue;
    ++keyword_tokens;
    EXPECT_EQ(keyword_category(word), scanned) << word;
  }
  EXPECT_EQ(keyword_tokens, all_keywords().size());
  EXPECT_GT(keyword_tokens, 400u);
}

TEST(Keywords, LookupIsCaseInsensitive) {
  EXPECT_EQ(keyword_category("SELECT"), KeywordCategory::Reserved);
  EXPECT_EQ(keyword_category("Time"), KeywordCategory::ColName);
  EXPECT_EQ(keyword_category("abort"), KeywordCategory::Unreserved);
  EXPECT_EQ(keyword_category("left"), KeywordCategory::TypeFuncName);
  EXPECT_EQ(keyword_category("orders"), KeywordCategory::None);
  EXPECT_EQ(keyword_category(""), KeywordCategory::None);
  EXPECT_EQ(keyword_category("a_word_much_longer_than_any_keyword"), KeywordCategory::None);
}

TEST(Keywords, QuoteIdentifierFollowsPostgres) {
  EXPECT_EQ(quote_identifier("orders"), "orders");
  EXPECT_EQ(quote_identifier("_x1"), "_x1");
  EXPECT_EQ(quote_identifier("abort"), "abort");  // unreserved keywords stay bare
  EXPECT_EQ(quote_identifier("time"), "\"time\"");
  EXPECT_EQ(quote_identifier("select"), "\"select\"");
  EXPECT_EQ(quote_identifier("Orders"), "\"Orders\"");
  EXPECT_EQ(quote_identifier("1x"), "\"1x\"");
  EXPECT_EQ(quote_identifier("$user"), "\"$user\"");
  EXPECT_EQ(quote_identifier("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(quote_identifier(""), "\"\"");
}

}  // namespace
}  // namespace shardline::router
