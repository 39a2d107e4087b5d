// Having (three-valued predicates by column type), Sort (stable, all rows held) and Distinct.

#include <gtest/gtest.h>

#include "proxy/exec/ops/distinct.hpp"
#include "proxy/exec/ops/having.hpp"
#include "proxy/exec/ops/sort.hpp"
#include "tests/unit/proxy/ops_test_support.hpp"

namespace shardline::proxy::exec::ops {
namespace {

using namespace testing;
using P = router::Predicate;

P cmp(int column, P::Op op, std::string constant) {
  P p;
  p.kind = P::Kind::Compare;
  p.op = op;
  p.column = column;
  p.constant = std::move(constant);
  return p;
}
P cmp_param(int column, P::Op op, int param) {
  P p = cmp(column, op, "");
  p.param = param;
  return p;
}
P node(P::Kind kind, std::vector<P> args, int column = -1) {
  P p;
  p.kind = kind;
  p.args = std::move(args);
  p.column = column;
  return p;
}

std::vector<std::string> run_having(const P& pred, const std::vector<ColumnDesc>& cols, const std::vector<Vals>& rows,
                                    const ParamValues& params = {}, std::optional<protocol::SqlError>* err = nullptr) {
  CollectSink sink;
  Having h(pred, params, true, MergeContext{true});
  h.set_next(&sink);
  h.describe(rd(cols));
  for (const auto& r : rows) h.row(row(r));
  h.finish();
  if (err) *err = h.error();
  else EXPECT_FALSE(h.error()) << h.error()->message;
  return sink.first_column();
}

TEST(OpsHaving, ComparesByTheColumnsTypeNotItsText) {
  auto cols = {col("g", 25), col("count", 20)};
  std::vector<Vals> rows = {{"a", "9"}, {"b", "10"}, {"c", "100"}, {"d", std::nullopt}};
  EXPECT_EQ(run_having(cmp(1, P::Op::Gt, "9"), cols, rows), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(run_having(cmp(1, P::Op::Le, "10"), cols, rows), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(run_having(cmp(1, P::Op::Ne, "10"), cols, rows), (std::vector<std::string>{"a", "c"}));
  // bigint against a numeric constant compares as numeric.
  EXPECT_EQ(run_having(cmp(1, P::Op::Gt, "9.5"), cols, rows), (std::vector<std::string>{"b", "c"}));
  auto ncols = {col("g", 25), col("avg", 1700)};
  EXPECT_EQ(run_having(cmp(1, P::Op::Eq, "2.5"), ncols, {{"a", "2.50"}, {"b", "2.51"}}),
            (std::vector<std::string>{"a"}));
}

TEST(OpsHaving, ThreeValuedLogic) {
  auto cols = {col("g", 25), col("x", 23), col("y", 23)};
  std::vector<Vals> rows = {{"a", "1", std::nullopt}, {"b", "5", "5"}, {"c", std::nullopt, std::nullopt}};
  // x > 2 OR y > 2: a unknown/false -> dropped; NOT (x > 2): c stays unknown -> dropped.
  EXPECT_EQ(run_having(node(P::Kind::Or, {cmp(1, P::Op::Gt, "2"), cmp(2, P::Op::Gt, "2")}), cols, rows),
            (std::vector<std::string>{"b"}));
  EXPECT_EQ(run_having(node(P::Kind::Not, {cmp(1, P::Op::Gt, "2")}), cols, rows), (std::vector<std::string>{"a"}));
  // x < 2 OR y IS NULL: a true (both), c true (IS NULL).
  EXPECT_EQ(run_having(node(P::Kind::Or, {cmp(1, P::Op::Lt, "2"), node(P::Kind::IsNull, {}, 2)}), cols, rows),
            (std::vector<std::string>{"a", "c"}));
  // x > 0 AND y IS NOT NULL
  EXPECT_EQ(run_having(node(P::Kind::And, {cmp(1, P::Op::Gt, "0"), node(P::Kind::IsNotNull, {}, 2)}), cols, rows),
            (std::vector<std::string>{"b"}));
  // NOT (NULL AND false) is true: AND with a false argument is false even next to unknown.
  EXPECT_EQ(run_having(node(P::Kind::Not, {node(P::Kind::And, {cmp(2, P::Op::Gt, "0"), cmp(1, P::Op::Gt, "3")})}),
                       cols, rows),
            (std::vector<std::string>{"a"}));
}

TEST(OpsHaving, ParametersInTextAndBinary) {
  auto cols = {col("g", 25), col("count", 20)};
  std::vector<Vals> rows = {{"a", "1"}, {"b", "3"}};
  ParamValues text;
  text.values = {std::string_view("2")};
  text.formats = {0};
  EXPECT_EQ(run_having(cmp_param(1, P::Op::Ge, 1), cols, rows, text), (std::vector<std::string>{"b"}));
  std::string b8 = bin_i8(1);
  ParamValues bin;
  bin.values = {std::string_view(b8)};
  bin.formats = {1};
  EXPECT_EQ(run_having(cmp_param(1, P::Op::Eq, 1), cols, rows, bin), (std::vector<std::string>{"a"}));
  ParamValues null;
  null.values = {std::nullopt};
  EXPECT_TRUE(run_having(cmp_param(1, P::Op::Eq, 1), cols, rows, null).empty());
  std::optional<protocol::SqlError> err;
  run_having(cmp_param(1, P::Op::Eq, 3), cols, rows, null, &err);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->sqlstate, "22023");
}

TEST(OpsHaving, ParametersOfAnotherDeclaredType) {
  auto num = numeric_to_binary(*parse_numeric_text("2.5"));
  std::string i4 = bin_i4(2);
  std::string f8 = bin_f8(2);
  // bigint column > numeric $1 (binary): compared as numeric.
  ParamValues p1;
  p1.values = {std::string_view(num)};
  p1.formats = {1};
  p1.types = {1700};
  std::vector<Vals> rows = {{"a", "2"}, {"b", "3"}};
  EXPECT_EQ(run_having(cmp_param(1, P::Op::Gt, 1), {col("g", 25), col("count", 20)}, rows, p1),
            (std::vector<std::string>{"b"}));
  // numeric column >= int4 $1 (binary).
  ParamValues p2;
  p2.values = {std::string_view(i4)};
  p2.formats = {1};
  p2.types = {23};
  EXPECT_EQ(run_having(cmp_param(1, P::Op::Ge, 1), {col("g", 25), col("avg", 1700)}, {{"a", "1.99"}, {"b", "2.00"}}, p2),
            (std::vector<std::string>{"b"}));
  // numeric column against a float8 parameter: refused rather than guessed.
  ParamValues p3;
  p3.values = {std::string_view(f8)};
  p3.formats = {1};
  p3.types = {701};
  std::optional<protocol::SqlError> err;
  run_having(cmp_param(1, P::Op::Ge, 1), {col("g", 25), col("avg", 1700)}, rows, p3, &err);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->sqlstate, "0A000");
}

TEST(OpsHaving, BinaryColumns) {
  std::vector<Vals> rows = {{"a", bin_i8(5), bin_f8(0.5)}, {"b", bin_i8(-1), bin_f8(-0.0)}, {"c", std::nullopt, bin_f8(1e300)}};
  auto cols = {col("g", 25, 0), col("n", 20, 1), col("f", 701, 1)};
  EXPECT_EQ(run_having(cmp(1, P::Op::Lt, "0"), cols, rows), (std::vector<std::string>{"b"}));
  EXPECT_EQ(run_having(cmp(2, P::Op::Eq, "0"), cols, rows), (std::vector<std::string>{"b"}));
  EXPECT_EQ(run_having(cmp(2, P::Op::Gt, "1e299"), cols, rows), (std::vector<std::string>{"c"}));
}

TEST(OpsHaving, BadConstantsAndTypes) {
  std::optional<protocol::SqlError> err;
  run_having(cmp(0, P::Op::Eq, "abc"), {col("c", 20)}, {}, {}, &err);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->sqlstate, "22P02");
  run_having(cmp(0, P::Op::Eq, "1"), {col("c", 1186)}, {}, {}, &err);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->message, "cross-shard HAVING on a column of type interval is not supported");
  run_having(cmp(3, P::Op::Eq, "1"), {col("c", 20)}, {}, {}, &err);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->sqlstate, "XX000");
  EXPECT_EQ(Having::explain_predicate(node(P::Kind::And, {cmp(1, P::Op::Gt, "10"), node(P::Kind::IsNull, {}, 2)})),
            "#1 > '10' AND #2 IS NULL");
  EXPECT_EQ(Having::explain_predicate(node(P::Kind::Not, {node(P::Kind::Or, {cmp(0, P::Op::Lt, "it's"),
                                                                           cmp_param(1, P::Op::Ne, 2)})})),
            "NOT (#0 < 'it''s' OR #1 <> $2)");
}

TEST(OpsHaving, ColumnsBelowZeroCountFromTheEnd) {
  auto cols = {col("g", 25), col("count", 20), col("hidden", 20)};
  std::vector<Vals> rows = {{"a", "1", "7"}, {"b", "2", "3"}};
  EXPECT_EQ(run_having(cmp(-1, P::Op::Gt, "5"), cols, rows), (std::vector<std::string>{"a"}));
  EXPECT_EQ(run_having(node(P::Kind::IsNotNull, {}, -3), cols, rows), (std::vector<std::string>{"a", "b"}));
  std::optional<protocol::SqlError> err;
  run_having(cmp(-4, P::Op::Gt, "5"), cols, rows, {}, &err);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->sqlstate, "XX000");
}

TEST(OpsSort, StableByKeysAfterAllInput) {
  CollectSink sink;
  Sort s({key(1, true), key(2, false, true)}, MergeContext{true});
  s.set_next(&sink);
  s.describe(rd({col("id", 23), col("n", 1700), col("f", 701)}));
  std::vector<Vals> rows = {{"1", "2.0", "1"},  {"2", "10", "NaN"}, {"3", "2", std::nullopt},
                            {"4", "2.00", "1"}, {"5", "NaN", "0"},  {"6", std::nullopt, "0"}};
  for (const auto& r : rows) s.row(row(r));
  EXPECT_EQ(s.held_rows(), 6u);
  EXPECT_TRUE(sink.rows.empty());
  s.finish();
  ASSERT_FALSE(s.error());
  // DESC: NULL first (default), NaN above all numbers; ties on n: f NULLS FIRST, then stable.
  EXPECT_EQ(sink.first_column(), (std::vector<std::string>{"6", "5", "2", "3", "1", "4"}));
  EXPECT_EQ(s.held_rows(), 0u);
  EXPECT_EQ(s.explain(), "Sort(#1 DESC, #2 NULLS FIRST)");
}

TEST(OpsSortDistinct, BinaryRows) {
  CollectSink sink;
  Sort s({key(0)}, MergeContext{true});
  Distinct d({key(0)}, MergeContext{true});
  s.set_next(&d);
  d.set_next(&sink);
  s.describe(rd({col("ts", 1184, 1)}));
  for (std::int64_t v : std::vector<std::int64_t>{5, -3, INT64_MAX, 5, INT64_MIN, -3}) s.row(row({bin_i8(v)}));
  s.finish();
  d.finish();
  ASSERT_FALSE(s.error());
  EXPECT_EQ(sink.first_column(),
            (std::vector<std::string>{bin_i8(INT64_MIN), bin_i8(-3), bin_i8(5), bin_i8(INT64_MAX)}));
}

TEST(OpsDistinct, DropsRowsEqualToThePreviousByType) {
  CollectSink sink;
  Distinct d({key(0), key(1)}, MergeContext{true});
  d.set_next(&sink);
  d.describe(rd({col("n", 1700), col("t", 25)}));
  std::vector<Vals> rows = {{std::nullopt, "a"}, {std::nullopt, "a"}, {"1.0", "a"}, {"1.00", "a"},
                            {"1", "b"},          {"2", std::nullopt}, {"2", std::nullopt}};
  for (const auto& r : rows) d.row(row(r));
  d.finish();
  EXPECT_EQ(sink.rows, (std::vector<Vals>{{std::nullopt, "a"}, {"1.0", "a"}, {"1", "b"}, {"2", std::nullopt}}));
  EXPECT_EQ(d.explain(), "Distinct(#0, #1)");
  Distinct bad({key(0)}, MergeContext{false});
  bad.set_next(&sink);
  bad.describe(rd({col("t", 25)}));
  ASSERT_TRUE(bad.error());
  EXPECT_NE(bad.error()->message.find("cross-shard DISTINCT"), std::string::npos);
}

}  // namespace
}  // namespace shardline::proxy::exec::ops
