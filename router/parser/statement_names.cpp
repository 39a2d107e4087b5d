// The names of the statement classification's enums, as golden plans and EXPLAIN-style output
// print them.

#include "router/parser/statement.hpp"

namespace shardline::router {

std::string_view to_string(StatementKind kind) {
  switch (kind) {
    case StatementKind::Select: return "Select";
    case StatementKind::Insert: return "Insert";
    case StatementKind::Update: return "Update";
    case StatementKind::Delete: return "Delete";
    case StatementKind::Copy: return "Copy";
    case StatementKind::Ddl: return "Ddl";
    case StatementKind::Transaction: return "Transaction";
    case StatementKind::Set: return "Set";
    case StatementKind::Show: return "Show";
    case StatementKind::Discard: return "Discard";
    case StatementKind::Deallocate: return "Deallocate";
    case StatementKind::Listen: return "Listen";
    case StatementKind::Explain: return "Explain";
    case StatementKind::Other: return "Other";
    case StatementKind::Empty: return "Empty";
  }
  return "?";
}

std::string_view to_string(TxCommand tx) {
  switch (tx) {
    case TxCommand::None: return "None";
    case TxCommand::Begin: return "Begin";
    case TxCommand::Start: return "Start";
    case TxCommand::Commit: return "Commit";
    case TxCommand::Rollback: return "Rollback";
    case TxCommand::Savepoint: return "Savepoint";
    case TxCommand::Release: return "Release";
    case TxCommand::RollbackTo: return "RollbackTo";
    case TxCommand::Prepare: return "Prepare";
    case TxCommand::CommitPrepared: return "CommitPrepared";
    case TxCommand::RollbackPrepared: return "RollbackPrepared";
  }
  return "?";
}

std::string_view to_string(SetCommand::Kind kind) {
  switch (kind) {
    case SetCommand::Kind::Value: return "Value";
    case SetCommand::Kind::Default: return "Default";
    case SetCommand::Kind::Reset: return "Reset";
    case SetCommand::Kind::ResetAll: return "ResetAll";
    case SetCommand::Kind::Local: return "Local";
  }
  return "?";
}

}  // namespace shardline::router
