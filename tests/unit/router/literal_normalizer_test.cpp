// Statement shapes: literals out, everything else (comments, identifiers, typed and prefixed
// strings) left exactly as written.

#include "router/parser/literal_normalizer.hpp"
#include "router/plan/merge_plan.hpp"

#include <gtest/gtest.h>

namespace shardline::router {
namespace {

std::string shape(std::string_view sql, std::vector<std::string>* lits = nullptr) {
  NormalizedQuery q;
  if (!normalize_literals(sql, q)) return "<unchanged>";
  if (lits) *lits = q.literals;
  return q.text;
}

TEST(LiteralNormalizer, ReplacesNumbersAndPlainStrings) {
  std::vector<std::string> lits;
  EXPECT_EQ(shape("SELECT * FROM t WHERE a = 42 AND b = 'it''s' AND c = 1.5e3", &lits),
            "SELECT * FROM t WHERE a = $1 AND b = $2 AND c = $3");
  EXPECT_EQ(lits, (std::vector<std::string>{"42", "it's", "1.5e3"}));
}

TEST(LiteralNormalizer, LeavesIdentifiersCommentsAndTypedLiteralsAlone) {
  EXPECT_EQ(shape("SELECT t1.c2 FROM t1 /* tenant=42 */ WHERE \"col 9\" = 7 -- 8\n"),
            "SELECT t1.c2 FROM t1 /* tenant=42 */ WHERE \"col 9\" = $1 -- 8\n");
  EXPECT_EQ(shape("SELECT DATE '2020-01-01', INTERVAL '1 day', E'a\\nb', x = 'y'"),
            "SELECT DATE '2020-01-01', INTERVAL '1 day', E'a\\nb', x = $1");
  EXPECT_EQ(shape("SELECT 1 FROM t WHERE a LIKE 'x%'"), "SELECT $1 FROM t WHERE a LIKE $2");
}

TEST(LiteralNormalizer, GivesUpWhereItCannotBeSure) {
  EXPECT_EQ(shape("SELECT $1"), "<unchanged>");
  EXPECT_EQ(shape("SELECT $$x$$"), "<unchanged>");
  EXPECT_EQ(shape("SELECT 'unterminated"), "<unchanged>");
  EXPECT_EQ(shape("SELECT 0x1F"), "<unchanged>");
  EXPECT_EQ(shape("SELECT a FROM t"), "<unchanged>");  // nothing to replace
}

// ORDER BY 2 / GROUP BY 2 name output columns: as $n they would sort by a constant.
TEST(LiteralNormalizer, KeepsOrderAndGroupByPositions) {
  std::vector<std::string> lits;
  EXPECT_EQ(shape("SELECT a, b FROM t WHERE c = 5 GROUP BY 1, 2 ORDER BY 2 DESC, 1 LIMIT 10 OFFSET 3", &lits),
            "SELECT a, b FROM t WHERE c = $1 GROUP BY 1, 2 ORDER BY 2 DESC, 1 LIMIT $2 OFFSET $3");
  EXPECT_EQ(lits, (std::vector<std::string>{"5", "10", "3"}));
  // Inside parentheses a number is an expression's constant again; a sub-select's own list ends
  // with its parenthesis.
  EXPECT_EQ(shape("SELECT a FROM t ORDER BY f(a, 2), (SELECT 3) , 4"),
            "SELECT a FROM t ORDER BY f(a, $1), (SELECT $2) , 4");
  EXPECT_EQ(shape("SELECT x FROM (SELECT a AS x FROM t ORDER BY 1) s WHERE x IN (1, 2)"),
            "SELECT x FROM (SELECT a AS x FROM t ORDER BY 1) s WHERE x IN ($1, $2)");
  EXPECT_EQ(shape("select a, 7 from t order by 1 having 2"), "select a, $1 from t order by 1 having $2");
}

// substitute_literals (router/plan/merge_plan.hpp) is the normalizer's inverse on shard SQL.
TEST(SubstituteLiterals, PutsLiteralsBackWhereParametersAre) {
  std::vector<std::string> lits{"42", "it's", "1.5"};
  std::vector<bool> quoted{false, true, false};
  EXPECT_EQ(substitute_literals("SELECT a FROM t WHERE a = $1 AND b = $2 LIMIT ($3 + $1)", lits, quoted),
            "SELECT a FROM t WHERE a = 42 AND b = 'it''s' LIMIT (1.5 + 42)");
  // Strings, quoted identifiers, comments and dollar quotes keep their `$n`; a `$n` beyond the
  // literals, or inside a word, is not one of them.
  EXPECT_EQ(substitute_literals(R"(SELECT '$1', "$2", E'\'$1', $$ $1 $$, $t$ $2 $t$, a$1, $4 /* $1 */ -- $2
$3)", lits, quoted),
            R"(SELECT '$1', "$2", E'\'$1', $$ $1 $$, $t$ $2 $t$, a$1, $4 /* $1 */ -- $2
1.5)");
  EXPECT_EQ(substitute_literals("SELECT $10, $1", lits, quoted), "SELECT $10, 42");
}

TEST(SubstituteLiterals, RoundTripsTheNormalizer) {
  for (std::string sql : {"SELECT a FROM t WHERE b = 'x''y' AND c > 3 ORDER BY 1 LIMIT 5",
                          "SELECT count(*) FROM t WHERE s IN ('a', 'b') AND n = -1.5e3 -- 1\n",
                          R"(SELECT "q1" FROM t WHERE a = 'it''s ''2''')"}) {
    NormalizedQuery n;
    ASSERT_TRUE(normalize_literals(sql, n)) << sql;
    EXPECT_EQ(substitute_literals(n.text, n.literals, n.quoted), sql);
  }
}

}  // namespace
}  // namespace shardline::router
