#include "router/planner/tree_builder.hpp"

#include <pg_query.h>

namespace shardline::router {

char* TreeBuilder::string(const std::string& s) {
  strings_.push_back(std::make_unique<std::string>(s));
  return strings_.back()->data();
}

PgQuery__Node* TreeBuilder::expression(const std::string& sql) {
  parsed_.push_back(ParseTree::parse("SELECT " + sql));
  const ParseTree& t = parsed_.back();
  if (!t.ok() || t.statements().size() != 1) return nullptr;
  const PgQuery__Node* stmt = t.statements()[0]->stmt;
  if (!stmt || stmt->node_case != PG_QUERY__NODE__NODE_SELECT_STMT || stmt->select_stmt->n_target_list != 1) return nullptr;
  return stmt->select_stmt->target_list[0]->res_target->val;
}

PgQuery__Node* TreeBuilder::sort_by_ordinal(int ordinal, bool descending, bool nulls_first) {
  // PostgreSQL's defaults (NULLS LAST for ASC, FIRST for DESC) are left unsaid.
  std::string sql = "1 ORDER BY " + std::to_string(ordinal) + (descending ? " DESC" : "") +
                    (nulls_first == descending ? "" : nulls_first ? " NULLS FIRST" : " NULLS LAST");
  parsed_.push_back(ParseTree::parse("SELECT " + sql));
  const ParseTree& t = parsed_.back();
  if (!t.ok()) return nullptr;
  return t.statements()[0]->stmt->select_stmt->sort_clause[0];
}

PgQuery__Node* TreeBuilder::res_target(PgQuery__Node* val, const std::string& alias) {
  auto rt = std::make_unique<PgQuery__ResTarget>();
  pg_query__res_target__init(rt.get());
  rt->val = val;
  if (!alias.empty()) rt->name = string(alias);
  rt->location = -1;
  auto n = std::make_unique<PgQuery__Node>();
  pg_query__node__init(n.get());
  n->node_case = PG_QUERY__NODE__NODE_RES_TARGET;
  n->res_target = keep(std::move(rt));
  return keep(std::move(n));
}

PgQuery__Node* TreeBuilder::renamed_call(const PgQuery__FuncCall& f, const std::string& name) {
  auto s = std::make_unique<PgQuery__String>();
  pg_query__string__init(s.get());
  s->sval = string(name);
  auto sn = std::make_unique<PgQuery__Node>();
  pg_query__node__init(sn.get());
  sn->node_case = PG_QUERY__NODE__NODE_STRING;
  sn->string = keep(std::move(s));
  auto names = std::make_unique<PgQuery__Node*[]>(1);
  names[0] = keep(std::move(sn));
  auto call = std::make_unique<PgQuery__FuncCall>(f);  // shares args and FILTER with `f`
  call->n_funcname = 1;
  call->funcname = names.get();
  owned_.push_back(std::shared_ptr<void>(names.release(), [](void* p) { delete[] static_cast<PgQuery__Node**>(p); }));
  auto n = std::make_unique<PgQuery__Node>();
  pg_query__node__init(n.get());
  n->node_case = PG_QUERY__NODE__NODE_FUNC_CALL;
  n->func_call = keep(std::move(call));
  return keep(std::move(n));
}

PgQuery__Node* TreeBuilder::or_true(PgQuery__Node* a) {
  PgQuery__Node* e = expression("NULL OR true");
  if (!e || e->node_case != PG_QUERY__NODE__NODE_BOOL_EXPR || e->bool_expr->n_args != 2) return nullptr;
  // A copy pointing at `a`: the parse's own tree is freed by its owner and must not hold `a`.
  auto args = std::make_unique<PgQuery__Node*[]>(2);
  args[0] = a;
  args[1] = e->bool_expr->args[1];
  auto b = std::make_unique<PgQuery__BoolExpr>(*e->bool_expr);
  b->args = args.get();
  owned_.push_back(std::shared_ptr<void>(args.release(), [](void* p) { delete[] static_cast<PgQuery__Node**>(p); }));
  auto n = std::make_unique<PgQuery__Node>(*e);
  n->bool_expr = keep(std::move(b));
  return keep(std::move(n));
}

std::optional<std::string> TreeBuilder::deparse(const PgQuery__SelectStmt& s, std::string* error) {
  PgQuery__SelectStmt copy = s;
  PgQuery__Node node;
  pg_query__node__init(&node);
  node.node_case = PG_QUERY__NODE__NODE_SELECT_STMT;
  node.select_stmt = &copy;
  PgQuery__RawStmt raw;
  pg_query__raw_stmt__init(&raw);
  raw.stmt = &node;
  PgQuery__RawStmt* stmts[] = {&raw};
  PgQuery__ParseResult result;
  pg_query__parse_result__init(&result);
  result.version = version_;
  result.n_stmts = 1;
  result.stmts = stmts;
  std::string buf(pg_query__parse_result__get_packed_size(&result), '\0');
  pg_query__parse_result__pack(&result, reinterpret_cast<uint8_t*>(buf.data()));
  PgQueryDeparseResult d = pg_query_deparse_protobuf(PgQueryProtobuf{buf.size(), buf.data()});
  std::optional<std::string> out;
  if (d.error) {
    if (error) *error = d.error->message;
  } else {
    out = d.query;
  }
  pg_query_free_deparse_result(d);
  return out;
}

const std::string& TreeBuilder::text(const PgQuery__Node* n) {
  for (const auto& [node, t] : texts_)
    if (node == n) return t;
  // A column reference, the commonest case, without the deparser: its names are its identity
  // (and a text no deparsed expression has, so it equals only the same reference).
  if (n && n->node_case == PG_QUERY__NODE__NODE_COLUMN_REF) {
    std::string key = "\x01";
    bool plain = true;
    for (std::size_t i = 0; i < n->column_ref->n_fields && plain; ++i) {
      const PgQuery__Node* f = n->column_ref->fields[i];
      plain = f && f->node_case == PG_QUERY__NODE__NODE_STRING;
      if (plain) key += std::string(f->string->sval) + "\x01";
    }
    if (plain) {
      texts_.emplace_back(n, std::move(key));
      return texts_.back().second;
    }
  }
  PgQuery__SelectStmt s;
  pg_query__select_stmt__init(&s);
  PgQuery__ResTarget rt;
  pg_query__res_target__init(&rt);
  rt.val = const_cast<PgQuery__Node*>(n);  // only packed, never changed
  PgQuery__Node rn;
  pg_query__node__init(&rn);
  rn.node_case = PG_QUERY__NODE__NODE_RES_TARGET;
  rn.res_target = &rt;
  PgQuery__Node* targets[] = {&rn};
  s.n_target_list = 1;
  s.target_list = targets;
  s.op = PG_QUERY__SET_OPERATION__SETOP_NONE;
  s.limit_option = PG_QUERY__LIMIT_OPTION__LIMIT_OPTION_DEFAULT;
  std::string text = deparse(s, nullptr).value_or("");
  if (text.rfind("SELECT ", 0) == 0) text.erase(0, 7);
  // A failed deparse gives each node a text of its own, equal to no other.
  if (text.empty()) text = "<" + std::to_string(reinterpret_cast<std::uintptr_t>(n)) + ">";
  texts_.emplace_back(n, std::move(text));
  return texts_.back().second;
}

}  // namespace shardline::router
