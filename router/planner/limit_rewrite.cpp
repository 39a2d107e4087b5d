#include "router/planner/limit_rewrite.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdlib>

namespace shardline::router {

namespace {

using Node = PgQuery__Node;

std::string param_text(int p) { return "$" + std::to_string(p) + "::bigint"; }

}  // namespace

std::optional<PlanValue> plan_value(const Node* n) {
  PlanValue v;
  if (!n) return v;
  if (n->node_case == PG_QUERY__NODE__NODE_PARAM_REF) {
    v.kind = PlanValue::Kind::Param;
    v.param = n->param_ref->number;
    return v;
  }
  if (n->node_case != PG_QUERY__NODE__NODE_A_CONST) return std::nullopt;
  const auto* c = n->a_const;
  if (c->isnull) return v;
  if (c->val_case == PG_QUERY__A__CONST__VAL_IVAL) {
    v.kind = PlanValue::Kind::Constant;
    v.constant = c->ival ? c->ival->ival : 0;
    return v;
  }
  if (c->val_case == PG_QUERY__A__CONST__VAL_FVAL && c->fval && c->fval->fval) {  // an integer beyond int32
    const char* s = c->fval->fval;
    char* end = nullptr;
    errno = 0;
    long long x = std::strtoll(s, &end, 10);
    if (errno || !end || *end) return std::nullopt;
    v.kind = PlanValue::Kind::Constant;
    v.constant = x;
    return v;
  }
  return std::nullopt;
}

void rewrite_limit(TreeBuilder& b, const PgQuery__SelectStmt& s, const PlanValue& count, const PlanValue& offset, bool pushed,
                   PgQuery__SelectStmt& q) {
  using K = PlanValue::Kind;
  q.limit_count = nullptr;
  q.limit_offset = nullptr;
  if ((count.kind == K::Constant && count.constant < 0) || (offset.kind == K::Constant && offset.constant < 0)) {
    q.limit_count = s.limit_count;
    q.limit_offset = s.limit_offset;
    return;
  }
  std::string anchor;
  for (const PlanValue* v : {&count, &offset})
    if (v->kind == K::Param && (!pushed || count.kind == K::None)) anchor += " * " + param_text(v->param);
  if (!anchor.empty()) q.limit_offset = b.expression("(0" + anchor + ")");
  if (!pushed || count.kind == K::None) return;
  q.limit_option = PG_QUERY__LIMIT_OPTION__LIMIT_OPTION_COUNT;
  if (count.kind == K::Constant && offset.kind != K::Param) {
    const std::int64_t off = offset.kind == K::Constant ? offset.constant : 0;
    if (count.constant > INT64_MAX - off) return;  // no limit rather than an overflow
    q.limit_count = b.expression(std::to_string(count.constant + off));
  } else if (offset.kind == K::None || (offset.kind == K::Constant && offset.constant == 0)) {
    q.limit_count = s.limit_count;
  } else {
    const std::string c = count.kind == K::Param ? param_text(count.param) : std::to_string(count.constant);
    const std::string o = offset.kind == K::Param ? "coalesce(" + param_text(offset.param) + ", 0)"
                                                  : std::to_string(offset.constant);
    // count + offset may exceed bigint where each alone does not: then no limit.
    q.limit_count = b.expression("CASE WHEN (" + c + ")::numeric + " + o + " > 9223372036854775807 THEN NULL ELSE " + c +
                                 " + " + o + " END");
  }
}

}  // namespace shardline::router
