// The route template of a query string: one parse, one walk of the tree (the Analyzer below)
// that classifies the tables, finds the tenant keys and their values, the writes, replica
// safety and set_config calls, and hands top-level cross-shard reads to the merge planner.
// Longer than our usual ~500 lines because the Analyzer is one recursive walk whose cases share
// its scope state; the pieces with their own concerns live elsewhere (merge_planner.*,
// key_resolver.*, parse_tree.hpp).

#include "router/planner/route_template.hpp"

#include <pg_query.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <numeric>
#include <set>

#include "router/parser/parse_tree.hpp"
#include "router/planner/merge_planner.hpp"

namespace shardline::router {

namespace {

using Node = PgQuery__Node;

std::string lower(std::string_view s) {
  std::string o(s);
  for (auto& c : o) c = char(std::tolower(static_cast<unsigned char>(c)));
  return o;
}

/// A sharded relation (table occurrence) in the statement.
struct Rel {
  const ShardedTableInfo* table;
  std::string alias;  ///< alias if given, else the table name
};

/// A SELECT scope: the relations its FROM list brings in, and its parent scope.
struct Scope {
  int parent = -1;
  std::vector<std::pair<std::string, int>> names;  ///< alias/name -> rel id (sharded only)
  std::vector<std::string> other_names;            ///< non-sharded FROM items (shadowing)
};

/// Facts from AND-ed predicates: key restrictions and key equalities between relations.
struct Facts {
  std::vector<std::pair<int, KeySet>> atoms;  ///< rel -> allowed values
  std::vector<std::pair<int, int>> joins;     ///< rel a.key = rel b.key
};

class Analyzer {
 public:
  Analyzer(const ShardingSchema& schema, TemplateStatement& out) : schema_(schema), out_(out) {}

  void statement(const Node* n) {
    dispatch(n);
    finish();
  }

 private:
  void dispatch(const Node* n) {
    if (!n) return;
    switch (n->node_case) {
      case PG_QUERY__NODE__NODE_SELECT_STMT:
        select(n->select_stmt, -1, /*top=*/true);
        break;
      case PG_QUERY__NODE__NODE_INSERT_STMT:
        insert(n->insert_stmt);
        break;
      case PG_QUERY__NODE__NODE_UPDATE_STMT:
        update(n->update_stmt);
        break;
      case PG_QUERY__NODE__NODE_DELETE_STMT:
        del(n->delete_stmt);
        break;
      case PG_QUERY__NODE__NODE_COPY_STMT:
        copy(n->copy_stmt);
        break;
      case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
        dispatch(n->explain_stmt->query);
        break;
      case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
        // The cursor's rows are its query's: it routes like the query (the grammar allows only
        // a SELECT there), and its ORDER BY/LIMIT matter as for a top-level SELECT.
        if (const Node* q = n->declare_cursor_stmt->query; q && q->node_case == PG_QUERY__NODE__NODE_SELECT_STMT)
          select(q->select_stmt, -1, /*top=*/true);
        break;
      default:
        break;  // DDL and utility statements: tables come from Statement::tables
    }
  }

  // ---- scopes and relations -------------------------------------------------------------------

  int new_scope(int parent) {
    scopes_.push_back(Scope{parent, {}, {}});
    return int(scopes_.size()) - 1;
  }

  void add_range_var(const PgQuery__RangeVar* rv, int scope) {
    if (!rv) return;
    TableRef ref{rv->schemaname ? rv->schemaname : "", rv->relname ? rv->relname : ""};
    std::string alias = rv->alias && rv->alias->aliasname ? rv->alias->aliasname : ref.name;
    if (ref.schema.empty() && cte_names_.count(ref.name)) {
      scopes_[std::size_t(scope)].other_names.push_back(alias);
      return;
    }
    if (const auto* t = schema_.sharded(ref)) {
      rels_.push_back(Rel{t, alias});
      scopes_[std::size_t(scope)].names.emplace_back(alias, int(rels_.size()) - 1);
      return;
    }
    scopes_[std::size_t(scope)].other_names.push_back(alias);
  }

  void from_item(const Node* n, int scope, Facts& facts) {
    if (!n) return;
    switch (n->node_case) {
      case PG_QUERY__NODE__NODE_RANGE_VAR:
        add_range_var(n->range_var, scope);
        break;
      case PG_QUERY__NODE__NODE_JOIN_EXPR: {
        const auto* j = n->join_expr;
        std::size_t before = rels_.size();
        from_item(j->larg, scope, facts);
        std::size_t mid = rels_.size();
        from_item(j->rarg, scope, facts);
        if (j->quals) conjuncts(j->quals, scope, facts);
        // JOIN ... USING (key): the key columns of both sides are equal.
        for (std::size_t u = 0; u < j->n_using_clause; ++u) {
          const Node* c = j->using_clause[u];
          if (!c || c->node_case != PG_QUERY__NODE__NODE_STRING) continue;
          std::string col = c->string->sval;
          for (std::size_t a = before; a < mid; ++a)
            for (std::size_t b = mid; b < rels_.size(); ++b)
              if (rels_[a].table->key == col && rels_[b].table->key == col) facts.joins.emplace_back(int(a), int(b));
        }
        break;
      }
      case PG_QUERY__NODE__NODE_RANGE_SUBSELECT: {
        const auto* rs = n->range_subselect;
        if (rs->subquery && rs->subquery->node_case == PG_QUERY__NODE__NODE_SELECT_STMT)
          select(rs->subquery->select_stmt, scope, false);
        if (rs->alias && rs->alias->aliasname) scopes_[std::size_t(scope)].other_names.push_back(rs->alias->aliasname);
        break;
      }
      default:
        walk_expr(n, scope);  // table functions and such: only look for subqueries
        break;
    }
  }

  /// Resolves a column reference to a sharded relation whose key it names, or -1.
  int key_rel(const Node* n, int scope) const {
    while (n && n->node_case == PG_QUERY__NODE__NODE_TYPE_CAST) n = n->type_cast->arg;
    if (!n || n->node_case != PG_QUERY__NODE__NODE_COLUMN_REF) return -1;
    const auto* cr = n->column_ref;
    std::vector<std::string> parts;
    for (std::size_t i = 0; i < cr->n_fields; ++i) {
      const Node* f = cr->fields[i];
      if (!f || f->node_case != PG_QUERY__NODE__NODE_STRING) return -1;
      parts.emplace_back(f->string->sval);
    }
    if (parts.empty()) return -1;
    const std::string& col = parts.back();
    for (int s = scope; s >= 0; s = scopes_[std::size_t(s)].parent) {
      const Scope& sc = scopes_[std::size_t(s)];
      if (parts.size() >= 2) {
        const std::string& qual = parts[parts.size() - 2];
        for (const auto& [name, rel] : sc.names)
          if (name == qual) return rels_[std::size_t(rel)].table->key == col ? rel : -1;
        for (const auto& other : sc.other_names)
          if (other == qual) return -1;
      } else {
        int found = -1, count = 0;
        for (const auto& [name, rel] : sc.names)
          if (rels_[std::size_t(rel)].table->key == col) {
            found = rel;
            ++count;
          }
        if (count == 1) return found;
        if (count > 1) return -1;  // ambiguous: PostgreSQL refuses it anyway
        if (!sc.names.empty() || !sc.other_names.empty()) {
          // Not a key of this scope's sharded tables; an outer scope may still own it.
        }
      }
    }
    return -1;
  }

  // ---- constants ------------------------------------------------------------------------------

  /// The type a cast names, if it is one a key value can meaningfully pass through.
  /// `array`: the cast of an ARRAY[...] (type[]), whose element type applies to each element.
  static std::optional<KeyOp> cast_op(const PgQuery__TypeName* tn, bool array = false) {
    if (!tn || tn->n_array_bounds != (array ? 1u : 0u) || tn->setof || tn->n_names == 0 || tn->n_names > 2) return std::nullopt;
    std::vector<std::string> names;
    for (std::size_t i = 0; i < tn->n_names; ++i) {
      const Node* s = tn->names[i];
      if (!s || s->node_case != PG_QUERY__NODE__NODE_STRING) return std::nullopt;
      names.emplace_back(s->string->sval);
    }
    if (names.size() == 2 && names[0] != "pg_catalog") return std::nullopt;
    static const std::pair<const char*, SqlType> kTypes[] = {
        {"int2", SqlType::Int2},       {"int4", SqlType::Int4},       {"int8", SqlType::Int8},
        {"numeric", SqlType::Numeric}, {"float4", SqlType::Float4},   {"float8", SqlType::Float8},
        {"text", SqlType::Text},       {"varchar", SqlType::Text},    {"uuid", SqlType::Uuid}};
    for (const auto& [name, type] : kTypes) {
      if (names.back() != name) continue;
      KeyOp op{KeyOp::Kind::Cast, type, -1};
      if (tn->n_typmods == 0) return op;
      // varchar(n) truncates on an explicit cast; other modifiers (numeric(p,s)) are not modelled.
      const Node* m = tn->typmods[0];
      if (names.back() != std::string("varchar") || tn->n_typmods != 1 || !m ||
          m->node_case != PG_QUERY__NODE__NODE_A_CONST || m->a_const->val_case != PG_QUERY__A__CONST__VAL_IVAL)
        return std::nullopt;
      op.typmod = m->a_const->ival ? m->a_const->ival->ival : 0;
      return op;
    }
    return std::nullopt;
  }

  /// A constant or parameter under any prefix `-`/`+` and casts, as PostgreSQL's grammar leaves
  /// them (it folds `-5` into the constant, but not `-$1` or `- 5::bigint`); nullopt for any
  /// other expression.
  static std::optional<KeyValue> constant(const Node* n) {
    std::vector<KeyOp> ops;  // outermost first while walking down
    for (;;) {
      if (!n) return std::nullopt;
      if (n->node_case == PG_QUERY__NODE__NODE_TYPE_CAST) {
        auto op = cast_op(n->type_cast->type_name);
        if (!op) return std::nullopt;
        ops.push_back(*op);
        n = n->type_cast->arg;
        continue;
      }
      if (n->node_case == PG_QUERY__NODE__NODE_A_EXPR && n->a_expr->kind == PG_QUERY__A__EXPR__KIND__AEXPR_OP &&
          !n->a_expr->lexpr && (is_op(n->a_expr, "-") || is_op(n->a_expr, "+"))) {
        ops.push_back(KeyOp{is_op(n->a_expr, "-") ? KeyOp::Kind::Negate : KeyOp::Kind::Plus, SqlType::Unknown, -1});
        n = n->a_expr->rexpr;
        continue;
      }
      break;
    }
    KeyValue v;
    v.ops.assign(ops.rbegin(), ops.rend());
    if (n->node_case == PG_QUERY__NODE__NODE_PARAM_REF) {
      v.kind = KeyValue::Kind::Param;
      v.param = n->param_ref->number;
      return v;
    }
    if (n->node_case != PG_QUERY__NODE__NODE_A_CONST) return std::nullopt;
    const auto* c = n->a_const;
    if (c->isnull) {
      v.kind = KeyValue::Kind::Null;
      return v;
    }
    switch (c->val_case) {
      case PG_QUERY__A__CONST__VAL_IVAL:
        v.text = std::to_string(c->ival ? c->ival->ival : 0);
        return v;
      case PG_QUERY__A__CONST__VAL_FVAL:
        v.text = c->fval && c->fval->fval ? c->fval->fval : "";
        return v;
      case PG_QUERY__A__CONST__VAL_SVAL:
        v.text = c->sval && c->sval->sval ? c->sval->sval : "";
        v.string_literal = true;
        return v;
      default:
        return std::nullopt;
    }
  }

  static bool is_op(const PgQuery__AExpr* e, std::string_view op) {
    if (e->n_name != 1 || !e->name[0] || e->name[0]->node_case != PG_QUERY__NODE__NODE_STRING) return false;
    return op == e->name[0]->string->sval;
  }

  // ---- predicates -----------------------------------------------------------------------------

  /// Adds the facts of an AND-ed predicate; also walks it for subqueries.
  void conjuncts(const Node* n, int scope, Facts& facts) {
    if (!n) return;
    if (n->node_case == PG_QUERY__NODE__NODE_BOOL_EXPR) {
      const auto* b = n->bool_expr;
      if (b->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR) {
        for (std::size_t i = 0; i < b->n_args; ++i) conjuncts(b->args[i], scope, facts);
        return;
      }
      if (b->boolop == PG_QUERY__BOOL_EXPR_TYPE__OR_EXPR) {
        std::vector<Facts> branches(b->n_args);
        for (std::size_t i = 0; i < b->n_args; ++i) conjuncts(b->args[i], scope, branches[i]);
        any_of(branches, facts);
        return;
      }
      walk_expr(n, scope);  // NOT: no facts
      return;
    }
    if (n->node_case == PG_QUERY__NODE__NODE_A_EXPR) {
      const auto* e = n->a_expr;
      if (e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_OP && is_op(e, "=")) {
        if (equality(e->lexpr, e->rexpr, scope, facts)) return;
        const auto* lrow = row_args(e->lexpr);
        const auto* rrow = row_args(e->rexpr);
        if (lrow && rrow && lrow->n_args == rrow->n_args) return row_equality(*lrow, *rrow, scope, facts);
      } else if (e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_IN && is_op(e, "=") && row_args(e->lexpr)) {
        // (key, x) IN ((1, 2), (3, 4)): PostgreSQL makes it an OR of row equalities, each
        // element compared on its own (no common type across the list, unlike a scalar IN).
        const auto* lrow = row_args(e->lexpr);
        if (e->rexpr && e->rexpr->node_case == PG_QUERY__NODE__NODE_LIST) {
          const auto* items = e->rexpr->list;
          bool rows = true;
          for (std::size_t i = 0; i < items->n_items && rows; ++i) {
            const auto* r = row_args(items->items[i]);
            rows = r && r->n_args == lrow->n_args;
          }
          if (rows) {
            std::vector<Facts> branches(items->n_items);
            for (std::size_t i = 0; i < items->n_items; ++i)
              row_equality(*lrow, *row_args(items->items[i]), scope, branches[i]);
            any_of(branches, facts);
            return;
          }
        }
      } else if (e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_IN && is_op(e, "=")) {
        int lr = key_rel(e->lexpr, scope);
        if (lr >= 0 && e->rexpr && e->rexpr->node_case == PG_QUERY__NODE__NODE_LIST) {
          KeySet set{true, {}};
          bool all_const = true;
          const int list = e->rexpr->list->n_items > 1 ? ++lists_ : 0;
          for (std::size_t i = 0; i < e->rexpr->list->n_items && all_const; ++i) {
            auto v = constant(e->rexpr->list->items[i]);
            if (v) {
              v->list = list;
              set.values.push_back(*v);
            } else {
              all_const = false;
            }
          }
          if (all_const) return facts.atoms.emplace_back(lr, std::move(set)), void();
        }
      } else if (e->kind == PG_QUERY__A__EXPR__KIND__AEXPR_OP_ANY && is_op(e, "=")) {
        int lr = key_rel(e->lexpr, scope);
        const Node* arr = e->rexpr;
        std::vector<KeyOp> element_casts;  // ARRAY[...]::bigint[] casts every element, outermost last
        bool casts_known = true;
        while (arr && arr->node_case == PG_QUERY__NODE__NODE_TYPE_CAST) {
          auto op = cast_op(arr->type_cast->type_name, /*array=*/true);
          if (op) element_casts.insert(element_casts.begin(), *op);
          else casts_known = false;
          arr = arr->type_cast->arg;
        }
        if (lr >= 0 && casts_known && arr && arr->node_case == PG_QUERY__NODE__NODE_A_ARRAY_EXPR) {
          KeySet set{true, {}};
          bool all_const = true;
          // ARRAY[...]::type[] coerces each element to the type; a bare ARRAY[...] takes the
          // common type of its elements first.
          const int list = element_casts.empty() ? ++lists_ : 0;
          for (std::size_t i = 0; i < arr->a_array_expr->n_elements && all_const; ++i) {
            auto v = constant(arr->a_array_expr->elements[i]);
            if (v) {
              v->list = list;
              v->array_list = list != 0;
              v->ops.insert(v->ops.end(), element_casts.begin(), element_casts.end());
              set.values.push_back(*v);
            } else {
              all_const = false;
            }
          }
          if (all_const) return facts.atoms.emplace_back(lr, std::move(set)), void();
        }
      }
    } else if (n->node_case == PG_QUERY__NODE__NODE_NULL_TEST) {
      const auto* t = n->null_test;
      int r = key_rel(t->arg, scope);
      if (r >= 0 && t->nulltesttype == PG_QUERY__NULL_TEST_TYPE__IS_NULL) {
        KeyValue v;
        v.kind = KeyValue::Kind::Null;
        facts.atoms.emplace_back(r, KeySet{true, {v}});
        return;
      }
    }
    walk_expr(n, scope);
  }

  /// `l = r` for two scalars: a key equated with a constant (an atom) or with another key (a
  /// join). False when it says nothing about keys (the caller then walks it).
  bool equality(const Node* l, const Node* r, int scope, Facts& facts) {
    int lr = key_rel(l, scope), rr = key_rel(r, scope);
    if (lr >= 0 && rr >= 0) {
      facts.joins.emplace_back(lr, rr);
      return true;
    }
    if (lr >= 0)
      if (auto v = constant(r)) return facts.atoms.emplace_back(lr, KeySet{true, {*v}}), true;
    if (rr >= 0)
      if (auto v = constant(l)) return facts.atoms.emplace_back(rr, KeySet{true, {*v}}), true;
    return false;
  }

  /// The elements of `ROW(a, b)` or `(a, b)`, or null for any other expression.
  static const PgQuery__RowExpr* row_args(const Node* n) {
    return n && n->node_case == PG_QUERY__NODE__NODE_ROW_EXPR ? n->row_expr : nullptr;
  }

  /// `(a, b) = (c, d)` is `a = c AND b = d` (rows of equal length).
  void row_equality(const PgQuery__RowExpr& l, const PgQuery__RowExpr& r, int scope, Facts& facts) {
    for (std::size_t i = 0; i < l.n_args; ++i) {
      if (equality(l.args[i], r.args[i], scope, facts)) continue;
      walk_expr(l.args[i], scope);
      walk_expr(r.args[i], scope);
    }
  }

  /// The facts of an OR of `branches`: a relation restricted in every branch is restricted to
  /// the union of its branches' values; anything else says nothing.
  static void any_of(std::vector<Facts>& branches, Facts& facts) {
    std::map<int, KeySet> merged;
    bool first = true;
    for (auto& br : branches) {
      std::map<int, KeySet> mine;
      for (auto& [rel, set] : br.atoms) {
        auto [it, fresh] = mine.emplace(rel, set);
        if (!fresh) it->second = intersect(it->second, set);
      }
      if (first) {
        merged = std::move(mine);
        first = false;
      } else {
        std::map<int, KeySet> next;
        for (auto& [rel, set] : merged)
          if (auto it = mine.find(rel); it != mine.end()) {
            KeySet u = set;
            u.values.insert(u.values.end(), it->second.values.begin(), it->second.values.end());
            next.emplace(rel, std::move(u));
          }
        merged = std::move(next);
      }
    }
    for (auto& [rel, set] : merged) facts.atoms.emplace_back(rel, std::move(set));
  }

  static KeySet intersect(const KeySet& a, const KeySet& b) {
    // Values are compared later, after hashing; keep both lists and let the router intersect
    // the shard sets (a value on one side and not the other can only shrink the result).
    if (!a.constrained) return b;
    if (!b.constrained) return a;
    KeySet out{true, {}};
    for (const auto& v : a.values)
      for (const auto& w : b.values)
        if (v == w) out.values.push_back(v);
    // Different spellings of possibly equal values ('42' vs 42): keep the first list, which
    // is at worst a superset, never a wrong narrowing.
    if (out.values.empty()) return a;
    return out;
  }

  /// Looks for subqueries in any expression.
  void walk_expr(const Node* n, int scope) {
    if (!n) return;
    if (n->node_case == PG_QUERY__NODE__NODE_SUB_LINK) {
      const auto* sl = n->sub_link;
      walk_expr(sl->testexpr, scope);
      if (sl->subselect && sl->subselect->node_case == PG_QUERY__NODE__NODE_SELECT_STMT)
        select(sl->subselect->select_stmt, scope, false);
      return;
    }
    if (n->node_case == PG_QUERY__NODE__NODE_SELECT_STMT) {
      select(n->select_stmt, scope, false);
      return;
    }
    if (n->node_case == PG_QUERY__NODE__NODE_FUNC_CALL) note_function(n->func_call);
    any_child(n, [&](const Node* c) {
      walk_expr(c, scope);
      return false;
    });
  }

  /// A constant, a parameter or a boolean constant (set_config's third argument).
  static std::optional<KeyValue> config_argument(const Node* n) {
    const Node* bare = n;
    while (bare && bare->node_case == PG_QUERY__NODE__NODE_TYPE_CAST) bare = bare->type_cast->arg;
    if (bare && bare->node_case == PG_QUERY__NODE__NODE_A_CONST && !bare->a_const->isnull &&
        bare->a_const->val_case == PG_QUERY__A__CONST__VAL_BOOLVAL) {
      KeyValue v;
      v.text = bare->a_const->boolval && bare->a_const->boolval->boolval ? "true" : "false";
      return v;
    }
    return constant(n);
  }

  void note_set_config(const PgQuery__FuncCall* f) {
    if (f->n_funcname == 0 || f->n_funcname > 2) return;
    const Node* last = f->funcname[f->n_funcname - 1];
    if (!last || last->node_case != PG_QUERY__NODE__NODE_STRING || lower(last->string->sval) != "set_config") return;
    if (f->n_funcname == 2 && (f->funcname[0]->node_case != PG_QUERY__NODE__NODE_STRING ||
                               std::string_view(f->funcname[0]->string->sval) != "pg_catalog"))
      return;
    TemplateStatement::ConfigCall call;
    if (f->n_args == 3) {
      call.name = config_argument(f->args[0]);
      call.value = config_argument(f->args[1]);
      call.is_local = config_argument(f->args[2]);
    }
    out_.set_configs.push_back(std::move(call));
  }

  void note_function(const PgQuery__FuncCall* f) {
    note_set_config(f);
    if (f->n_funcname > 0) {
      const Node* last = f->funcname[f->n_funcname - 1];
      const bool qualified_elsewhere =
          f->n_funcname > 1 && f->funcname[0]->node_case == PG_QUERY__NODE__NODE_STRING &&
          std::string_view(f->funcname[0]->string->sval) != "pg_catalog";
      if (!last || last->node_case != PG_QUERY__NODE__NODE_STRING) {
        unsafe_function_ = true;
      } else {
        const std::string name = lower(last->string->sval);
        if (!schema_.read_only_function(name) && (qualified_elsewhere || !is_read_only_builtin(name)))
          unsafe_function_ = true;
      }
    }
    if (f->over) window_or_agg_ = "window functions";
    if (f->agg_star || f->agg_distinct || f->n_agg_order || f->agg_filter) window_or_agg_ = "aggregates";
    if (f->n_funcname == 0) return;
    const Node* last = f->funcname[f->n_funcname - 1];
    if (!last || last->node_case != PG_QUERY__NODE__NODE_STRING) return;
    static const char* const kAggregates[] = {
        "count", "sum", "avg", "min", "max", "array_agg", "string_agg", "bool_and", "bool_or", "every",
        "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg", "stddev", "stddev_pop", "stddev_samp",
        "variance", "var_pop", "var_samp", "bit_and", "bit_or", "bit_xor", "percentile_cont",
        "percentile_disc", "mode", "corr", "covar_pop", "covar_samp", "regr_count", "xmlagg", "range_agg"};
    std::string name = lower(last->string->sval);
    for (const char* a : kAggregates)
      if (name == a) window_or_agg_ = "aggregates";
  }

  // ---- statements -------------------------------------------------------------------------------

  void with_clause(const PgQuery__WithClause* w, int scope) {
    if (!w) return;
    for (std::size_t i = 0; i < w->n_ctes; ++i) {
      const Node* c = w->ctes[i];
      if (!c || c->node_case != PG_QUERY__NODE__NODE_COMMON_TABLE_EXPR) continue;
      cte_names_.insert(c->common_table_expr->ctename);
    }
    for (std::size_t i = 0; i < w->n_ctes; ++i) {
      const Node* c = w->ctes[i];
      if (!c || c->node_case != PG_QUERY__NODE__NODE_COMMON_TABLE_EXPR) continue;
      in_subquery_++;
      nested_statement(c->common_table_expr->ctequery, scope);
      in_subquery_--;
    }
  }

  void nested_statement(const Node* q, int scope) {
    if (!q) return;
    switch (q->node_case) {
      case PG_QUERY__NODE__NODE_SELECT_STMT: select(q->select_stmt, scope, false); break;
      case PG_QUERY__NODE__NODE_INSERT_STMT:
      case PG_QUERY__NODE__NODE_UPDATE_STMT:
      case PG_QUERY__NODE__NODE_DELETE_STMT: {
        // A data-modifying CTE: its target and predicates join the same analysis.
        Facts f;
        int s = new_scope(scope);
        if (q->node_case == PG_QUERY__NODE__NODE_UPDATE_STMT) {
          add_range_var(q->update_stmt->relation, s);
          for (std::size_t i = 0; i < q->update_stmt->n_from_clause; ++i) from_item(q->update_stmt->from_clause[i], s, f);
          conjuncts(q->update_stmt->where_clause, s, f);
        } else if (q->node_case == PG_QUERY__NODE__NODE_DELETE_STMT) {
          add_range_var(q->delete_stmt->relation, s);
          for (std::size_t i = 0; i < q->delete_stmt->n_using_clause; ++i) from_item(q->delete_stmt->using_clause[i], s, f);
          conjuncts(q->delete_stmt->where_clause, s, f);
        } else {
          add_range_var(q->insert_stmt->relation, s);
          mark_unknown_rel_ = true;  // rows of a nested INSERT are not analyzed
        }
        merge_facts(std::move(f));
        break;
      }
      default: break;
    }
  }

  void merge_facts(Facts f) {
    for (auto& a : f.atoms) facts_.atoms.push_back(std::move(a));
    for (auto& j : f.joins) facts_.joins.push_back(j);
  }

  void select(const PgQuery__SelectStmt* s, int parent, bool top) {
    if (!s) return;
    if (s->op != PG_QUERY__SET_OPERATION__SETOP_NONE && s->op != 0) {
      if (top) out_.needs_merge = "UNION/INTERSECT/EXCEPT";
      select(s->larg, parent, false);
      select(s->rarg, parent, false);
      return;
    }
    int scope = new_scope(parent);
    with_clause(s->with_clause, scope);
    Facts f;
    for (std::size_t i = 0; i < s->n_from_clause; ++i) from_item(s->from_clause[i], scope, f);
    conjuncts(s->where_clause, scope, f);
    std::string saved = window_or_agg_;
    window_or_agg_.clear();
    for (std::size_t i = 0; i < s->n_target_list; ++i) walk_expr(s->target_list[i], scope);
    walk_expr(s->having_clause, scope);
    for (std::size_t i = 0; i < s->n_values_lists; ++i) walk_expr(s->values_lists[i], scope);
    for (std::size_t i = 0; i < s->n_sort_clause; ++i) walk_expr(s->sort_clause[i], scope);
    if (!top && out_.needs_merge.empty() &&
        (s->limit_count || s->limit_offset || s->n_group_clause || s->having_clause || s->n_distinct_clause ||
         !window_or_agg_.empty())) {
      // Per shard, a subquery that aggregates, limits or de-duplicates sees only that shard's
      // rows; concatenating such answers is not what one database returns.
      nested_merge_ = "a subquery with aggregates, GROUP BY, DISTINCT or LIMIT";
    }
    if (top) {
      // ORDER BY, LIMIT, aggregates... are the merge planner's (build_route_template).
      if (!s->n_sort_clause && !s->limit_count && !s->limit_offset && !s->n_group_clause && !s->having_clause &&
          !s->n_distinct_clause && !window_or_agg_.empty())
        simple_aggregates(s);
      if (s->into_clause) out_.needs_merge = "SELECT INTO";
    }
    window_or_agg_ = saved.empty() ? window_or_agg_ : saved;
    merge_facts(std::move(f));
  }

  /// `SELECT count(*), sum(x), min(y), max(z) FROM ...`: every output column is one plain
  /// aggregate call, which the scatter path can combine exactly. Fills out_.aggregates.
  bool simple_aggregates(const PgQuery__SelectStmt* s) {
    std::vector<Aggregate> aggs;
    for (std::size_t i = 0; i < s->n_target_list; ++i) {
      const Node* t = s->target_list[i];
      if (!t || t->node_case != PG_QUERY__NODE__NODE_RES_TARGET || !t->res_target->val) return false;
      const Node* v = t->res_target->val;
      if (v->node_case != PG_QUERY__NODE__NODE_FUNC_CALL) return false;
      const auto* f = v->func_call;
      if (f->over || f->agg_distinct || f->n_agg_order || f->agg_filter || f->agg_within_group || f->n_funcname != 1)
        return false;
      const Node* name = f->funcname[0];
      if (!name || name->node_case != PG_QUERY__NODE__NODE_STRING) return false;
      std::string n = lower(name->string->sval);
      for (std::size_t a = 0; a < f->n_args; ++a)
        if (f->args[a] && f->args[a]->node_case == PG_QUERY__NODE__NODE_SUB_LINK) return false;
      if (n == "count") aggs.push_back(Aggregate::Count);
      else if (n == "sum") aggs.push_back(Aggregate::Sum);
      else if (n == "min") aggs.push_back(Aggregate::Min);
      else if (n == "max") aggs.push_back(Aggregate::Max);
      else return false;
    }
    if (aggs.empty()) return false;
    out_.aggregates = std::move(aggs);
    return true;
  }

  void insert(const PgQuery__InsertStmt* s) {
    int scope = new_scope(-1);
    with_clause(s->with_clause, scope);
    const ShardedTableInfo* target = nullptr;
    if (s->relation) {
      TableRef ref{s->relation->schemaname ? s->relation->schemaname : "", s->relation->relname};
      target = schema_.sharded(ref);
    }
    const Node* src = s->select_stmt;
    const PgQuery__SelectStmt* sel =
        src && src->node_case == PG_QUERY__NODE__NODE_SELECT_STMT ? src->select_stmt : nullptr;
    if (!target) {
      if (sel) select(sel, scope, false);
      return;
    }
    add_range_var(s->relation, scope);
    int target_rel = int(rels_.size()) - 1;
    insert_target_ = target_rel;
    out_.insert_values = sel && sel->n_values_lists > 0;
    if (!out_.insert_values) {
      out_.insert_problem = sel ? "INSERT ... SELECT into a sharded table needs a tenant hint"
                                : "INSERT ... DEFAULT VALUES into a sharded table has no tenant key";
      if (sel) select(sel, scope, false);
      return;
    }
    int key_pos = -1;
    for (std::size_t i = 0; i < s->n_cols; ++i) {
      const Node* c = s->cols[i];
      if (c && c->node_case == PG_QUERY__NODE__NODE_RES_TARGET && c->res_target->name == target->key) key_pos = int(i);
    }
    if (s->n_cols == 0 && target->key_position >= 0) {
      key_pos = target->key_position;  // the columns in table order, as learned from the shards
    } else if (s->n_cols == 0) {
      out_.insert_problem = "INSERT into sharded table " + target->name +
                            " without a column list, before shardline has learned the table's columns "
                            "from the shards: name the columns so shardline can find " + target->key;
    } else if (key_pos < 0) {
      out_.insert_problem = "INSERT into sharded table " + target->name + " does not set its key column " + target->key;
    }
    for (std::size_t r = 0; r < sel->n_values_lists; ++r) {
      const Node* row = sel->values_lists[r];
      std::optional<KeyValue> key;
      if (key_pos >= 0 && row && row->node_case == PG_QUERY__NODE__NODE_LIST &&
          std::size_t(key_pos) < row->list->n_items) {
        key = constant(row->list->items[key_pos]);
        if (!key && out_.insert_problem.empty())
          out_.insert_problem = "the key " + target->key + " of a row is an expression, not a constant or parameter";
      }
      out_.insert_keys.push_back(key);
      walk_expr(row, scope);
    }
  }

  void update(const PgQuery__UpdateStmt* s) {
    int scope = new_scope(-1);
    with_clause(s->with_clause, scope);
    Facts f;
    add_range_var(s->relation, scope);
    if (!rels_.empty() && scopes_[std::size_t(scope)].names.size() == 1) {
      const auto& key = rels_.back().table->key;
      for (std::size_t i = 0; i < s->n_target_list; ++i) {
        const Node* t = s->target_list[i];
        if (t && t->node_case == PG_QUERY__NODE__NODE_RES_TARGET && t->res_target->name == key) out_.updates_key = true;
      }
    }
    for (std::size_t i = 0; i < s->n_from_clause; ++i) from_item(s->from_clause[i], scope, f);
    conjuncts(s->where_clause, scope, f);
    for (std::size_t i = 0; i < s->n_target_list; ++i) walk_expr(s->target_list[i], scope);
    merge_facts(std::move(f));
  }

  void del(const PgQuery__DeleteStmt* s) {
    int scope = new_scope(-1);
    with_clause(s->with_clause, scope);
    Facts f;
    add_range_var(s->relation, scope);
    for (std::size_t i = 0; i < s->n_using_clause; ++i) from_item(s->using_clause[i], scope, f);
    conjuncts(s->where_clause, scope, f);
    merge_facts(std::move(f));
  }

  void copy(const PgQuery__CopyStmt* s) {
    if (s->query) {
      nested_statement(s->query, -1);
      return;
    }
    if (!s->relation) return;
    TableRef ref{s->relation->schemaname ? s->relation->schemaname : "", s->relation->relname};
    const auto* t = schema_.sharded(ref);
    int scope = new_scope(-1);
    add_range_var(s->relation, scope);
    if (t && s->is_from) {
      out_.copy_from_sharded = true;
      out_.copy_table = (ref.schema.empty() ? std::string("public") : ref.schema) + "." + ref.name;
      out_.copy_key = t->key;
      bool null_set = false;
      for (std::size_t i = 0; i < s->n_options; ++i) {
        const Node* o = s->options[i];
        if (!o || o->node_case != PG_QUERY__NODE__NODE_DEF_ELEM) continue;
        const auto* d = o->def_elem;
        std::string name = d->defname ? d->defname : "";
        std::string sval;
        bool bval = true;
        if (d->arg) {
          if (d->arg->node_case == PG_QUERY__NODE__NODE_STRING) sval = d->arg->string->sval;
          else if (d->arg->node_case == PG_QUERY__NODE__NODE_BOOLEAN) bval = d->arg->boolean->boolval;
          else if (d->arg->node_case == PG_QUERY__NODE__NODE_INTEGER) bval = d->arg->integer->ival != 0;
          if (!sval.empty()) bval = !(lower(sval) == "false" || lower(sval) == "off" || sval == "0");
        }
        if (name == "format") {
          out_.copy_csv = lower(sval) == "csv";
          out_.copy_binary = lower(sval) == "binary";
        }
        else if (name == "header") out_.copy_header = bval;
        else if (name == "delimiter" && !sval.empty()) out_.copy_delimiter = sval[0];
        else if (name == "quote" && !sval.empty()) out_.copy_quote = sval[0];
        else if (name == "escape" && !sval.empty()) out_.copy_escape = sval[0];
        else if (name == "null") { out_.copy_null = sval; null_set = true; }
      }
      if (out_.copy_csv && out_.copy_delimiter == '\t') {
        bool explicit_delim = false;
        for (std::size_t i = 0; i < s->n_options; ++i) {
          const Node* o = s->options[i];
          if (o && o->node_case == PG_QUERY__NODE__NODE_DEF_ELEM && o->def_elem->defname &&
              std::string(o->def_elem->defname) == "delimiter")
            explicit_delim = true;
        }
        if (!explicit_delim) out_.copy_delimiter = ',';
      }
      if (!null_set) out_.copy_null = out_.copy_csv ? "" : "\\N";
      for (std::size_t i = 0; i < s->n_attlist; ++i) {
        const Node* a = s->attlist[i];
        if (a && a->node_case == PG_QUERY__NODE__NODE_STRING) {
          out_.copy_columns.emplace_back(a->string->sval);
          if (t->key == a->string->sval) out_.copy_key_column = int(i);
        }
      }
    }
  }

  /// Built-ins that only read: safe on a replica. Anything else (nextval, setval, advisory
  /// locks, pg_notify, set_config, dblink, user-defined functions) goes to the primary.
  static bool is_read_only_builtin(const std::string& name) {
    static const std::set<std::string> kSafe = {
        "count", "sum", "avg", "min", "max", "array_agg", "string_agg", "bool_and", "bool_or", "every",
        "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg", "stddev", "variance",
        "now", "random", "clock_timestamp", "statement_timestamp", "transaction_timestamp", "timeofday",
        "date_trunc", "date_part", "extract", "age", "to_char", "to_date", "to_timestamp", "to_number",
        "make_date", "make_timestamp", "make_interval", "justify_interval",
        "abs", "round", "trunc", "ceil", "ceiling", "floor", "mod", "power", "sqrt", "greatest", "least",
        "coalesce", "nullif", "lower", "upper", "length", "char_length", "octet_length", "substring", "substr",
        "position", "strpos", "trim", "btrim", "ltrim", "rtrim", "replace", "concat", "concat_ws", "format",
        "left", "right", "lpad", "rpad", "split_part", "starts_with", "md5", "encode", "decode", "reverse",
        "regexp_replace", "regexp_match", "regexp_matches", "string_to_array", "array_to_string",
        "array_length", "cardinality", "unnest", "generate_series", "jsonb_build_object", "json_build_object",
        "jsonb_build_array", "json_build_array", "jsonb_extract_path", "jsonb_extract_path_text",
        "to_json", "to_jsonb", "row_to_json", "jsonb_array_elements", "jsonb_each", "jsonb_typeof",
        "gen_random_uuid", "pg_is_in_recovery", "inet_server_port", "inet_server_addr", "pg_backend_pid",
        "current_setting", "version", "pg_last_wal_replay_lsn", "pg_last_xact_replay_timestamp",
        "row_number", "rank", "dense_rank", "lag", "lead", "first_value", "last_value"};
    return kSafe.count(name) > 0;
  }

  void finish() {
    out_.replica_safe = !unsafe_function_;
    if (out_.needs_merge.empty() && !nested_merge_.empty()) out_.needs_merge = nested_merge_;
    if (mark_unknown_rel_) {
      facts_.atoms.clear();  // be conservative: no restriction is trusted
    }
    // Union-find over key equalities.
    std::vector<int> parent(rels_.size());
    std::iota(parent.begin(), parent.end(), 0);
    std::function<int(int)> find = [&](int x) { return parent[std::size_t(x)] == x ? x : parent[std::size_t(x)] = find(parent[std::size_t(x)]); };
    for (auto [a, b] : facts_.joins) parent[std::size_t(find(a))] = find(b);
    std::map<int, KeySet> groups;
    for (std::size_t r = 0; r < rels_.size(); ++r) {
      if (int(r) == insert_target_) continue;  // an INSERT's rows carry their own keys
      groups.emplace(find(int(r)), KeySet{});
    }
    for (auto& [rel, set] : facts_.atoms) {
      auto it = groups.find(find(rel));
      if (it == groups.end()) continue;
      it->second = intersect(it->second, set);
    }
    for (auto& [root, set] : groups) out_.groups.push_back(std::move(set));
    for (const auto& r : rels_) {
      if (std::find(out_.sharded_names.begin(), out_.sharded_names.end(), r.table->name) == out_.sharded_names.end())
        out_.sharded_names.push_back(r.table->name);
      if (r.table->type) {
        if (!out_.key_type) out_.key_type = r.table->type;
      }
    }
  }

  const ShardingSchema& schema_;
  TemplateStatement& out_;
  std::vector<Rel> rels_;
  std::vector<Scope> scopes_;
  Facts facts_;
  std::set<std::string> cte_names_;
  std::string window_or_agg_;
  std::string nested_merge_;
  bool unsafe_function_ = false;
  int in_subquery_ = 0;
  int insert_target_ = -1;
  bool mark_unknown_rel_ = false;
  int lists_ = 0;  ///< IN lists and ARRAYs numbered so far
};

}  // namespace

void read_comment_hints(std::string_view sql, RouteTemplate& out) {
  std::size_t pos = 0;
  while ((pos = sql.find("shardline:", pos)) != std::string_view::npos) {
    // Only inside a /* */ or -- comment.
    std::size_t open = sql.rfind("/*", pos);
    std::size_t close = open == std::string_view::npos ? open : sql.find("*/", open);
    std::size_t line = sql.rfind("--", pos);
    bool in_block = open != std::string_view::npos && (close == std::string_view::npos || close > pos);
    bool in_line = line != std::string_view::npos && sql.find('\n', line) > pos;
    pos += 10;
    if (!in_block && !in_line) continue;
    std::size_t end = in_block ? (close == std::string_view::npos ? sql.size() : close) : sql.find('\n', pos);
    if (end == std::string_view::npos) end = sql.size();
    std::string_view body = sql.substr(pos, end - pos);
    std::size_t i = 0;
    while (i < body.size()) {
      while (i < body.size() && (std::isspace(static_cast<unsigned char>(body[i])) || body[i] == ',')) ++i;
      std::size_t eq = body.find('=', i);
      if (eq == std::string_view::npos) break;
      std::string key = lower(body.substr(i, eq - i));
      while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
      std::size_t v = eq + 1;
      while (v < body.size() && std::isspace(static_cast<unsigned char>(body[v]))) ++v;
      std::string value;
      if (v < body.size() && (body[v] == '\'' || body[v] == '"')) {
        char q = body[v];
        std::size_t e = body.find(q, v + 1);
        if (e == std::string_view::npos) e = body.size();
        value = std::string(body.substr(v + 1, e - v - 1));
        i = e + 1;
      } else {
        std::size_t e = v;
        while (e < body.size() && !std::isspace(static_cast<unsigned char>(body[e])) && body[e] != ',') ++e;
        value = std::string(body.substr(v, e - v));
        i = e;
      }
      if (key == "tenant") out.hint_tenant = value;
      else if (key == "consistency") out.hint_consistency = value;
      else if (key == "read_after") out.hint_read_after = value;
    }
  }
}

std::shared_ptr<const RouteTemplate> build_route_template(std::string_view sql, const ShardingSchema& schema) {
  auto t = std::make_shared<RouteTemplate>();
  t->sql = std::string(sql);
  read_comment_hints(t->sql, *t);
  const ParseTree tree = ParseTree::parse(t->sql);
  Analysis a = analyze(tree, t->sql);
  if (a.error) {
    t->parse_error = a.error;
    return t;
  }
  auto raw = tree.statements();
  for (std::size_t i = 0; i < a.statements.size(); ++i) {
    TemplateStatement ts;
    ts.info = std::move(a.statements[i]);
    for (const auto& ref : ts.info.tables) {
      if (const auto* st = schema.sharded(ref)) {
        ts.has_sharded = true;
        if (std::find(ts.sharded_names.begin(), ts.sharded_names.end(), st->name) == ts.sharded_names.end())
          ts.sharded_names.push_back(st->name);
        if (st->type && !ts.key_type) ts.key_type = st->type;
      } else if (schema.is_reference(ref)) {
        ts.has_reference = true;
      } else {
        ts.has_unsharded = true;
        ts.unsharded_names.push_back(ref.schema.empty() ? ref.name : ref.schema + "." + ref.name);
      }
    }
    if (ts.info.kind != StatementKind::Empty && i < raw.size() && raw[i]) {
      Analyzer an(schema, ts);
      an.statement(raw[i]->stmt);
      const PgQuery__Node* n = raw[i]->stmt;
      if (ts.has_sharded && ts.needs_merge.empty() && n && n->node_case == PG_QUERY__NODE__NODE_SELECT_STMT &&
          n->select_stmt->op == PG_QUERY__SET_OPERATION__SETOP_NONE && n->select_stmt->n_locking_clause == 0 &&
          needs_merge(*n->select_stmt)) {
        MergePlanning m = plan_merge(*n->select_stmt, tree.result()->version);
        ts.merge = std::move(m.plan);
        ts.merge_refusal = std::move(m.refusal);
      }
    }
    const bool read_kind = ts.info.kind == StatementKind::Select || ts.info.kind == StatementKind::Show;
    ts.replica_safe = ts.replica_safe && read_kind && !ts.info.writes && !ts.info.locking;
    t->statements.push_back(std::move(ts));
  }
  return t;
}

std::optional<std::vector<std::string>> split_insert_sql(std::string_view sql,
                                                         const std::vector<std::vector<int>>& groups,
                                                         std::string* error) {
  ParseTree tree = ParseTree::parse(sql);
  if (!tree.ok() || tree.statements().size() != 1) {
    if (error) *error = "cannot re-parse the INSERT to split it";
    return std::nullopt;
  }
  PgQuery__RawStmt* raw = tree.statements()[0];
  if (!raw->stmt || raw->stmt->node_case != PG_QUERY__NODE__NODE_INSERT_STMT || !raw->stmt->insert_stmt->select_stmt ||
      raw->stmt->insert_stmt->select_stmt->node_case != PG_QUERY__NODE__NODE_SELECT_STMT) {
    if (error) *error = "not an INSERT ... VALUES";
    return std::nullopt;
  }
  PgQuery__SelectStmt* sel = raw->stmt->insert_stmt->select_stmt->select_stmt;
  const std::size_t n_all = sel->n_values_lists;
  PgQuery__Node** all = sel->values_lists;
  std::vector<std::string> out;
  for (const auto& g : groups) {
    std::vector<PgQuery__Node*> subset;
    for (int r : g)
      if (r >= 0 && std::size_t(r) < n_all) subset.push_back(all[r]);
    sel->n_values_lists = subset.size();
    sel->values_lists = subset.data();
    // Serialize the modified tree and deparse it with PostgreSQL's own deparser.
    std::size_t len = pg_query__parse_result__get_packed_size(tree.result());
    std::string buf(len, '\0');
    pg_query__parse_result__pack(tree.result(), reinterpret_cast<uint8_t*>(buf.data()));
    PgQueryProtobuf pb{len, buf.data()};
    PgQueryDeparseResult d = pg_query_deparse_protobuf(pb);
    sel->n_values_lists = n_all;
    sel->values_lists = all;
    if (d.error) {
      if (error) *error = std::string("deparse failed: ") + d.error->message;
      pg_query_free_deparse_result(d);
      return std::nullopt;
    }
    out.emplace_back(d.query);
    pg_query_free_deparse_result(d);
  }
  return out;
}

}  // namespace shardline::router
