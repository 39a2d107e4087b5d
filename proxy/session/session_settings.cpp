// The session state the proxy replays on every server it takes: SET/RESET (and session-level
// set_config) recorded when they succeed, inside a transaction only once it commits; and the
// client's own statement namespace (DEALLOCATE, DISCARD ALL), which the proxy answers itself.

#include <spdlog/spdlog.h>

#include "proxy/session/client_session.hpp"

namespace shardline::proxy::session {

std::optional<ClientSession::NamespaceCommand> ClientSession::namespace_command(const router::Statement& st) const {
  if (tx_.failed()) return std::nullopt;
  if (st.kind == router::StatementKind::Deallocate && st.deallocate_name) {
    const std::string& name = *st.deallocate_name;
    if (name.empty()) return NamespaceCommand{NamespaceCommand::Kind::DeallocateAll, {}, "DEALLOCATE ALL"};
    if (statements_.count(name)) return NamespaceCommand{NamespaceCommand::Kind::Deallocate, name, "DEALLOCATE"};
    return std::nullopt;  // SQL-level PREPARE, or the server's own 26000
  }
  // DISCARD ALL inside a transaction block fails on the server (25001) without dropping
  // anything; in session pooling the server is the client's own and discards its state too.
  if (st.kind == router::StatementKind::Discard && st.discard == router::DiscardTarget::All && !in_transaction() &&
      services_.cluster.config().pool.mode == config::PoolMode::Transaction)
    return NamespaceCommand{NamespaceCommand::Kind::DiscardAll, {}, "DISCARD ALL"};
  return std::nullopt;
}

void ClientSession::run_namespace_command(const NamespaceCommand& c) {
  using K = NamespaceCommand::Kind;
  switch (c.kind) {
    case K::Deallocate:
      statements_.erase(c.name);
      break;
    case K::DeallocateAll:
      statements_.clear();
      break;
    case K::DiscardAll:
      // What survives a transaction in transaction pooling is what the proxy tracks: the
      // statement namespace and the settings (RESET ALL; re-applied on the next server).
      statements_.clear();
      has_unnamed_ = false;
      portal_sets_.clear();
      vars_ = startup_vars_;
      break;
  }
}

// ---- TrackerHooks ---------------------------------------------------------------------------------

void ClientSession::parse_not_applied(const Pending& p) {
  if (server_) server_->prepared.erase(p.statement_id);
  if (p.kind == Expect::Parse && !p.client_name.empty()) {
    auto it = statements_.find(p.client_name);
    if (it != statements_.end() && it->second->id == p.statement_id) statements_.erase(it);
  }
}

void ClientSession::apply_sets(const std::vector<SetChange>& sets) {
  for (const auto& c : sets) {
    switch (c.kind) {
      case SetChange::Kind::Set:
        vars_.set(c.name, c.sql);
        if (server_) server_->vars.set(c.name, c.sql);
        break;
      case SetChange::Kind::Reset:
        // RESET returns to the session default, which includes the startup packet's value.
        if (auto it = startup_vars_.vars().find(c.name); it != startup_vars_.vars().end())
          vars_.set(c.name, it->second);
        else
          vars_.reset(c.name);
        if (server_) server_->vars.reset(c.name);
        break;
      case SetChange::Kind::ResetAll:
        vars_ = startup_vars_;
        if (server_) server_->vars.reset_all();
        break;
      case SetChange::Kind::Savepoint:
      case SetChange::Kind::Release:
      case SetChange::Kind::RollbackTo: break;  // outside a transaction: nothing to undo
    }
  }
}

void ClientSession::simple_query_succeeded(const Pending& p, char tx_status) {
  if (p.discard_all) {
    vars_ = startup_vars_;
    statements_.clear();
    if (server_) {
      server_->vars.reset_all();
      server_->prepared.clear();
    }
  }
  if (p.deallocate_all) {
    statements_.clear();
    if (server_) server_->prepared.clear();
  }
  if (p.sets.empty()) return;
  if (tx_status == 'I') apply_sets(p.sets);
  else tx_.add_sets(p.sets);
}

void ClientSession::state_sync_done(bool ok) {
  if (!server_) return;
  if (ok) {
    server_->vars = sync_target_;
  } else {
    // Some setting was refused (e.g. a bad value in the startup packet): the server's state
    // is unknown, so it must not serve anyone else.
    spdlog::warn("client {} (pid {}): re-applying session settings on {} failed", peer_, pid_, pool_->name());
    server_->broken = true;
    server_->vars = sync_target_;
  }
}

void ClientSession::command_complete(std::string_view tag) {
  if (auto sets = tx_.command_complete(tag); !sets.empty()) apply_sets(sets);
}

void ClientSession::ready_for_query(char tx_status) {
  meter_.ready();
  if (tx_status == 'I' && pool_) ++pool_->stats.xact_count;
  if (auto sets = tx_.ready_for_query(tx_status, Participant{shard_, replica_}, services_.directory->epoch());
      !sets.empty())
    apply_sets(sets);
  if (tx_status == 'I') portal_sets_.clear();
}

void ClientSession::execute_succeeded(const Pending& p) { tx_.add_sets(p.sets); }

namespace {

/// A set_config argument's text: a constant, or a parameter's value (text format, or a
/// binary boolean); nullopt if unknown. `is_null` says it is SQL NULL.
std::optional<std::string> config_argument(const std::optional<router::KeyValue>& a, const router::BindValues* bind,
                                           bool& is_null, bool boolean) {
  is_null = false;
  if (!a) return std::nullopt;
  if (a->kind == router::KeyValue::Kind::Null) {
    is_null = true;
    return std::string();
  }
  if (a->kind == router::KeyValue::Kind::Literal) return a->text;
  if (!bind || a->param < 1 || std::size_t(a->param) > bind->values.size()) return std::nullopt;
  const auto& v = bind->values[std::size_t(a->param - 1)];
  if (!v) {
    is_null = true;
    return std::string();
  }
  const bool binary = std::size_t(a->param - 1) < bind->formats.size() && bind->formats[std::size_t(a->param - 1)] == 1;
  if (binary && boolean) {
    if (v->size() != 1) return std::nullopt;
    return std::string((*v)[0] ? "true" : "false");
  }
  return std::string(*v);  // text, or a text-like type's binary form (the same bytes)
}

/// PostgreSQL's boolean input (parse_bool): nullopt if it is not one.
std::optional<bool> parse_bool(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.erase(0, 1);
  if (s.empty()) return std::nullopt;
  auto prefix_of = [&](std::string_view word) { return s.size() <= word.size() && word.substr(0, s.size()) == s; };
  if (s == "1" || prefix_of("true") || prefix_of("yes") || (s.size() >= 2 && prefix_of("on"))) return true;
  if (s == "0" || prefix_of("false") || prefix_of("no") || (s.size() >= 2 && prefix_of("off"))) return false;
  return std::nullopt;
}

std::string sql_literal(std::string_view v) {
  std::string lit = "'";
  for (char c : v) {
    if (c == '\'') lit += '\'';
    lit += c;
  }
  return lit + "'";
}

}  // namespace

bool ClientSession::config_changes(const router::RouteTemplate& t, const router::BindValues* bind,
                                   std::vector<SetChange>& out) {
  bool known = true;
  for (const auto& ts : t.statements) {
    for (const auto& call : ts.set_configs) {
      bool name_null = false, value_null = false, local_null = false;
      auto name = config_argument(call.name, bind, name_null, false);
      auto value = config_argument(call.value, bind, value_null, false);
      auto local = config_argument(call.is_local, bind, local_null, true);
      if (name_null) continue;  // set_config(NULL, ...) fails on the server
      std::optional<bool> is_local = local_null ? std::optional<bool>(false) : local ? parse_bool(*local) : std::nullopt;
      if (!name || !value || !is_local) {
        known = false;
        continue;
      }
      if (*is_local) continue;  // ends with the transaction
      std::string key = *name;
      for (auto& c : key) c = char(std::tolower(static_cast<unsigned char>(c)));
      if (value_null) {  // set_config(name, NULL, false) resets the setting
        out.push_back({SetChange::Kind::Reset, key, {}});
      } else {
        out.push_back({SetChange::Kind::Set, key,
                       "SELECT pg_catalog.set_config(" + sql_literal(*name) + ", " + sql_literal(*value) + ", false)"});
      }
    }
  }
  return known;
}

std::vector<SetChange> ClientSession::set_changes(const router::RouteTemplate& t) {
  std::vector<SetChange> out;
  for (const auto& ts : t.statements) {
    const auto& s = ts.info;
    if (s.kind == router::StatementKind::Transaction) {
      if (s.tx == router::TxCommand::Savepoint) out.push_back({SetChange::Kind::Savepoint, s.savepoint, {}});
      if (s.tx == router::TxCommand::Release) out.push_back({SetChange::Kind::Release, s.savepoint, {}});
      if (s.tx == router::TxCommand::RollbackTo) out.push_back({SetChange::Kind::RollbackTo, s.savepoint, {}});
      continue;
    }
    if (s.kind != router::StatementKind::Set || !s.set) continue;
    using K = router::SetCommand::Kind;
    switch (s.set->kind) {
      case K::Value: out.push_back({SetChange::Kind::Set, s.set->name, s.set->text}); break;
      case K::Default:
      case K::Reset: out.push_back({SetChange::Kind::Reset, s.set->name, {}}); break;
      case K::ResetAll: out.push_back({SetChange::Kind::ResetAll, {}, {}}); break;
      case K::Local: break;
    }
  }
  return out;
}

}  // namespace shardline::proxy::session
