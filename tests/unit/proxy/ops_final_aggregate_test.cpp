// FinalAggregate: partial aggregates of several shards combined into one database's answer.

#include "proxy/exec/ops/final_aggregate.hpp"

#include <gtest/gtest.h>

#include "tests/unit/proxy/ops_test_support.hpp"

namespace shardline::proxy::exec::ops {
namespace {

using namespace testing;
using Fn = router::AggregateFn;

router::AggregateColumn agg(Fn fn, int input, int count_input = -1) {
  router::AggregateColumn a;
  a.fn = fn;
  a.input = input;
  a.count_input = count_input;
  return a;
}
router::AggregateColumn group(int input) {
  router::AggregateColumn a;
  a.group_key = true;
  a.input = input;
  return a;
}

struct AggRun {
  CollectSink sink;
  FinalAggregate op;
  AggRun(std::vector<router::AggregateColumn> cols, const std::vector<ColumnDesc>& in, MergeContext ctx = {true})
      : op(std::move(cols), ctx) {
    op.set_next(&sink);
    op.describe(rd(in));
  }
  AggRun& feed(const std::vector<Vals>& rows) {
    for (const auto& r : rows) op.row(row(r));
    return *this;
  }
  std::vector<Vals> done() {
    op.finish();
    return sink.rows;
  }
};

TEST(OpsFinalAggregate, CountSumMinMaxWithoutGroupBy) {
  // SELECT count(*), sum(int4), sum(numeric), min(int8), max(text)
  AggRun r({agg(Fn::Count, 0), agg(Fn::Sum, 1), agg(Fn::Sum, 2), agg(Fn::Min, 3), agg(Fn::Max, 4)},
        {col("count", 20), col("sum", 20), col("sum", 1700), col("min", 20), col("max", 25)});
  auto out = r.feed({{"3", "10", "1.5", "-7", "apple"},
                     {"0", std::nullopt, std::nullopt, std::nullopt, std::nullopt},
                     {"2", "-4", "2.25", "-9", "pear"}})
                 .done();
  ASSERT_FALSE(r.op.error()) << r.op.error()->message;
  EXPECT_EQ(out, (std::vector<Vals>{{"5", "6", "3.75", "-9", "pear"}}));
  auto cols = r.sink.columns();
  EXPECT_EQ(cols[1].type_oid, 20u);
  EXPECT_EQ(cols[2].type_oid, 1700u);
  EXPECT_EQ(r.op.explain(), "FinalAggregate(count(#0), sum(#1), sum(#2), min(#3), max(#4))");
}

TEST(OpsFinalAggregate, NoInputRowsStillYieldsOneRowWithoutGroupBy) {
  AggRun r({agg(Fn::Count, 0), agg(Fn::Sum, 1), agg(Fn::Avg, 1, 0)}, {col("count", 20), col("sum", 1700)});
  EXPECT_EQ(r.done(), (std::vector<Vals>{{"0", std::nullopt, std::nullopt}}));
}

TEST(OpsFinalAggregate, AllNullPartialsGiveNull) {
  AggRun r({agg(Fn::Count, 0), agg(Fn::Sum, 1), agg(Fn::Min, 1), agg(Fn::BoolAnd, 2), agg(Fn::Avg, 1, 0)},
        {col("count", 20), col("sum", 20), col("b", 16)});
  auto out = r.feed({{"0", std::nullopt, std::nullopt}, {"0", std::nullopt, std::nullopt}}).done();
  EXPECT_EQ(out, (std::vector<Vals>{{"0", std::nullopt, std::nullopt, std::nullopt, std::nullopt}}));
}

TEST(OpsFinalAggregate, GroupsAreConsecutiveEqualKeys) {
  // SELECT g, count(*), sum(x) ... GROUP BY g, rows merged in g order; numeric keys 1.0 = 1.00.
  AggRun r({group(0), agg(Fn::Count, 1), agg(Fn::Sum, 2)}, {col("g", 1700), col("count", 20), col("sum", 20)});
  auto out = r.feed({{std::nullopt, "1", "5"},
                     {std::nullopt, "2", "1"},
                     {"1.0", "1", "1"},
                     {"1.00", "4", "2"},
                     {"2", "1", std::nullopt}})
                 .done();
  EXPECT_EQ(out, (std::vector<Vals>{{std::nullopt, "3", "6"}, {"1.0", "5", "3"}, {"2", "1", std::nullopt}}));
}

TEST(OpsFinalAggregate, ConstantKeyWithoutGroupByAndTextKeysUnderAnyCollation) {
  // SELECT 'x' AS label, count(*) FROM t: a key column over a Concat; equality only, so text is
  // fine even when the collation does not order by bytes.
  AggRun r({group(0), agg(Fn::Count, 1)}, {col("label", 25), col("count", 20)}, MergeContext{false});
  ASSERT_FALSE(r.op.error()) << r.op.error()->message;
  EXPECT_EQ(r.feed({{"x", "2"}, {"x", "0"}, {"x", "5"}}).done(), (std::vector<Vals>{{"x", "7"}}));
  EXPECT_EQ(r.op.explain(), "FinalAggregate(key #0, count(#1))");
}

TEST(OpsFinalAggregate, ColumnsBelowZeroCountFromTheEnd) {
  AggRun r({group(0), agg(Fn::Avg, -2, -1)}, {col("g", 23), col("avg", 20), col("count", 20)});
  ASSERT_FALSE(r.op.error()) << r.op.error()->message;
  EXPECT_EQ(r.feed({{"1", "3", "2"}, {"1", "1", "2"}}).done(), (std::vector<Vals>{{"1", "1.00000000000000000000"}}));
}

TEST(OpsFinalAggregate, GroupByOverNoRowsGivesNoRows) {
  AggRun r({group(0), agg(Fn::Count, 1)}, {col("g", 23), col("count", 20)});
  EXPECT_TRUE(r.done().empty());
  EXPECT_FALSE(r.op.error());
}

TEST(OpsFinalAggregate, AvgIsExactNumericDivision) {
  // avg(int4): shards return sum (bigint) and count; avg(numeric): sum (numeric) and count.
  AggRun r({agg(Fn::Avg, 0, 1), agg(Fn::Avg, 2, 1)}, {col("avg", 20), col("count", 20), col("avg", 1700)});
  auto out = r.feed({{"3", "2", "0.10"}, {"2", "1", "0.2"}}).done();
  // 5/3 and 0.30/3, as PostgreSQL's numeric_div gives them.
  EXPECT_EQ(out, (std::vector<Vals>{{"1.6666666666666667", "0.10000000000000000000"}}));
  auto cols = r.sink.columns();
  ASSERT_EQ(cols.size(), 2u);
  EXPECT_EQ(cols[0].type_oid, 1700u);
  EXPECT_EQ(cols[0].typlen, -1);
  EXPECT_EQ(cols[0].typmod, -1);
  EXPECT_EQ(cols[0].name, "avg");
}

TEST(OpsFinalAggregate, NumericSpecialValues) {
  AggRun r({agg(Fn::Sum, 0), agg(Fn::Avg, 0, 1), agg(Fn::Max, 0), agg(Fn::Min, 0)},
        {col("s", 1700), col("c", 20)});
  auto out = r.feed({{"Infinity", "2"}, {"5", "1"}}).done();
  EXPECT_EQ(out, (std::vector<Vals>{{"Infinity", "Infinity", "Infinity", "5"}}));
  AggRun n({agg(Fn::Sum, 0), agg(Fn::Avg, 0, 1), agg(Fn::Max, 0)}, {col("s", 1700), col("c", 20)});
  EXPECT_EQ(n.feed({{"Infinity", "2"}, {"-Infinity", "1"}}).done(), (std::vector<Vals>{{"NaN", "NaN", "Infinity"}}));
  AggRun m({agg(Fn::Max, 0)}, {col("s", 1700)});
  EXPECT_EQ(m.feed({{"NaN"}, {"Infinity"}}).done(), (std::vector<Vals>{{"NaN"}}));
}

TEST(OpsFinalAggregate, BinaryInputGivesBinaryOutput) {
  AggRun r({agg(Fn::Count, 0), agg(Fn::Sum, 1), agg(Fn::Avg, 1, 0), agg(Fn::Sum, 2), agg(Fn::BoolOr, 3),
         agg(Fn::Max, 4)},
        {col("c", 20, 1), col("s", 20, 1), col("n", 1700, 1), col("b", 16, 1), col("f", 701, 1)});
  auto num = [](const char* s) { return numeric_to_binary(*parse_numeric_text(s)); };
  auto out = r.feed({{bin_i8(2), bin_i8(7), num("1.5"), std::string(1, '\0'), bin_f8(1.5)},
                     {bin_i8(1), bin_i8(-1), num("-0.25"), std::string(1, '\1'), bin_f8(-2)}})
                 .done();
  ASSERT_FALSE(r.op.error()) << r.op.error()->message;
  EXPECT_EQ(out, (std::vector<Vals>{{bin_i8(3), bin_i8(6), num("2.0000000000000000"), num("1.25"),
                                     std::string(1, '\1'), bin_f8(1.5)}}));
  EXPECT_EQ(r.sink.columns()[2].format, 1);
}

TEST(OpsFinalAggregate, BigintSumOverflowIsAnError) {
  AggRun r({agg(Fn::Sum, 0)}, {col("s", 20)});
  r.feed({{"9223372036854775807"}, {"1"}});
  ASSERT_TRUE(r.op.error());
  EXPECT_EQ(r.op.error()->sqlstate, "22003");
  EXPECT_EQ(r.op.error()->message, "bigint out of range");
}

TEST(OpsFinalAggregate, InexactSumsAreRefused) {
  for (std::uint32_t oid : {700u, 701u, 790u, 1186u}) {
    AggRun r({agg(Fn::Sum, 0)}, {col("s", oid)});
    ASSERT_TRUE(r.op.error()) << oid;
    EXPECT_EQ(r.op.error()->sqlstate, "0A000");
    EXPECT_NE(r.op.error()->message.find("not associative"), std::string::npos);
    AggRun a({agg(Fn::Avg, 0, 1)}, {col("s", oid), col("c", 20)});
    ASSERT_TRUE(a.op.error());
    EXPECT_EQ(a.op.error()->sqlstate, "0A000");
  }
  AggRun m({agg(Fn::Min, 0)}, {col("j", 3802)});
  ASSERT_TRUE(m.op.error());
  EXPECT_EQ(m.op.error()->message, "cross-shard min()/max() on a column of type jsonb is not supported");
}

TEST(OpsFinalAggregate, MinMaxKeepsTheWinnersBytes) {
  AggRun r({agg(Fn::Min, 0), agg(Fn::Max, 0), agg(Fn::Max, 1)}, {col("n", 1700), col("f", 701)});
  auto out = r.feed({{"2.50", "1e+100"}, {"-0.001", "NaN"}, {"10", "Infinity"}}).done();
  EXPECT_EQ(out, (std::vector<Vals>{{"-0.001", "10", "NaN"}}));
}

TEST(OpsFinalAggregate, EqualMinMaxKeepTheLaterValueAsThePostgresTransitionDoes) {
  AggRun r({agg(Fn::Min, 0), agg(Fn::Max, 0)}, {col("n", 1700)});
  EXPECT_EQ(r.feed({{"1.0"}, {"1.00"}, {"1"}}).done(), (std::vector<Vals>{{"1", "1"}}));
}

TEST(OpsFinalAggregate, BoolAndOr) {
  AggRun r({agg(Fn::BoolAnd, 0), agg(Fn::BoolOr, 0)}, {col("b", 16)});
  EXPECT_EQ(r.feed({{"t"}, {std::nullopt}, {"f"}}).done(), (std::vector<Vals>{{"f", "t"}}));
}

}  // namespace
}  // namespace shardline::proxy::exec::ops
