#pragma once
// The walk over one statement's parse tree that collects the relations it names and whether it
// writes or locks anywhere (a data-modifying CTE, SELECT INTO, FOR UPDATE in a subquery), for
// analyze(). Internal to router/parser.

#include <string>
#include <string_view>
#include <vector>

#include <pg_query/pg_query.pb-c.h>

#include "router/parser/statement.hpp"

namespace shardline::router {

/// Collects the relations of a subtree and the signals that make a statement a write or a
/// locking read. It walks every message generically through protobuf-c's descriptors, so a
/// RangeVar is found wherever the grammar puts one, and handles only the nodes whose meaning
/// depends on context (CTE scope, DML targets, FOR UPDATE OF aliases, DROP name lists).
class TreeWalker {
 public:
  using Msg = ProtobufCMessage;

  std::vector<TableRef> tables;
  bool saw_dml = false;      ///< INSERT/UPDATE/DELETE/MERGE anywhere (data-modifying CTE)
  bool saw_locking = false;  ///< a locking clause anywhere
  bool saw_into = false;     ///< SELECT ... INTO

  void visit(const Msg* m) {
    const ProtobufCMessageDescriptor* d = m->descriptor;
    if (d == &pg_query__node__descriptor) {
      const auto* node = reinterpret_cast<const PgQuery__Node*>(m);
      if (node->node_case == PG_QUERY__NODE__NODE__NOT_SET) return;
      const ProtobufCFieldDescriptor* f =
          protobuf_c_message_descriptor_get_field(d, static_cast<unsigned>(node->node_case));
      if (f == nullptr) return;
      const Msg* child = field_message(m, *f);
      if (child != nullptr) visit(child);
    } else if (d == &pg_query__range_var__descriptor) {
      const auto* rv = reinterpret_cast<const PgQuery__RangeVar*>(m);
      if (!(rv->schemaname[0] == '\0' && cte_in_scope(rv->relname))) add_table(rv);
    } else if (d == &pg_query__select_stmt__descriptor) {
      const auto* s = reinterpret_cast<const PgQuery__SelectStmt*>(m);
      if (s->into_clause != nullptr) saw_into = true;
      visit_statement(m, s->with_clause, nullptr);
    } else if (d == &pg_query__insert_stmt__descriptor) {
      const auto* s = reinterpret_cast<const PgQuery__InsertStmt*>(m);
      visit_dml(m, s->relation, s->with_clause);
    } else if (d == &pg_query__update_stmt__descriptor) {
      const auto* s = reinterpret_cast<const PgQuery__UpdateStmt*>(m);
      visit_dml(m, s->relation, s->with_clause);
    } else if (d == &pg_query__delete_stmt__descriptor) {
      const auto* s = reinterpret_cast<const PgQuery__DeleteStmt*>(m);
      visit_dml(m, s->relation, s->with_clause);
    } else if (d == &pg_query__merge_stmt__descriptor) {
      const auto* s = reinterpret_cast<const PgQuery__MergeStmt*>(m);
      visit_dml(m, s->relation, s->with_clause);
    } else if (d == &pg_query__into_clause__descriptor) {
      // The table that SELECT INTO / CREATE TABLE AS creates is never a CTE reference.
      const auto* into = reinterpret_cast<const PgQuery__IntoClause*>(m);
      if (into->rel != nullptr) add_table(into->rel);
      visit_children(m, into->rel, nullptr);
    } else if (d == &pg_query__locking_clause__descriptor) {
      // locked_rels (FOR UPDATE OF x) name range-table aliases, not relations.
      saw_locking = true;
    } else if (d == &pg_query__drop_stmt__descriptor) {
      visit_drop(reinterpret_cast<const PgQuery__DropStmt*>(m));
    } else {
      visit_children(m, nullptr, nullptr);
    }
  }

 private:
  static const Msg* field_message(const Msg* m, const ProtobufCFieldDescriptor& f) {
    const Msg* child = nullptr;
    std::memcpy(&child, reinterpret_cast<const char*>(m) + f.offset, sizeof child);
    return child;
  }

  /// Visits every sub-message of `m` except the two given (already handled by the caller).
  void visit_children(const Msg* m, const void* skip1, const void* skip2) {
    const ProtobufCMessageDescriptor* d = m->descriptor;
    const char* base = reinterpret_cast<const char*>(m);
    for (unsigned i = 0; i < d->n_fields; ++i) {
      const ProtobufCFieldDescriptor& f = d->fields[i];
      if (f.type != PROTOBUF_C_TYPE_MESSAGE) continue;
      if ((f.flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0) {
        std::uint32_t which = 0;
        std::memcpy(&which, base + f.quantifier_offset, sizeof which);
        if (which != f.id) continue;
      }
      if (f.label == PROTOBUF_C_LABEL_REPEATED) {
        std::size_t n = 0;
        const Msg* const* items = nullptr;
        std::memcpy(&n, base + f.quantifier_offset, sizeof n);
        std::memcpy(&items, base + f.offset, sizeof items);
        for (std::size_t k = 0; k < n; ++k) {
          if (items[k] != nullptr) visit(items[k]);
        }
      } else {
        const Msg* child = field_message(m, f);
        if (child != nullptr && child != skip1 && child != skip2) visit(child);
      }
    }
  }

  /// A statement with an optional WITH clause: its CTE names shadow relations of the same
  /// unqualified name inside the statement, and only there.
  void visit_statement(const Msg* m, const PgQuery__WithClause* with, const void* skip) {
    const std::size_t mark = cte_scope_.size();
    if (with != nullptr) visit_with(*with);
    visit_children(m, with, skip);
    cte_scope_.resize(mark);
  }

  void visit_dml(const Msg* m, const PgQuery__RangeVar* target, const PgQuery__WithClause* with) {
    saw_dml = true;
    // The target of INSERT/UPDATE/DELETE/MERGE is always a relation, even if a CTE has its name.
    if (target != nullptr) add_table(target);
    visit_statement(m, with, target);
  }

  void visit_with(const PgQuery__WithClause& with) {
    // WITH RECURSIVE: every name is visible in every body. Otherwise a body sees only the CTEs
    // listed before it (PostgreSQL's parse_cte.c rules).
    if (with.recursive) {
      for (std::size_t i = 0; i < with.n_ctes; ++i) push_cte_name(with.ctes[i]);
    }
    for (std::size_t i = 0; i < with.n_ctes; ++i) {
      visit(&with.ctes[i]->base);
      if (!with.recursive) push_cte_name(with.ctes[i]);
    }
  }

  void push_cte_name(const PgQuery__Node* node) {
    if (node->node_case == PG_QUERY__NODE__NODE_COMMON_TABLE_EXPR) {
      cte_scope_.emplace_back(node->common_table_expr->ctename);
    }
  }

  bool cte_in_scope(std::string_view name) const {
    for (auto n : cte_scope_) {
      if (n == name) return true;
    }
    return false;
  }

  void visit_drop(const PgQuery__DropStmt* s) {
    switch (s->remove_type) {
      case PG_QUERY__OBJECT_TYPE__OBJECT_TABLE:
      case PG_QUERY__OBJECT_TYPE__OBJECT_FOREIGN_TABLE:
      case PG_QUERY__OBJECT_TYPE__OBJECT_VIEW:
      case PG_QUERY__OBJECT_TYPE__OBJECT_MATVIEW:
      case PG_QUERY__OBJECT_TYPE__OBJECT_SEQUENCE:
      case PG_QUERY__OBJECT_TYPE__OBJECT_INDEX:
        break;
      default:
        return;
    }
    // Each object is a List of String nodes: [name], [schema, name] or [catalog, schema, name].
    for (std::size_t i = 0; i < s->n_objects; ++i) {
      const PgQuery__Node* obj = s->objects[i];
      if (obj->node_case != PG_QUERY__NODE__NODE_LIST) continue;
      const PgQuery__List* list = obj->list;
      TableRef ref;
      for (std::size_t k = 0; k < list->n_items; ++k) {
        if (list->items[k]->node_case != PG_QUERY__NODE__NODE_STRING) continue;
        ref.schema = std::move(ref.name);
        ref.name = list->items[k]->string->sval;
      }
      if (list->n_items == 1) ref.schema.clear();
      add_table(std::move(ref));
    }
  }

  void add_table(const PgQuery__RangeVar* rv) { add_table(TableRef{rv->schemaname, rv->relname}); }

  void add_table(TableRef ref) {
    for (const auto& t : tables) {
      if (t == ref) return;
    }
    tables.push_back(std::move(ref));
  }

  std::vector<std::string_view> cte_scope_;  // names point into the parse tree being walked
};

}  // namespace shardline::router
