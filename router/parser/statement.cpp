#include "router/parser/statement.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include <pg_query/pg_query.pb-c.h>

#include "router/parser/parse_tree.hpp"
#include "router/parser/set_value.hpp"
#include "router/parser/table_walker.hpp"

namespace shardline::router {
namespace {

/// CURSOR_OPT_HOLD of PostgreSQL's parsenodes.h: DeclareCursorStmt.options has it for WITH HOLD.
constexpr std::int32_t kCursorOptHold = 0x0020;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool is_ddl(PgQuery__Node__NodeCase c) {
  // PostgreSQL's own classification (utility.c GetCommandLogLevel: LOGSTMT_DDL), plus TRUNCATE,
  // which a sharding proxy must treat like DDL: it affects the whole table on every shard.
  switch (c) {
    case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
    case PG_QUERY__NODE__NODE_ALTER_DOMAIN_STMT:
    case PG_QUERY__NODE__NODE_GRANT_STMT:
    case PG_QUERY__NODE__NODE_GRANT_ROLE_STMT:
    case PG_QUERY__NODE__NODE_ALTER_DEFAULT_PRIVILEGES_STMT:
    case PG_QUERY__NODE__NODE_CREATE_STMT:
    case PG_QUERY__NODE__NODE_DEFINE_STMT:
    case PG_QUERY__NODE__NODE_DROP_STMT:
    case PG_QUERY__NODE__NODE_TRUNCATE_STMT:
    case PG_QUERY__NODE__NODE_COMMENT_STMT:
    case PG_QUERY__NODE__NODE_INDEX_STMT:
    case PG_QUERY__NODE__NODE_CREATE_FUNCTION_STMT:
    case PG_QUERY__NODE__NODE_ALTER_FUNCTION_STMT:
    case PG_QUERY__NODE__NODE_RENAME_STMT:
    case PG_QUERY__NODE__NODE_RULE_STMT:
    case PG_QUERY__NODE__NODE_VIEW_STMT:
    case PG_QUERY__NODE__NODE_CREATE_DOMAIN_STMT:
    case PG_QUERY__NODE__NODE_CREATEDB_STMT:
    case PG_QUERY__NODE__NODE_DROPDB_STMT:
    case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT:
    case PG_QUERY__NODE__NODE_CREATE_SEQ_STMT:
    case PG_QUERY__NODE__NODE_ALTER_SEQ_STMT:
    case PG_QUERY__NODE__NODE_CREATE_TRIG_STMT:
    case PG_QUERY__NODE__NODE_CREATE_PLANG_STMT:
    case PG_QUERY__NODE__NODE_CREATE_ROLE_STMT:
    case PG_QUERY__NODE__NODE_ALTER_ROLE_STMT:
    case PG_QUERY__NODE__NODE_DROP_ROLE_STMT:
    case PG_QUERY__NODE__NODE_CREATE_SCHEMA_STMT:
    case PG_QUERY__NODE__NODE_ALTER_DATABASE_STMT:
    case PG_QUERY__NODE__NODE_ALTER_DATABASE_REFRESH_COLL_STMT:
    case PG_QUERY__NODE__NODE_ALTER_DATABASE_SET_STMT:
    case PG_QUERY__NODE__NODE_ALTER_ROLE_SET_STMT:
    case PG_QUERY__NODE__NODE_CREATE_CONVERSION_STMT:
    case PG_QUERY__NODE__NODE_CREATE_CAST_STMT:
    case PG_QUERY__NODE__NODE_CREATE_OP_CLASS_STMT:
    case PG_QUERY__NODE__NODE_CREATE_OP_FAMILY_STMT:
    case PG_QUERY__NODE__NODE_ALTER_OP_FAMILY_STMT:
    case PG_QUERY__NODE__NODE_CREATE_TABLE_SPACE_STMT:
    case PG_QUERY__NODE__NODE_DROP_TABLE_SPACE_STMT:
    case PG_QUERY__NODE__NODE_ALTER_OBJECT_DEPENDS_STMT:
    case PG_QUERY__NODE__NODE_ALTER_OBJECT_SCHEMA_STMT:
    case PG_QUERY__NODE__NODE_ALTER_OWNER_STMT:
    case PG_QUERY__NODE__NODE_ALTER_OPERATOR_STMT:
    case PG_QUERY__NODE__NODE_ALTER_TYPE_STMT:
    case PG_QUERY__NODE__NODE_DROP_OWNED_STMT:
    case PG_QUERY__NODE__NODE_REASSIGN_OWNED_STMT:
    case PG_QUERY__NODE__NODE_COMPOSITE_TYPE_STMT:
    case PG_QUERY__NODE__NODE_CREATE_ENUM_STMT:
    case PG_QUERY__NODE__NODE_CREATE_RANGE_STMT:
    case PG_QUERY__NODE__NODE_ALTER_ENUM_STMT:
    case PG_QUERY__NODE__NODE_ALTER_TSDICTIONARY_STMT:
    case PG_QUERY__NODE__NODE_ALTER_TSCONFIGURATION_STMT:
    case PG_QUERY__NODE__NODE_CREATE_FDW_STMT:
    case PG_QUERY__NODE__NODE_ALTER_FDW_STMT:
    case PG_QUERY__NODE__NODE_CREATE_FOREIGN_SERVER_STMT:
    case PG_QUERY__NODE__NODE_ALTER_FOREIGN_SERVER_STMT:
    case PG_QUERY__NODE__NODE_CREATE_USER_MAPPING_STMT:
    case PG_QUERY__NODE__NODE_ALTER_USER_MAPPING_STMT:
    case PG_QUERY__NODE__NODE_DROP_USER_MAPPING_STMT:
    case PG_QUERY__NODE__NODE_ALTER_TABLE_SPACE_OPTIONS_STMT:
    case PG_QUERY__NODE__NODE_ALTER_TABLE_MOVE_ALL_STMT:
    case PG_QUERY__NODE__NODE_SEC_LABEL_STMT:
    case PG_QUERY__NODE__NODE_CREATE_FOREIGN_TABLE_STMT:
    case PG_QUERY__NODE__NODE_IMPORT_FOREIGN_SCHEMA_STMT:
    case PG_QUERY__NODE__NODE_CREATE_EXTENSION_STMT:
    case PG_QUERY__NODE__NODE_ALTER_EXTENSION_STMT:
    case PG_QUERY__NODE__NODE_ALTER_EXTENSION_CONTENTS_STMT:
    case PG_QUERY__NODE__NODE_CREATE_EVENT_TRIG_STMT:
    case PG_QUERY__NODE__NODE_ALTER_EVENT_TRIG_STMT:
    case PG_QUERY__NODE__NODE_REFRESH_MAT_VIEW_STMT:
    case PG_QUERY__NODE__NODE_ALTER_SYSTEM_STMT:
    case PG_QUERY__NODE__NODE_CREATE_POLICY_STMT:
    case PG_QUERY__NODE__NODE_ALTER_POLICY_STMT:
    case PG_QUERY__NODE__NODE_CREATE_TRANSFORM_STMT:
    case PG_QUERY__NODE__NODE_CREATE_AM_STMT:
    case PG_QUERY__NODE__NODE_CREATE_PUBLICATION_STMT:
    case PG_QUERY__NODE__NODE_ALTER_PUBLICATION_STMT:
    case PG_QUERY__NODE__NODE_CREATE_SUBSCRIPTION_STMT:
    case PG_QUERY__NODE__NODE_ALTER_SUBSCRIPTION_STMT:
    case PG_QUERY__NODE__NODE_DROP_SUBSCRIPTION_STMT:
    case PG_QUERY__NODE__NODE_CREATE_STATS_STMT:
    case PG_QUERY__NODE__NODE_ALTER_STATS_STMT:
    case PG_QUERY__NODE__NODE_ALTER_COLLATION_STMT:
    case PG_QUERY__NODE__NODE_REPLICA_IDENTITY_STMT:
      return true;
    default:
      return false;
  }
}

/// PostgreSQL's defGetBoolean() for an option's argument: absent means true.
bool option_is_true(const PgQuery__Node* arg) {
  if (arg == nullptr) return true;
  switch (arg->node_case) {
    case PG_QUERY__NODE__NODE_INTEGER:
      return arg->integer->ival != 0;
    case PG_QUERY__NODE__NODE_BOOLEAN:
      return arg->boolean->boolval != 0;
    case PG_QUERY__NODE__NODE_STRING: {
      const std::string v = lower_ascii(arg->string->sval);
      return v == "true" || v == "on";
    }
    case PG_QUERY__NODE__NODE_A_CONST:
      if (arg->a_const->val_case == PG_QUERY__A__CONST__VAL_IVAL) return arg->a_const->ival->ival != 0;
      return false;
    default:
      return false;
  }
}

const PgQuery__DefElem* as_def_elem(const PgQuery__Node* n) {
  return n->node_case == PG_QUERY__NODE__NODE_DEF_ELEM ? n->def_elem : nullptr;
}

std::int32_t a_const_int(const PgQuery__Node* n) {
  if (n != nullptr && n->node_case == PG_QUERY__NODE__NODE_A_CONST &&
      n->a_const->val_case == PG_QUERY__A__CONST__VAL_IVAL) {
    return n->a_const->ival->ival;
  }
  return 0;
}

std::string_view a_const_string(const PgQuery__Node* n) {
  if (n != nullptr && n->node_case == PG_QUERY__NODE__NODE_A_CONST &&
      n->a_const->val_case == PG_QUERY__A__CONST__VAL_SVAL) {
    return n->a_const->sval->sval;
  }
  return {};
}

/// BEGIN READ ONLY / READ WRITE: the last access mode given wins, as in PostgreSQL.
bool read_only_transaction(const PgQuery__TransactionStmt& s) {
  bool read_only = false;
  for (std::size_t i = 0; i < s.n_options; ++i) {
    const PgQuery__DefElem* opt = as_def_elem(s.options[i]);
    if (opt != nullptr && std::strcmp(opt->defname, "transaction_read_only") == 0) {
      read_only = a_const_int(opt->arg) != 0;
    }
  }
  return read_only;
}

TxCommand tx_command(PgQuery__TransactionStmtKind kind) {
  switch (kind) {
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN: return TxCommand::Begin;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START: return TxCommand::Start;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT: return TxCommand::Commit;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK: return TxCommand::Rollback;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_SAVEPOINT: return TxCommand::Savepoint;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_RELEASE: return TxCommand::Release;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_TO: return TxCommand::RollbackTo;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_PREPARE: return TxCommand::Prepare;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT_PREPARED:
      return TxCommand::CommitPrepared;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_PREPARED:
      return TxCommand::RollbackPrepared;
    default:
      return TxCommand::None;
  }
}

/// SET TRANSACTION / SESSION CHARACTERISTICS AS TRANSACTION options, in SQL words.
std::string transaction_modes(const PgQuery__VariableSetStmt& s) {
  std::string out;
  for (std::size_t i = 0; i < s.n_args; ++i) {
    const PgQuery__DefElem* opt = as_def_elem(s.args[i]);
    if (opt == nullptr) continue;
    if (!out.empty()) out += ", ";
    const std::string_view name = opt->defname;
    if (name == "transaction_isolation") {
      out += "isolation level ";
      out += a_const_string(opt->arg);
    } else if (name == "transaction_read_only") {
      out += a_const_int(opt->arg) != 0 ? "read only" : "read write";
    } else if (name == "transaction_deferrable") {
      out += a_const_int(opt->arg) != 0 ? "deferrable" : "not deferrable";
    } else {
      out += name;
    }
  }
  return out;
}

/// flatten_set_variable_args(): returns false for an argument shape the grammar never makes.
bool flatten_set_args(const PgQuery__VariableSetStmt& s, std::string_view lower_name,
                      std::string& out) {
  SetValue value(lower_name);
  for (std::size_t i = 0; i < s.n_args; ++i) {
    const PgQuery__Node* arg = s.args[i];
    bool typed = false;
    if (arg->node_case == PG_QUERY__NODE__NODE_TYPE_CAST && arg->type_cast->arg != nullptr) {
      typed = true;  // SET TIME ZONE INTERVAL '...' [qualifier]
      arg = arg->type_cast->arg;
    }
    if (arg->node_case != PG_QUERY__NODE__NODE_A_CONST) return false;
    const PgQuery__AConst& c = *arg->a_const;
    switch (c.val_case) {
      case PG_QUERY__A__CONST__VAL_IVAL:
        value.add_integer(c.ival->ival);
        break;
      case PG_QUERY__A__CONST__VAL_FVAL:
        value.add_float(c.fval->fval);
        break;
      case PG_QUERY__A__CONST__VAL_SVAL:
        if (typed) {
          value.add_verbatim(c.sval->sval);
        } else {
          value.add_string(c.sval->sval);
        }
        break;
      case PG_QUERY__A__CONST__VAL_BOOLVAL:
        value.add_verbatim(c.boolval->boolval ? "true" : "false");
        break;
      default:
        return false;
    }
  }
  out = std::move(value).str();
  return true;
}

/// Fills `st` for a VariableSetStmt; returns an error message for an argument it cannot read.
std::optional<std::string> describe_set(const PgQuery__VariableSetStmt& s, Statement& st) {
  SetCommand set;
  set.text = std::string(st.text);
  set.name = lower_ascii(s.name);
  const auto scoped = [&](SetCommand::Kind k) { return s.is_local ? SetCommand::Kind::Local : k; };
  switch (s.kind) {
    case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_VALUE:
      set.kind = scoped(SetCommand::Kind::Value);
      if (!flatten_set_args(s, set.name, set.value)) {
        return "unsupported argument in SET " + set.name;
      }
      break;
    case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_DEFAULT:
      set.kind = scoped(SetCommand::Kind::Default);
      break;
    case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_CURRENT:
      set.kind = scoped(SetCommand::Kind::Value);
      break;
    case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_MULTI:
      // SET TRANSACTION ... and SET TRANSACTION SNAPSHOT last only for the transaction.
      set.kind = set.name == "session characteristics" ? scoped(SetCommand::Kind::Value)
                                                       : SetCommand::Kind::Local;
      if (set.name == "transaction snapshot") {
        set.value = std::string(a_const_string(s.n_args > 0 ? s.args[0] : nullptr));
      } else {
        set.value = transaction_modes(s);
      }
      break;
    case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET:
      set.kind = SetCommand::Kind::Reset;
      break;
    case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET_ALL:
      set.kind = SetCommand::Kind::ResetAll;
      set.name.clear();
      break;
    default:
      return "unrecognized SET form";
  }
  st.set = std::move(set);
  return std::nullopt;
}

/// Fills kind, flags and details of `st` for one statement node; tables go to `walker`.
std::optional<std::string> describe(const PgQuery__Node& node, TreeWalker& walker,
                                    Statement& st) {
  const auto walk = [&] { walker.visit(&node.base); };
  switch (node.node_case) {
    case PG_QUERY__NODE__NODE_SELECT_STMT:
      st.kind = StatementKind::Select;
      walk();
      st.writes = walker.saw_dml || walker.saw_into;
      st.locking = walker.saw_locking;
      break;
    case PG_QUERY__NODE__NODE_INSERT_STMT:
    case PG_QUERY__NODE__NODE_UPDATE_STMT:
    case PG_QUERY__NODE__NODE_DELETE_STMT:
      st.kind = node.node_case == PG_QUERY__NODE__NODE_INSERT_STMT   ? StatementKind::Insert
                : node.node_case == PG_QUERY__NODE__NODE_UPDATE_STMT ? StatementKind::Update
                                                                     : StatementKind::Delete;
      walk();
      st.writes = true;
      st.locking = walker.saw_locking;
      break;
    case PG_QUERY__NODE__NODE_MERGE_STMT:
      st.kind = StatementKind::Other;
      walk();
      st.writes = true;
      st.locking = walker.saw_locking;
      break;
    case PG_QUERY__NODE__NODE_COPY_STMT:
      st.kind = StatementKind::Copy;
      st.copy_direction = node.copy_stmt->is_from ? "from" : "to";
      walk();
      st.writes = node.copy_stmt->is_from || walker.saw_dml;
      st.locking = walker.saw_locking;
      break;
    case PG_QUERY__NODE__NODE_EXPLAIN_STMT: {
      st.kind = StatementKind::Explain;
      const PgQuery__ExplainStmt& e = *node.explain_stmt;
      bool analyze = false;
      for (std::size_t i = 0; i < e.n_options; ++i) {
        const PgQuery__DefElem* opt = as_def_elem(e.options[i]);
        if (opt != nullptr && std::strcmp(opt->defname, "analyze") == 0) {
          analyze = option_is_true(opt->arg);
        }
      }
      if (e.query != nullptr) {
        Statement inner;
        if (auto err = describe(*e.query, walker, inner)) return err;
        // Only EXPLAIN ANALYZE executes the statement.
        st.writes = analyze && inner.writes;
        st.locking = analyze && inner.locking;
      }
      break;
    }
    case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
      st.kind = StatementKind::Transaction;
      st.tx = tx_command(node.transaction_stmt->kind);
      if (node.transaction_stmt->savepoint_name) st.savepoint = node.transaction_stmt->savepoint_name;
      if (st.tx == TxCommand::Begin || st.tx == TxCommand::Start) {
        st.read_only_tx = read_only_transaction(*node.transaction_stmt);
      }
      break;
    case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
      st.kind = StatementKind::Set;
      return describe_set(*node.variable_set_stmt, st);
    case PG_QUERY__NODE__NODE_VARIABLE_SHOW_STMT:
      st.kind = StatementKind::Show;
      st.show_name = lower_ascii(node.variable_show_stmt->name);
      break;
    case PG_QUERY__NODE__NODE_DISCARD_STMT:
      st.kind = StatementKind::Discard;
      switch (node.discard_stmt->target) {
        case PG_QUERY__DISCARD_MODE__DISCARD_PLANS: st.discard = DiscardTarget::Plans; break;
        case PG_QUERY__DISCARD_MODE__DISCARD_SEQUENCES: st.discard = DiscardTarget::Sequences; break;
        case PG_QUERY__DISCARD_MODE__DISCARD_TEMP: st.discard = DiscardTarget::Temp; break;
        default: st.discard = DiscardTarget::All; break;
      }
      break;
    case PG_QUERY__NODE__NODE_DEALLOCATE_STMT:
      st.kind = StatementKind::Deallocate;
      st.deallocate_name = node.deallocate_stmt->name;  // "" for DEALLOCATE ALL
      break;
    case PG_QUERY__NODE__NODE_LISTEN_STMT:
      st.kind = StatementKind::Listen;
      break;
    case PG_QUERY__NODE__NODE_UNLISTEN_STMT:
      st.kind = StatementKind::Listen;
      st.unlisten = true;
      break;
    case PG_QUERY__NODE__NODE_LOCK_STMT:
      st.kind = StatementKind::Other;
      walk();
      st.locking = true;
      break;
    case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
      st.kind = StatementKind::Other;
      st.declare_cursor = true;
      st.cursor_hold = (node.declare_cursor_stmt->options & kCursorOptHold) != 0;
      walk();
      st.writes = walker.saw_dml;
      st.locking = walker.saw_locking;
      break;
    case PG_QUERY__NODE__NODE_PREPARE_STMT:
      // Preparing executes nothing; EXECUTE is what may write.
      st.kind = StatementKind::Other;
      walk();
      break;
    case PG_QUERY__NODE__NODE_CALL_STMT:
    case PG_QUERY__NODE__NODE_DO_STMT:
    case PG_QUERY__NODE__NODE_EXECUTE_STMT:
    case PG_QUERY__NODE__NODE_VACUUM_STMT:
    case PG_QUERY__NODE__NODE_CLUSTER_STMT:
    case PG_QUERY__NODE__NODE_REINDEX_STMT:
    case PG_QUERY__NODE__NODE_CHECK_POINT_STMT:
    case PG_QUERY__NODE__NODE_NOTIFY_STMT:
      st.kind = StatementKind::Other;
      walk();
      st.writes = true;
      break;
    default:
      if (is_ddl(node.node_case)) {
        st.kind = StatementKind::Ddl;
        walk();
        st.writes = true;
      } else {
        st.kind = StatementKind::Other;
        walk();
        st.locking = walker.saw_locking;
      }
      break;
  }
  return std::nullopt;
}

}  // namespace

Analysis analyze(std::string_view sql) { return analyze(ParseTree::parse(sql), sql); }

Analysis analyze(const ParseTree& tree, std::string_view sql) {
  Analysis out;
  if (!tree.ok()) {
    out.error = tree.error()->message;
    out.error_pos = tree.error()->cursor_pos;
    return out;
  }
  const auto raw = tree.statements();
  if (raw.empty()) {
    Statement empty;
    empty.kind = StatementKind::Empty;
    empty.text = trim(sql);
    out.statements.push_back(std::move(empty));
    return out;
  }
  out.statements.reserve(raw.size());
  for (const PgQuery__RawStmt* rs : raw) {
    Statement st;
    const auto loc = static_cast<std::size_t>(std::max(rs->stmt_location, 0));
    const std::size_t begin = std::min(loc, sql.size());
    const std::size_t len =
        rs->stmt_len > 0 ? static_cast<std::size_t>(rs->stmt_len) : sql.size() - begin;
    st.text = trim(sql.substr(begin, len));
    if (rs->stmt == nullptr) {
      out.statements.clear();
      out.error = "libpg_query returned a statement without a parse tree";
      return out;
    }
    TreeWalker walker;
    if (auto err = describe(*rs->stmt, walker, st)) {
      out.statements.clear();
      out.error = std::move(*err);
      out.error_pos = 0;
      return out;
    }
    st.tables = std::move(walker.tables);
    out.statements.push_back(std::move(st));
  }
  return out;
}

}  // namespace shardline::router
