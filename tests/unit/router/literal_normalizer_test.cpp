// Statement shapes: literals out, everything else (comments, identifiers, typed and prefixed
// strings) left exactly as written.

#include "router/parser/literal_normalizer.hpp"

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

}  // namespace
}  // namespace shardline::router
