#include "router/planner/aggregate_call.hpp"

#include <set>

#include "router/parser/parse_tree.hpp"

namespace shardline::router {

namespace {

using Node = PgQuery__Node;

/// The function's name when it is a built-in one: unqualified or pg_catalog.
std::string builtin_name(const PgQuery__FuncCall* f) {
  if (f->n_funcname == 0 || f->n_funcname > 2) return {};
  for (std::size_t i = 0; i < f->n_funcname; ++i)
    if (!f->funcname[i] || f->funcname[i]->node_case != PG_QUERY__NODE__NODE_STRING) return {};
  if (f->n_funcname == 2 && std::string_view(f->funcname[0]->string->sval) != "pg_catalog") return {};
  return f->funcname[f->n_funcname - 1]->string->sval;
}

/// PostgreSQL 15's built-in aggregates (pg_aggregate), beyond the ones the merge combines.
bool builtin_aggregate(const std::string& name) {
  static const std::set<std::string> kNames = {
      "count", "sum", "avg", "min", "max", "bool_and", "bool_or", "every", "array_agg", "string_agg",
      "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg", "xmlagg", "range_agg",
      "range_intersect_agg", "bit_and", "bit_or", "bit_xor", "stddev", "stddev_pop", "stddev_samp",
      "variance", "var_pop", "var_samp", "corr", "covar_pop", "covar_samp", "regr_avgx", "regr_avgy",
      "regr_count", "regr_intercept", "regr_r2", "regr_slope", "regr_sxx", "regr_sxy", "regr_syy",
      "percentile_cont", "percentile_disc", "mode", "rank", "dense_rank", "percent_rank", "cume_dist",
      "any_value"};
  return kNames.count(name) > 0;
}

bool is_aggregate_call(const PgQuery__FuncCall* f) {
  return f->agg_star || f->agg_distinct || f->n_agg_order || f->agg_filter || f->agg_within_group ||
         builtin_aggregate(builtin_name(f));
}

}  // namespace

bool any_node(const Node* n, const std::function<bool(const Node*)>& visit) {
  if (!n || n->node_case == PG_QUERY__NODE__NODE__NOT_SET) return false;
  if (visit(n)) return true;
  if (n->node_case == PG_QUERY__NODE__NODE_SUB_LINK) return any_node(n->sub_link->testexpr, visit);
  if (n->node_case == PG_QUERY__NODE__NODE_SELECT_STMT) return false;
  return any_child(n, [&](const Node* c) { return any_node(c, visit); });
}

bool has_aggregate_or_window(const Node* n) {
  return any_node(n, [](const Node* x) {
    return x->node_case == PG_QUERY__NODE__NODE_FUNC_CALL && (x->func_call->over || is_aggregate_call(x->func_call));
  });
}

AggregateUse classify_aggregate(const Node* n) {
  AggregateUse use;
  const Node* window = nullptr;
  any_node(n, [&](const Node* x) {
    if (x->node_case == PG_QUERY__NODE__NODE_FUNC_CALL && x->func_call->over) window = x;
    return window != nullptr;
  });
  if (window) {
    use.kind = AggregateUse::Kind::Refused;
    use.refusal = "window functions";
    return use;
  }
  if (!n || n->node_case != PG_QUERY__NODE__NODE_FUNC_CALL || !is_aggregate_call(n->func_call)) {
    if (has_aggregate_or_window(n)) {
      use.kind = AggregateUse::Kind::Refused;
      use.refusal = "expressions over aggregates (such as sum(x) + 1)";
    }
    return use;
  }
  const auto* f = n->func_call;
  const std::string name = builtin_name(f);
  use.kind = AggregateUse::Kind::Refused;
  const std::string shown = (name.empty() ? std::string("user-defined aggregate") : name);
  if (f->agg_distinct) {
    use.refusal = shown + "(DISTINCT ...)";
    return use;
  }
  if (f->agg_within_group) {
    use.refusal = "ordered-set aggregate " + shown + "(...) WITHIN GROUP";
    return use;
  }
  if (f->n_agg_order) {
    use.refusal = shown + "(... ORDER BY ...)";
    return use;
  }
  for (std::size_t i = 0; i < f->n_args; ++i)
    if (has_aggregate_or_window(f->args[i])) {
      use.refusal = "nested aggregates";
      return use;
    }
  static const std::pair<const char*, AggregateFn> kMergeable[] = {
      {"count", AggregateFn::Count}, {"sum", AggregateFn::Sum},          {"min", AggregateFn::Min},
      {"max", AggregateFn::Max},     {"avg", AggregateFn::Avg},          {"bool_and", AggregateFn::BoolAnd},
      {"every", AggregateFn::BoolAnd}, {"bool_or", AggregateFn::BoolOr}};
  const bool arity = f->agg_star ? name == "count" && f->n_args == 0 : f->n_args == 1 && !f->func_variadic;
  for (const auto& [mname, fn] : kMergeable) {
    if (name != mname || !arity) continue;
    use.kind = AggregateUse::Kind::Call;
    use.fn = fn;
    use.call = f;
    return use;
  }
  use.refusal = shown + "(...)";
  return use;
}

}  // namespace shardline::router
