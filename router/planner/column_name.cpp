#include "router/planner/column_name.hpp"

namespace shardline::router {

namespace {

using Node = PgQuery__Node;

const char* last_string(PgQuery__Node* const* items, std::size_t n) {
  if (n == 0 || !items[n - 1] || items[n - 1]->node_case != PG_QUERY__NODE__NODE_STRING) return nullptr;
  return items[n - 1]->string->sval;
}

/// FigureColnameInternal: 0 no name, 1 a weak name (a type name, "case"), 2 a good name.
int figure(const Node* n, std::string& name) {
  if (!n) return 0;
  switch (n->node_case) {
    case PG_QUERY__NODE__NODE_COLUMN_REF:
      if (const char* s = last_string(n->column_ref->fields, n->column_ref->n_fields)) {
        name = s;
        return 2;
      }
      return 0;
    case PG_QUERY__NODE__NODE_A_INDIRECTION:
      if (const char* s = last_string(n->a_indirection->indirection, n->a_indirection->n_indirection)) {
        name = s;
        return 2;
      }
      return figure(n->a_indirection->arg, name);
    case PG_QUERY__NODE__NODE_FUNC_CALL:
      if (const char* s = last_string(n->func_call->funcname, n->func_call->n_funcname)) {
        name = s;
        return 2;
      }
      return 0;
    case PG_QUERY__NODE__NODE_A_EXPR:
      if (n->a_expr->kind == PG_QUERY__A__EXPR__KIND__AEXPR_NULLIF) {
        name = "nullif";
        return 2;
      }
      return 0;
    case PG_QUERY__NODE__NODE_TYPE_CAST: {
      int strength = figure(n->type_cast->arg, name);
      if (strength <= 1 && n->type_cast->type_name) {
        if (const char* s = last_string(n->type_cast->type_name->names, n->type_cast->type_name->n_names)) {
          name = s;
          return 1;
        }
      }
      return strength;
    }
    case PG_QUERY__NODE__NODE_COLLATE_CLAUSE: return figure(n->collate_clause->arg, name);
    case PG_QUERY__NODE__NODE_GROUPING_FUNC: name = "grouping"; return 2;
    case PG_QUERY__NODE__NODE_SUB_LINK: {
      const auto* sl = n->sub_link;
      if (sl->sub_link_type == PG_QUERY__SUB_LINK_TYPE__EXISTS_SUBLINK) {
        name = "exists";
        return 2;
      }
      if (sl->sub_link_type == PG_QUERY__SUB_LINK_TYPE__ARRAY_SUBLINK) {
        name = "array";
        return 2;
      }
      if (sl->sub_link_type == PG_QUERY__SUB_LINK_TYPE__EXPR_SUBLINK && sl->subselect &&
          sl->subselect->node_case == PG_QUERY__NODE__NODE_SELECT_STMT) {
        // The subquery's first output column's name (its alias, else its own figured name).
        const auto* sub = sl->subselect->select_stmt;
        while (sub && sub->op != PG_QUERY__SET_OPERATION__SETOP_NONE && sub->larg) sub = sub->larg;
        if (sub && sub->n_target_list > 0 && sub->target_list[0]->node_case == PG_QUERY__NODE__NODE_RES_TARGET) {
          const auto* rt = sub->target_list[0]->res_target;
          if (rt->name && *rt->name) {
            name = rt->name;
            return 2;
          }
          std::string inner;
          figure(rt->val, inner);
          name = inner.empty() ? "?column?" : inner;
          return 2;
        }
      }
      return 0;
    }
    case PG_QUERY__NODE__NODE_CASE_EXPR: {
      int strength = figure(n->case_expr->defresult, name);
      if (strength <= 1) {
        name = "case";
        return 1;
      }
      return strength;
    }
    case PG_QUERY__NODE__NODE_A_ARRAY_EXPR: name = "array"; return 2;
    case PG_QUERY__NODE__NODE_ROW_EXPR: name = "row"; return 2;
    case PG_QUERY__NODE__NODE_COALESCE_EXPR: name = "coalesce"; return 2;
    case PG_QUERY__NODE__NODE_MIN_MAX_EXPR:
      name = n->min_max_expr->op == PG_QUERY__MIN_MAX_OP__IS_GREATEST ? "greatest" : "least";
      return 2;
    case PG_QUERY__NODE__NODE_SQLVALUE_FUNCTION:
      switch (n->sqlvalue_function->op) {
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_DATE: name = "current_date"; return 2;
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIME:
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIME_N: name = "current_time"; return 2;
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIMESTAMP:
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_TIMESTAMP_N: name = "current_timestamp"; return 2;
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIME:
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIME_N: name = "localtime"; return 2;
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIMESTAMP:
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_LOCALTIMESTAMP_N: name = "localtimestamp"; return 2;
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_ROLE: name = "current_role"; return 2;
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_USER: name = "current_user"; return 2;
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_USER: name = "user"; return 2;
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_SESSION_USER: name = "session_user"; return 2;
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_CATALOG: name = "current_catalog"; return 2;
        case PG_QUERY__SQLVALUE_FUNCTION_OP__SVFOP_CURRENT_SCHEMA: name = "current_schema"; return 2;
        default: return 0;
      }
    case PG_QUERY__NODE__NODE_XML_EXPR: {
      static const char* const kNames[] = {"xmlconcat", "xmlelement", "xmlforest", "xmlparse", "xmlpi", "xmlroot", "xmlserialize", "?column?"};
      int op = int(n->xml_expr->op) - 1;  // IS_XMLCONCAT = 1 ...
      if (op >= 0 && op < 7) {
        name = kNames[op];
        return 2;
      }
      return 0;
    }
    case PG_QUERY__NODE__NODE_XML_SERIALIZE: name = "xmlserialize"; return 2;
    default: return 0;
  }
}

}  // namespace

std::string figure_colname(const PgQuery__Node* n) {
  std::string name;
  if (figure(n, name) == 0 || name.empty()) return "?column?";
  return name;
}

}  // namespace shardline::router
