#include "router/planner/having_predicate.hpp"

namespace shardline::router {

namespace {

using Node = PgQuery__Node;

/// A constant (as text in PostgreSQL's input syntax) or a parameter; false for anything else
/// (NULL included: a comparison with NULL is never true, and is better left to the server).
bool operand(const Node* n, Predicate& p) {
  if (!n) return false;
  if (n->node_case == PG_QUERY__NODE__NODE_PARAM_REF) {
    p.param = n->param_ref->number;
    return p.param > 0;
  }
  if (n->node_case != PG_QUERY__NODE__NODE_A_CONST || n->a_const->isnull) return false;
  const auto* c = n->a_const;
  switch (c->val_case) {
    case PG_QUERY__A__CONST__VAL_IVAL: p.constant = std::to_string(c->ival ? c->ival->ival : 0); return true;
    case PG_QUERY__A__CONST__VAL_FVAL: p.constant = c->fval && c->fval->fval ? c->fval->fval : "0"; return true;
    case PG_QUERY__A__CONST__VAL_SVAL: p.constant = c->sval && c->sval->sval ? c->sval->sval : ""; return true;
    case PG_QUERY__A__CONST__VAL_BOOLVAL: p.constant = c->boolval && c->boolval->boolval ? "t" : "f"; return true;
    default: return false;
  }
}

std::optional<Predicate::Op> comparison(const PgQuery__AExpr* e, bool flipped) {
  if (e->kind != PG_QUERY__A__EXPR__KIND__AEXPR_OP || e->n_name != 1 || !e->name[0] ||
      e->name[0]->node_case != PG_QUERY__NODE__NODE_STRING)
    return std::nullopt;
  const std::string_view op = e->name[0]->string->sval;
  using Op = Predicate::Op;
  if (op == "=") return Op::Eq;
  if (op == "<>") return Op::Ne;
  if (op == "<") return flipped ? Op::Gt : Op::Lt;
  if (op == "<=") return flipped ? Op::Ge : Op::Le;
  if (op == ">") return flipped ? Op::Lt : Op::Gt;
  if (op == ">=") return flipped ? Op::Le : Op::Ge;
  return std::nullopt;
}

std::optional<Predicate> build(const Node* n, const ColumnOf& column_of, std::string& refusal) {
  Predicate p;
  if (n && n->node_case == PG_QUERY__NODE__NODE_BOOL_EXPR) {
    const auto* b = n->bool_expr;
    p.kind = b->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR  ? Predicate::Kind::And
             : b->boolop == PG_QUERY__BOOL_EXPR_TYPE__OR_EXPR ? Predicate::Kind::Or
                                                              : Predicate::Kind::Not;
    for (std::size_t i = 0; i < b->n_args; ++i) {
      auto a = build(b->args[i], column_of, refusal);
      if (!a) return std::nullopt;
      p.args.push_back(std::move(*a));
    }
    if (p.kind == Predicate::Kind::Not ? p.args.size() != 1 : p.args.size() < 2) return std::nullopt;
    return p;
  }
  if (n && n->node_case == PG_QUERY__NODE__NODE_NULL_TEST && !n->null_test->argisrow) {
    auto c = column_of(n->null_test->arg);
    if (!c) return std::nullopt;
    p.kind = n->null_test->nulltesttype == PG_QUERY__NULL_TEST_TYPE__IS_NULL ? Predicate::Kind::IsNull
                                                                             : Predicate::Kind::IsNotNull;
    p.column = *c;
    return p;
  }
  if (n && n->node_case == PG_QUERY__NODE__NODE_A_EXPR) {
    const auto* e = n->a_expr;
    p.kind = Predicate::Kind::Compare;
    for (bool flipped : {false, true}) {
      const Node* col = flipped ? e->rexpr : e->lexpr;
      const Node* val = flipped ? e->lexpr : e->rexpr;
      Predicate q = p;
      auto op = comparison(e, flipped);
      if (!op || !operand(val, q)) continue;
      auto c = column_of(col);
      if (!c) return std::nullopt;
      q.op = *op;
      q.column = *c;
      return q;
    }
    return std::nullopt;
  }
  // A boolean column on its own (HAVING bool_and(ok)) is `= true`.
  if (auto c = column_of(n)) {
    p.kind = Predicate::Kind::Compare;
    p.column = *c;
    p.constant = "t";
    return p;
  }
  return std::nullopt;
}

}  // namespace

std::optional<Predicate> having_predicate(const Node* having, const ColumnOf& column_of, std::string& refusal) {
  auto p = build(having, column_of, refusal);
  if (!p && refusal.empty())
    refusal = "HAVING conditions other than comparisons of aggregates or GROUP BY keys with constants or parameters";
  return p;
}

}  // namespace shardline::router
