#include "proxy/session/transaction.hpp"

#include <algorithm>
#include <iterator>

namespace shardline::proxy::session {

using router::StatementKind;
using router::TxCommand;

void StatementEffects::add(const router::RouteTemplate& t) {
  for (const auto& ts : t.statements) {
    const auto& s = ts.info;
    ++statements;
    all_replica_safe = all_replica_safe && ts.replica_safe;
    // A SELECT a replica must not answer (a volatile function, FOR UPDATE) may write.
    writes = writes || s.writes || (s.kind == StatementKind::Select && !ts.replica_safe);
    begins = begins || s.tx == TxCommand::Begin || s.tx == TxCommand::Start;
    commits = commits || s.tx == TxCommand::Commit;
    copy_in = copy_in || (s.kind == StatementKind::Copy && s.copy_direction == "from");
  }
}

std::optional<Transaction::LocalAnswer> Transaction::local_answer(const router::Statement& st) const {
  if (!hold_begin_ || st.kind != StatementKind::Transaction || !(held_ || server_status_ == 'I')) return std::nullopt;
  const bool begin = st.tx == TxCommand::Begin || st.tx == TxCommand::Start;
  if (!held_) {
    if (begin) return LocalAnswer{"BEGIN", 'T'};
    return std::nullopt;  // COMMIT outside a transaction: the server's WARNING
  }
  switch (st.tx) {
    case TxCommand::Commit:
    case TxCommand::Rollback:
      return LocalAnswer{held_failed_ || st.tx == TxCommand::Rollback ? "ROLLBACK" : "COMMIT", 'I'};
    case TxCommand::Savepoint:
    case TxCommand::Release:
    case TxCommand::RollbackTo:
      if (held_failed_) return std::nullopt;  // 25P02, as for any statement
      return LocalAnswer{st.tx == TxCommand::Savepoint ? "SAVEPOINT" : st.tx == TxCommand::Release ? "RELEASE" : "ROLLBACK",
                         'T'};
    case TxCommand::Begin:
    case TxCommand::Start: return LocalAnswer{"BEGIN", status(), true};
    default: return std::nullopt;
  }
}

protocol::SqlError Transaction::aborted_error() {
  return protocol::SqlError::error("25P02",
                                   "current transaction is aborted, commands ignored until end of transaction block");
}

std::optional<Transaction::LocalAnswer> Transaction::answer_locally(const router::Statement& st, std::uint64_t epoch) {
  auto a = local_answer(st);
  if (!a || a->already_open) return a;
  switch (st.tx) {
    case TxCommand::Begin:
    case TxCommand::Start: start_held(st, epoch); break;
    case TxCommand::Commit:
    case TxCommand::Rollback:
      held_ = held_failed_ = read_only_ = false;
      held_sql_.clear();
      end_savepoints();
      break;
    default:  // a savepoint command: replayed in order where the transaction binds
      held_sql_.append(st.text);
      held_sql_ += ';';
      savepoint_command({st.tx == TxCommand::Savepoint  ? SetChange::Kind::Savepoint
                         : st.tx == TxCommand::Release ? SetChange::Kind::Release
                                                       : SetChange::Kind::RollbackTo,
                         st.savepoint, {}});
      break;
  }
  return a;
}

void Transaction::start_held(const router::Statement& st, std::uint64_t epoch) {
  end_savepoints();
  held_ = true;
  held_failed_ = false;
  read_only_ = st.read_only_tx;
  held_sql_.assign(st.text);
  held_sql_ += ';';
  epoch_ = epoch;
  participants_.clear();
  touched_any_ = false;
  touched_.clear();
}

void Transaction::bind(Participant p, bool may_move) {
  held_ = false;
  server_status_ = 'T';  // what the swallowed ReadyForQuery of the replay says
  participants_.clear();
  participants_.push_back(p);
  if (!may_move) held_sql_.clear();
}

void Transaction::unbind() {
  server_status_ = 'I';
  held_ = true;  // held_sql_ was kept by bind(p, true)
  held_failed_ = false;
  participants_.clear();
}

void Transaction::add_sets(std::span<const SetChange> sets) {
  for (const auto& c : sets) {
    if (c.is_savepoint_command()) savepoint_command(c);
    else sets_.push_back(c);
  }
}

void Transaction::savepoint_command(const SetChange& c) {
  if (c.kind == SetChange::Kind::Savepoint) {
    savepoints_.emplace_back(c.name, sets_.size());
    return;
  }
  auto it = std::find_if(savepoints_.rbegin(), savepoints_.rend(), [&](const auto& s) { return s.first == c.name; });
  if (it == savepoints_.rend()) return;  // the server refused it (3B001): never reaches here
  auto at = std::prev(it.base());
  if (c.kind == SetChange::Kind::Release) {  // it and every later savepoint go; the SETs stay
    savepoints_.erase(at, savepoints_.end());
  } else {  // ROLLBACK TO: the SETs since go, the savepoint stays
    sets_.resize(at->second);
    savepoints_.erase(std::next(at), savepoints_.end());
  }
}

std::vector<SetChange> Transaction::command_complete(std::string_view tag) {
  std::vector<SetChange> apply;
  if (tag == "COMMIT") {
    apply.swap(sets_);
    end_savepoints();
  } else if (tag == "ROLLBACK") {
    rollback_seen_ = true;  // ROLLBACK or ROLLBACK TO SAVEPOINT: ReadyForQuery says which
  }
  return apply;
}

std::vector<SetChange> Transaction::ready_for_query(char status, Participant on, std::uint64_t epoch) {
  std::vector<SetChange> apply;
  server_status_ = status;
  if (status == 'I') {
    // An implicit (extended protocol) transaction committed at Sync unless an error came first
    // (or the transaction was rolled back).
    if (!error_since_ready_ && !rollback_seen_) apply.swap(sets_);
    sets_.clear();
    end_savepoints();
    participants_.clear();
    if (!held_) {  // (not a late reply of a statement before a held BEGIN)
      read_only_ = false;
      touched_any_ = false;
      touched_.clear();
    }
  } else if (participants_.empty() && !held_) {
    participants_.push_back(on);  // opened on the server itself (session pooling, a Query's BEGIN)
    epoch_ = epoch;
  }
  error_since_ready_ = false;
  rollback_seen_ = false;
  return apply;
}

std::optional<std::vector<int>> Transaction::after_statements(const StatementEffects& e, bool was_open,
                                                              std::span<const int> logical) {
  if (!was_open && !e.begins) {  // autocommit: the write commits with this request
    if (e.writes) return std::vector<int>(logical.begin(), logical.end());
    return std::nullopt;
  }
  if (e.writes) wrote(logical);
  if (e.commits && wrote_) {
    wrote_ = false;
    return scope_.take();
  }
  return std::nullopt;
}

void Transaction::wrote(std::span<const int> logical) {
  wrote_ = true;
  scope_.add(logical);
}

}  // namespace shardline::proxy::session
