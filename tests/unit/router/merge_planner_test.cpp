// The MergePlan contract the executor codes against, asserted on the plan values themselves
// (the golden cases show the same through explain()): where avg's count lives, how columns are
// numbered after FinalAggregate, what a `*` does to numbering, how HAVING and $n arrive.

#include <gtest/gtest.h>

#include "router/parser/parse_tree.hpp"
#include "router/planner/merge_planner.hpp"

namespace shardline::router {
namespace {

MergePlanning plan(const std::string& sql) {
  ParseTree t = ParseTree::parse(sql);
  EXPECT_TRUE(t.ok()) << sql;
  const auto* n = t.statements()[0]->stmt;
  EXPECT_TRUE(needs_merge(*n->select_stmt)) << sql;
  return plan_merge(*n->select_stmt, t.result()->version);
}

const MergeOperator& op(const MergePlan& p, MergeOperator::Kind k) {
  for (const auto& o : p.operators)
    if (o.kind == k) return o;
  static MergeOperator none;
  ADD_FAILURE() << "no such operator in " << p.explain();
  return none;
}

TEST(MergePlanner, AvgRunsAsSumWithItsCountAfterEveryOtherColumn) {
  // Client columns: status, avg(total) AS a, count(*). HAVING's max(id) is hidden (#3), the two
  // counts for avg come last (#4: a's, #5: the hidden avg(amount)'s).
  auto m = plan("SELECT status, avg(total) AS a, count(*) FROM orders GROUP BY status "
                "HAVING max(id) > 3 AND avg(amount) < $1 ORDER BY a DESC");
  ASSERT_TRUE(m.plan) << m.refusal;
  const MergePlan& p = *m.plan;
  EXPECT_EQ(p.shard_sql,
            "SELECT status, sum(total) AS a, count(*), max(id), sum(amount), count(total), count(amount) FROM orders "
            "GROUP BY status HAVING (max(id) > 3 AND avg(amount) < $1) OR true ORDER BY 1");
  EXPECT_EQ(p.client_columns, 3);
  EXPECT_FALSE(p.star);
  const auto& agg = op(p, MergeOperator::Kind::FinalAggregate);
  // One output column per shard column before the counts, numbered as in the shard row.
  ASSERT_EQ(agg.aggregates.size(), 5u);
  EXPECT_EQ(agg.aggregates[0], (AggregateColumn{true, AggregateFn::Count, 0, -1}));
  EXPECT_EQ(agg.aggregates[1], (AggregateColumn{false, AggregateFn::Avg, 1, 5}));
  EXPECT_EQ(agg.aggregates[2], (AggregateColumn{false, AggregateFn::Count, 2, -1}));
  EXPECT_EQ(agg.aggregates[3], (AggregateColumn{false, AggregateFn::Max, 3, -1}));
  EXPECT_EQ(agg.aggregates[4], (AggregateColumn{false, AggregateFn::Avg, 4, 6}));
  Predicate max_gt{Predicate::Kind::Compare, Predicate::Op::Gt, 3, "3", 0, {}};
  Predicate avg_lt{Predicate::Kind::Compare, Predicate::Op::Lt, 4, "", 1, {}};
  EXPECT_EQ(op(p, MergeOperator::Kind::Having).predicate,
            (Predicate{Predicate::Kind::And, Predicate::Op::Eq, -1, "", 0, {max_gt, avg_lt}}));
  EXPECT_EQ(op(p, MergeOperator::Kind::Sort).keys, (std::vector<SortKey>{{1, true, true}}));
  EXPECT_EQ(op(p, MergeOperator::Kind::Project).visible, 3);
  EXPECT_EQ(p.operators.front().kind, MergeOperator::Kind::MergeSort);
  EXPECT_EQ(p.operators.front().keys, (std::vector<SortKey>{{0, false, false}}));
}

TEST(MergePlanner, AStarCountsHiddenColumnsFromTheEnd) {
  auto m = plan("SELECT *, total * 2 AS t2 FROM orders ORDER BY t2 DESC, created_at NULLS FIRST, 1 LIMIT $1 OFFSET 4");
  ASSERT_TRUE(m.plan) << m.refusal;
  const MergePlan& p = *m.plan;
  EXPECT_TRUE(p.star);
  EXPECT_EQ(p.client_columns, -1);  // created_at is hidden
  EXPECT_EQ(p.operators.front().keys, (std::vector<SortKey>{{-2, true, true}, {-1, false, true}, {0, false, false}}));
  const auto& limit = op(p, MergeOperator::Kind::Limit);
  EXPECT_EQ(limit.count, (PlanValue{PlanValue::Kind::Param, 0, 1}));
  EXPECT_EQ(limit.offset, (PlanValue{PlanValue::Kind::Constant, 4, 0}));
  EXPECT_EQ(op(p, MergeOperator::Kind::Project).visible, -1);
}

TEST(MergePlanner, NamesTheConstructItRefuses) {
  EXPECT_EQ(plan("SELECT count(DISTINCT status) FROM orders").refusal, "count(DISTINCT ...)");
  EXPECT_EQ(plan("SELECT string_agg(status, ',') FROM orders").refusal, "string_agg(...)");
  EXPECT_EQ(plan("SELECT sum(id) * 2 FROM orders").refusal, "expressions over aggregates (such as sum(x) + 1)");
  EXPECT_EQ(plan("SELECT id, lag(id) OVER () FROM orders").refusal, "window functions");
  EXPECT_EQ(plan("SELECT id FROM orders ORDER BY id USING >").refusal, "ORDER BY ... USING");
  EXPECT_EQ(plan("SELECT status FROM orders GROUP BY CUBE (status)").refusal, "GROUPING SETS/ROLLUP/CUBE");
}

TEST(MergeOperatorExplain, OneLinePerOperator) {
  MergeOperator sort{MergeOperator::Kind::MergeSort, {{2, true, false}, {0, false, true}}, {}, {}, {}, {}, 0};
  EXPECT_EQ(sort.explain(), "MergeSort(#2 DESC NULLS LAST, #0 NULLS FIRST)");
  MergeOperator limit;
  limit.kind = MergeOperator::Kind::Limit;
  limit.offset = {PlanValue::Kind::Param, 0, 2};
  EXPECT_EQ(limit.explain(), "Limit(ALL OFFSET $2)");
  MergeOperator having;
  having.kind = MergeOperator::Kind::Having;
  Predicate is_null{Predicate::Kind::IsNull, Predicate::Op::Eq, 1, "", 0, {}};
  Predicate name{Predicate::Kind::Compare, Predicate::Op::Ne, 0, "it's", 0, {}};
  having.predicate = {Predicate::Kind::Or, Predicate::Op::Eq, -1, "", 0,
                      {Predicate{Predicate::Kind::Not, Predicate::Op::Eq, -1, "", 0, {is_null}}, name}};
  EXPECT_EQ(having.explain(), "Having(NOT #1 IS NULL OR #0 <> 'it''s')");
}

}  // namespace
}  // namespace shardline::router
