#pragma once
// How an expression of a SELECT takes part in aggregation, for the merge planner: a call the
// shards can compute partially and the proxy combine exactly (count, sum, min, max, avg,
// bool_and/bool_or/every, with FILTER), no aggregate at all, or something that cannot be merged
// (count(DISTINCT x), string_agg, an expression over an aggregate, a window function), named.

#include <functional>
#include <string>

#include <pg_query/pg_query.pb-c.h>

#include "router/plan/merge_plan.hpp"

namespace shardline::router {

struct AggregateUse {
  enum class Kind { None, Call, Refused } kind = Kind::None;
  AggregateFn fn = AggregateFn::Count;     ///< Call
  const PgQuery__FuncCall* call = nullptr;  ///< Call: the aggregate (the expression itself)
  std::string refusal;                     ///< Refused: the construct, e.g. "count(DISTINCT ...)"
};

AggregateUse classify_aggregate(const PgQuery__Node* n);

/// Calls `visit` on `n` and every node below it, not descending into sub-selects (their
/// aggregates and windows are their own); stops early when `visit` returns true.
bool any_node(const PgQuery__Node* n, const std::function<bool(const PgQuery__Node*)>& visit);

/// An aggregate or window call anywhere in `n` (outside sub-selects).
bool has_aggregate_or_window(const PgQuery__Node* n);

}  // namespace shardline::router
