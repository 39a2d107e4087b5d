// The leaves (Concat, MergeSort), Limit, Project and the pipeline that chains them.

#include <gtest/gtest.h>

#include "proxy/exec/ops/limit.hpp"
#include "proxy/exec/ops/merge_sort.hpp"
#include "tests/unit/proxy/ops_test_support.hpp"

namespace shardline::proxy::exec::ops {
namespace {

using namespace testing;
using Kind = router::MergeOperator::Kind;

router::MergePlan plan_of(std::vector<router::MergeOperator> ops) {
  router::MergePlan p;
  p.operators = std::move(ops);
  return p;
}

router::MergeOperator merge_sort(std::vector<router::SortKey> keys) {
  auto o = op(Kind::MergeSort);
  o.keys = std::move(keys);
  return o;
}

router::MergeOperator limit(router::PlanValue count, router::PlanValue offset = {}) {
  auto o = op(Kind::Limit);
  o.count = count;
  o.offset = offset;
  return o;
}

router::PlanValue constant(std::int64_t v) { return {router::PlanValue::Kind::Constant, v, 0}; }
router::PlanValue param(int n) { return {router::PlanValue::Kind::Param, 0, n}; }

struct Built {
  CollectSink sink;
  std::optional<Pipeline> p;
  protocol::SqlError error;
};

void build(Built& b, const router::MergePlan& plan, int shards, const ParamValues& params = {},
           MergeContext ctx = {true}) {
  b.p = build_pipeline(plan, shards, params, ctx, b.sink, b.error);
}

TEST(OpsConcat, PassesEveryShardsRowsAndOneDescription) {
  Built b;
  build(b, plan_of({op(Kind::Concat)}), 2);
  ASSERT_TRUE(b.p) << b.error.message;
  auto d = rd({col("v", 23)});
  b.p->leaf->describe(0, d);
  b.p->leaf->describe(1, d);
  b.p->leaf->row(1, row({"3"}));
  b.p->leaf->row(0, row({"1"}));
  b.p->leaf->shard_done(0);
  b.p->leaf->shard_done(1);
  b.p->finish();
  EXPECT_FALSE(b.p->error());
  EXPECT_EQ(b.sink.describes, 1);
  EXPECT_EQ(b.sink.first_column(), (std::vector<std::string>{"3", "1"}));
  EXPECT_EQ(b.p->leaf->waiting_for(), -1);
  EXPECT_EQ(b.p->explain(), "Concat\n");
}

TEST(OpsConcat, ShardsThatDisagreeOnColumnsFailTheStatement) {
  Built b;
  build(b, plan_of({op(Kind::Concat)}), 2);
  b.p->leaf->describe(0, rd({col("v", 23)}));
  b.p->leaf->describe(1, rd({col("v", 20)}));
  ASSERT_TRUE(b.p->error());
  EXPECT_NE(b.p->error()->message.find("shards disagree on column #0"), std::string::npos) << b.p->error()->message;
  Built c;
  build(c, plan_of({op(Kind::Concat)}), 2);
  c.p->leaf->describe(0, rd({col("v", 23)}));
  c.p->leaf->describe(1, rd({col("v", 23), col("w", 23)}));
  ASSERT_TRUE(c.p->error());
  EXPECT_NE(c.p->error()->message.find("1 on one, 2 on shard stream 1"), std::string::npos);
}

TEST(OpsConcat, RejectsRowsBeforeDescriptionAndUnknownShards) {
  Built b;
  build(b, plan_of({op(Kind::Concat)}), 2);
  b.p->leaf->row(0, row({"1"}));
  ASSERT_TRUE(b.p->error());
  EXPECT_EQ(b.p->error()->sqlstate, "08P01");
  Built c;
  build(c, plan_of({op(Kind::Concat)}), 2);
  c.p->leaf->describe(5, rd({col("v", 23)}));
  ASSERT_TRUE(c.p->error());
  EXPECT_EQ(c.p->error()->sqlstate, "XX000");
}

TEST(OpsMergeSort, MergesSortedStreamsHoldingOneRowPerShard) {
  Built b;
  build(b, plan_of({merge_sort({key(0)})}), 3);
  ASSERT_TRUE(b.p) << b.error.message;
  auto& leaf = *b.p->leaf;
  auto d = rd({col("v", 20)});
  std::vector<std::vector<std::string>> shards = {{"-5", "2", "10"}, {"1", "3"}, {}};
  for (int s = 0; s < 3; ++s) leaf.describe(s, d);
  std::vector<std::size_t> next(3, 0);
  std::size_t max_held = 0;
  // Feed exactly what the merge asks for, as the executor does.
  for (int guard = 0; guard < 100; ++guard) {
    int s = leaf.waiting_for();
    if (s < 0) break;
    auto& src = shards[std::size_t(s)];
    if (next[std::size_t(s)] < src.size()) leaf.row(s, row({src[next[std::size_t(s)]++]}));
    else leaf.shard_done(s);
    max_held = std::max(max_held, leaf.held_rows());
    ASSERT_FALSE(b.p->error());
  }
  b.p->finish();
  EXPECT_EQ(b.sink.first_column(), (std::vector<std::string>{"-5", "1", "2", "3", "10"}));
  EXPECT_LE(max_held, 3u);
  EXPECT_EQ(leaf.held_rows(), 0u);
}

TEST(OpsMergeSort, WaitsForEveryShardBeforeEmitting) {
  Built b;
  build(b, plan_of({merge_sort({key(0)})}), 2);
  auto& leaf = *b.p->leaf;
  auto d = rd({col("v", 23)});
  leaf.describe(0, d);
  leaf.describe(1, d);
  EXPECT_EQ(leaf.waiting_for(), 0);
  leaf.row(0, row({"5"}));
  EXPECT_EQ(leaf.waiting_for(), 1);
  EXPECT_TRUE(b.sink.rows.empty());
  leaf.row(1, row({"7"}));
  EXPECT_EQ(b.sink.first_column(), (std::vector<std::string>{"5"}));
  EXPECT_EQ(leaf.waiting_for(), 0);
  leaf.shard_done(0);
  EXPECT_EQ(b.sink.first_column(), (std::vector<std::string>{"5", "7"}));
  EXPECT_EQ(leaf.waiting_for(), 1);
  leaf.shard_done(1);
  EXPECT_EQ(leaf.waiting_for(), -1);
}

TEST(OpsMergeSort, AcceptsRowsBeyondOneAndKeepsOrder) {
  Built b;
  build(b, plan_of({merge_sort({key(0, true)})}), 2);
  auto& leaf = *b.p->leaf;
  auto d = rd({col("v", 23, 1)});
  leaf.describe(0, d);
  leaf.describe(1, d);
  for (int v : {9, 4, 1}) leaf.row(0, row({bin_i4(v)}));
  EXPECT_EQ(leaf.held_rows(), 3u);
  for (int v : {8, 4, -3}) leaf.row(1, row({bin_i4(v)}));
  leaf.shard_done(0);
  leaf.shard_done(1);
  std::vector<std::string> want;
  for (int v : {9, 8, 4, 4, 1, -3}) want.push_back(bin_i4(v));
  EXPECT_EQ(b.sink.first_column(), want);
}

TEST(OpsMergeSort, SeveralKeysWithNullsFirstAndLast) {
  Built b;
  // ORDER BY a DESC NULLS LAST, b ASC NULLS FIRST
  build(b, plan_of({merge_sort({key(0, true, false), key(1, false, true)})}), 2);
  auto& leaf = *b.p->leaf;
  auto d = rd({col("a", 23), col("b", 25)});
  leaf.describe(0, d);
  leaf.describe(1, d);
  std::vector<Vals> s0 = {{"2", std::nullopt}, {"2", "x"}, {std::nullopt, "a"}};
  std::vector<Vals> s1 = {{"3", "z"}, {"2", "b"}, {std::nullopt, std::nullopt}};
  for (auto& r : s0) leaf.row(0, row(r));
  for (auto& r : s1) leaf.row(1, row(r));
  leaf.shard_done(0);
  leaf.shard_done(1);
  ASSERT_FALSE(b.p->error());
  std::vector<Vals> want = {{"3", "z"}, {"2", std::nullopt}, {"2", "b"}, {"2", "x"}, {std::nullopt, std::nullopt},
                            {std::nullopt, "a"}};
  EXPECT_EQ(b.sink.rows, want);
  EXPECT_EQ(b.p->leaf->explain(), "MergeSort(#0 DESC NULLS LAST, #1 NULLS FIRST)");
}

TEST(OpsMergeSort, RefusesTextUnderACollationItCannotReproduce) {
  Built b;
  build(b, plan_of({merge_sort({key(0)})}), 2, {}, MergeContext{false});
  b.p->leaf->describe(0, rd({col("t", 25)}));
  ASSERT_TRUE(b.p->error());
  EXPECT_EQ(b.p->error()->sqlstate, "0A000");
  EXPECT_NE(b.p->error()->message.find("type text"), std::string::npos);
  Built c;
  build(c, plan_of({merge_sort({key(0)})}), 2);
  c.p->leaf->describe(0, rd({col("t", 1186)}));
  ASSERT_TRUE(c.p->error());
  EXPECT_EQ(c.p->error()->message, "cross-shard ORDER BY/GROUP BY on a column of type interval is not supported");
}

TEST(OpsLimit, OffsetThenCountConstantsAndParams) {
  for (int form = 0; form < 3; ++form) {
    Built b;
    ParamValues params;
    std::string p1 = form == 1 ? "2" : bin_i8(2), p2 = form == 1 ? " 1 " : bin_i4(1);
    params.values = {p1, p2};
    params.formats = {std::int16_t(form == 1 ? 0 : 1), std::int16_t(form == 1 ? 0 : 1)};
    auto lim = form == 0 ? limit(constant(2), constant(1)) : limit(param(1), param(2));
    build(b, plan_of({op(Kind::Concat), lim}), 1, params);
    ASSERT_TRUE(b.p) << b.error.message;
    b.p->leaf->describe(0, rd({col("v", 23)}));
    for (auto v : {"a", "b", "c", "d"}) b.p->leaf->row(0, row({v}));
    b.p->leaf->shard_done(0);
    b.p->finish();
    EXPECT_EQ(b.sink.first_column(), (std::vector<std::string>{"b", "c"})) << form;
    EXPECT_EQ(b.p->operators[0]->explain(), "Limit(2 OFFSET 1)");
  }
}

TEST(OpsLimit, NullAllAndBadParameters) {
  std::optional<std::int64_t> out;
  protocol::SqlError e;
  ParamValues params;
  params.values = {std::nullopt, std::string_view("-1"), std::string_view("x1"), std::string_view("abc")};
  params.formats = {0, 0, 0, 1};
  EXPECT_TRUE(resolve_limit_value(param(1), false, params, out, e));
  EXPECT_FALSE(out);
  EXPECT_TRUE(resolve_limit_value(router::PlanValue{}, false, params, out, e));
  EXPECT_FALSE(out);
  EXPECT_FALSE(resolve_limit_value(param(2), false, params, out, e));
  EXPECT_EQ(e.sqlstate, "2201W");
  EXPECT_EQ(e.message, "LIMIT must not be negative");
  EXPECT_FALSE(resolve_limit_value(param(2), true, params, out, e));
  EXPECT_EQ(e.sqlstate, "2201X");
  EXPECT_EQ(e.message, "OFFSET must not be negative");
  EXPECT_FALSE(resolve_limit_value(constant(-4), false, params, out, e));
  EXPECT_EQ(e.sqlstate, "2201W");
  EXPECT_FALSE(resolve_limit_value(param(3), false, params, out, e));
  EXPECT_EQ(e.sqlstate, "22023");
  EXPECT_FALSE(resolve_limit_value(param(4), false, params, out, e));
  EXPECT_EQ(e.sqlstate, "22023");
  EXPECT_FALSE(resolve_limit_value(param(9), false, params, out, e));
  EXPECT_NE(e.message.find("$9"), std::string::npos);
  Built b;
  build(b, plan_of({op(Kind::Concat), limit(param(2))}), 1, params);
  EXPECT_FALSE(b.p);
  EXPECT_EQ(b.error.sqlstate, "2201W");
}

TEST(OpsProject, DropsHiddenColumnsFromDescriptionAndRows) {
  Built b;
  auto proj = op(Kind::Project);
  proj.visible = 1;
  build(b, plan_of({merge_sort({key(1)}), proj}), 2);
  ASSERT_TRUE(b.p) << b.error.message;
  auto d = rd({col("name", 25), col("hidden", 20)});
  b.p->leaf->describe(0, d);
  b.p->leaf->describe(1, d);
  b.p->leaf->row(0, row({"x", "2"}));
  b.p->leaf->row(1, row({"y", "1"}));
  b.p->leaf->shard_done(0);
  b.p->leaf->shard_done(1);
  ASSERT_FALSE(b.p->error());
  ASSERT_EQ(b.sink.columns().size(), 1u);
  EXPECT_EQ(b.sink.columns()[0].name, "name");
  EXPECT_EQ(b.sink.rows, (std::vector<Vals>{{"y"}, {"x"}}));
  protocol::SqlError e;
  auto fd = final_row_description(plan_of({merge_sort({key(1)}), proj}), d, MergeContext{true}, e);
  ASSERT_TRUE(fd) << e.message;
  EXPECT_EQ(*fd, rd({col("name", 25)}));
  EXPECT_EQ(b.p->explain(), "Project(1)\n  MergeSort(#1)\n");
}

TEST(OpsProject, BelowZeroDropsTheLastColumnsOfAStarSelect) {
  // SELECT *, id AS k FROM t ORDER BY k, total: MergeSort(#-2, #-1), Project(all but the last 1).
  Built b;
  auto proj = op(Kind::Project);
  proj.visible = -1;
  build(b, plan_of({merge_sort({key(-2), key(-1)}), proj}), 2);
  ASSERT_TRUE(b.p) << b.error.message;
  auto d = rd({col("id", 23), col("total", 1700), col("k", 23), col("total", 1700)});
  b.p->leaf->describe(0, d);
  b.p->leaf->describe(1, d);
  b.p->leaf->row(0, row({"2", "1.5", "2", "1.5"}));
  b.p->leaf->row(1, row({"1", "9", "1", "9"}));
  b.p->leaf->row(1, row({"2", "1.25", "2", "1.25"}));
  b.p->leaf->shard_done(0);
  b.p->leaf->shard_done(1);
  ASSERT_FALSE(b.p->error()) << b.p->error()->message;
  EXPECT_EQ(b.sink.columns().size(), 3u);
  EXPECT_EQ(b.sink.rows, (std::vector<Vals>{{"1", "9", "1"}, {"2", "1.25", "2"}, {"2", "1.5", "2"}}));
  EXPECT_EQ(b.p->explain(), "Project(all but the last 1)\n  MergeSort(#-2, #-1)\n");
  Built c;
  proj.visible = -5;
  build(c, plan_of({op(Kind::Concat), proj}), 1);
  c.p->leaf->describe(0, d);
  ASSERT_TRUE(c.p->error());
  EXPECT_EQ(c.p->error()->sqlstate, "XX000");
}

TEST(OpsPipeline, GroupByOrderByAggregateLimitProject) {
  // SELECT status FROM t GROUP BY status HAVING count(*) > 1 ORDER BY count(*) DESC LIMIT 2
  auto fa = op(Kind::FinalAggregate);
  router::AggregateColumn k, c;
  k.group_key = true;
  k.input = 0;
  c.fn = router::AggregateFn::Count;
  c.input = 1;
  fa.aggregates = {k, c};
  auto having = op(Kind::Having);
  having.predicate.kind = router::Predicate::Kind::Compare;
  having.predicate.op = router::Predicate::Op::Gt;
  having.predicate.column = 1;
  having.predicate.constant = "1";
  auto sort = op(Kind::Sort);
  sort.keys = {key(1, true)};
  auto proj = op(Kind::Project);
  proj.visible = 1;
  auto plan = plan_of({merge_sort({key(0)}), fa, having, sort, limit(constant(2)), proj});
  Built b;
  build(b, plan, 2);
  ASSERT_TRUE(b.p) << b.error.message;
  auto d = rd({col("status", 25), col("count", 20)});
  b.p->leaf->describe(0, d);
  b.p->leaf->describe(1, d);
  for (auto& r : std::vector<Vals>{{"a", "1"}, {"b", "3"}, {"c", "1"}, {"d", "1"}}) b.p->leaf->row(0, row(r));
  for (auto& r : std::vector<Vals>{{"a", "5"}, {"c", "1"}, {"e", "1"}}) b.p->leaf->row(1, row(r));
  b.p->leaf->shard_done(0);
  b.p->leaf->shard_done(1);
  EXPECT_EQ(b.p->held_rows(), 4u);  // Sort holds a(6), b(3), c(2); FinalAggregate the open group e
  b.p->finish();
  ASSERT_FALSE(b.p->error()) << b.p->error()->message;
  EXPECT_EQ(b.sink.rows, (std::vector<Vals>{{"a"}, {"b"}}));
  EXPECT_EQ(b.sink.columns().size(), 1u);
  EXPECT_EQ(b.p->explain(),
            "Project(1)\n  Limit(2)\n    Sort(#1 DESC)\n      Having(#1 > '1')\n        "
            "FinalAggregate(key #0, count(#1))\n          MergeSort(#0)\n");
}

TEST(OpsPipeline, FinalRowDescriptionTypesAvgAsNumericBeforeAnyRow) {
  auto fa = op(Kind::FinalAggregate);
  router::AggregateColumn a;
  a.fn = router::AggregateFn::Avg;
  a.input = 0;
  a.count_input = 1;
  fa.aggregates = {a};
  auto proj = op(Kind::Project);
  proj.visible = 1;
  auto having = op(Kind::Having);
  having.predicate.kind = router::Predicate::Kind::Compare;
  having.predicate.column = 0;
  having.predicate.param = 1;  // not bound yet at Describe
  protocol::SqlError e;
  auto d = rd({col("avg", 20, 1), col("count", 20, 1)});
  auto out = final_row_description(plan_of({op(Kind::Concat), fa, having, limit(param(2)), proj}), d,
                                   MergeContext{true}, e);
  ASSERT_TRUE(out) << e.message;
  auto cols = parse_row_description(*out);
  ASSERT_TRUE(cols);
  ASSERT_EQ(cols->size(), 1u);
  EXPECT_EQ((*cols)[0].name, "avg");
  EXPECT_EQ((*cols)[0].type_oid, 1700u);
  EXPECT_EQ((*cols)[0].typlen, -1);
  EXPECT_EQ((*cols)[0].typmod, -1);
  EXPECT_EQ((*cols)[0].format, 1);
  auto bad = rd({col("avg", 701), col("count", 20)});
  EXPECT_FALSE(final_row_description(plan_of({op(Kind::Concat), fa}), bad, MergeContext{true}, e));
  EXPECT_EQ(e.sqlstate, "0A000");
}

TEST(OpsPipeline, RejectsPlansWithoutALeaf) {
  Built b;
  build(b, plan_of({limit(constant(1))}), 1);
  EXPECT_FALSE(b.p);
  EXPECT_EQ(b.error.sqlstate, "XX000");
  Built c;
  build(c, plan_of({}), 1);
  EXPECT_FALSE(c.p);
}

}  // namespace
}  // namespace shardline::proxy::exec::ops
