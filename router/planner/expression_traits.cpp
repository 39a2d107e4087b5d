#include "router/planner/expression_traits.hpp"

#include <set>
#include <string>

#include "router/planner/aggregate_call.hpp"

namespace shardline::router {

using Node = PgQuery__Node;

bool is_star(const Node* n) {
  if (!n || n->node_case != PG_QUERY__NODE__NODE_COLUMN_REF) return false;
  const auto* c = n->column_ref;
  return c->n_fields > 0 && c->fields[c->n_fields - 1]->node_case == PG_QUERY__NODE__NODE_A_STAR;
}

bool has_collate(const Node* n) {
  return any_node(n, [](const Node* x) { return x->node_case == PG_QUERY__NODE__NODE_COLLATE_CLAUSE; });
}

bool has_sublink(const Node* n) {
  return any_node(n, [](const Node* x) { return x->node_case == PG_QUERY__NODE__NODE_SUB_LINK; });
}

bool per_server_value(const Node* n) {
  static const std::set<std::string> kFunctions = {
      "now", "random", "random_normal", "setseed", "clock_timestamp", "statement_timestamp", "transaction_timestamp",
      "timeofday", "nextval", "currval", "lastval", "gen_random_uuid", "uuid_generate_v4", "pg_backend_pid",
      "inet_server_port", "inet_server_addr", "pg_postmaster_start_time", "txid_current", "pg_current_xact_id",
      "pg_current_wal_lsn", "pg_current_wal_insert_lsn", "pg_last_wal_replay_lsn", "pg_is_in_recovery",
      "pg_current_snapshot", "txid_current_snapshot", "current_setting", "version"};
  return any_node(n, [](const Node* x) {
    if (x->node_case == PG_QUERY__NODE__NODE_SQLVALUE_FUNCTION) return true;
    if (x->node_case != PG_QUERY__NODE__NODE_FUNC_CALL || x->func_call->n_funcname == 0) return false;
    const Node* last = x->func_call->funcname[x->func_call->n_funcname - 1];
    return last && last->node_case == PG_QUERY__NODE__NODE_STRING && kFunctions.count(last->string->sval) > 0;
  });
}

}  // namespace shardline::router
