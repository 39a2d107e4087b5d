// Parse, Bind, Describe and Close on the unit's server. The client's statement names map to
// statements shared by every client on a server (`_slN`), prepared on a server the first time
// one is used there; the unnamed statement is re-parsed where the client did not parse it.

#include <fmt/format.h>

#include "proxy/protocol/message_writer.hpp"
#include "proxy/session/client_session.hpp"

namespace shardline::proxy::session {

using protocol::Frame;
using protocol::SqlError;
namespace sqlstate = protocol::sqlstate;

namespace {
/// Statement id of a proxy-injected unnamed Parse (no shared statement has it).
constexpr std::uint64_t kUnnamedStatement = ~std::uint64_t(0);
}  // namespace

bool ClientSession::handle_parse(const Frame& f) {
  protocol::BodyReader r(f.body);
  auto name = r.cstr();
  auto query = r.cstr();
  const char* types_at = r.pos();
  auto nparams = r.i16();
  if (nparams && *nparams >= 0) r.bytes(std::size_t(*nparams) * 4);
  if (!name || !query || !nparams || *nparams < 0 || !r.ok() || !r.at_end()) {
    unit_extras().last_error = SqlError::fatal(sqlstate::kProtocolViolation, "invalid Parse message");
    return false;
  }
  if (name->empty()) {
    remember_unnamed(*query, std::string_view(types_at, std::size_t(r.pos() - types_at)), server_->id());
    to_server_.ref(f.body.data() - 5, f.total_size);
    tracker_.push(Pending{Expect::Parse});
    return true;
  }
  std::string client_name(*name);
  if (statements_.count(client_name)) {
    push_failing_parse(SqlError::error(sqlstate::kDuplicatePreparedStatement,
                                       fmt::format("prepared statement \"{}\" already exists", client_name)));
    return true;
  }
  auto st = services_.statements.intern(*query, std::string_view(types_at, std::size_t(r.pos() - types_at)));
  statements_[client_name] = st;
  if (server_->prepared.count(st->id)) {
    std::string out;
    protocol::MessageWriter(out).parse_complete();
    add_synthetic(std::move(out));
    return true;
  }
  server_->prepared.insert(st->id);
  to_server_.own_bytes(st->parse_message);
  Pending p{Expect::Parse};
  p.statement_id = st->id;
  p.client_name = std::move(client_name);
  tracker_.push(std::move(p));
  return true;
}

bool ClientSession::handle_bind(const Frame& f) {
  protocol::BodyReader r(f.body);
  auto portal = r.cstr();
  auto stmt = r.cstr();
  if (!portal || !stmt) {
    unit_extras().last_error = SqlError::fatal(sqlstate::kProtocolViolation, "invalid Bind message");
    return false;
  }
  {
    // A SET/RESET sent through the extended protocol changes session state too.
    const std::string* query = &unnamed_query_;
    if (!stmt->empty())
      if (auto it = statements_.find(std::string(*stmt)); it != statements_.end()) query = &it->second->query;
    note_bind_effects(*query, *portal, r);
  }
  if (stmt->empty()) {
    ensure_unnamed();
    to_server_.ref(f.body.data() - 5, f.total_size);
    tracker_.push(Pending{Expect::Bind});
    return true;
  }
  auto it = statements_.find(std::string(*stmt));
  if (it == statements_.end()) {
    push_failing_parse(SqlError::error(sqlstate::kUndefinedPreparedStatement,
                                       fmt::format("prepared statement \"{}\" does not exist", *stmt)));
    return true;
  }
  ensure_prepared(*it->second);
  protocol::MessageWriter w = to_server_.writer();
  w.begin('B').cstr(*portal).cstr(it->second->server_name).raw(std::string_view(r.pos(), r.remaining())).end();
  to_server_.sealed();
  tracker_.push(Pending{Expect::Bind});
  return true;
}

void ClientSession::note_bind_effects(std::string_view query, std::string_view portal, protocol::BodyReader values) {
  auto tmpl = services_.templates.get(query, *services_.schema);
  auto sets = set_changes(*tmpl);
  bool has_set_config = false;
  for (const auto& ts : tmpl->statements) has_set_config = has_set_config || !ts.set_configs.empty();
  if (has_set_config) {
    router::BindValues bind;
    std::vector<std::int16_t> fmts;
    read_bind_values(values, bind, fmts);
    if (!config_changes(*tmpl, &bind, sets)) server_->broken = true;  // unknown settings: never reused
  }
  if (!sets.empty()) portal_sets_[std::string(portal)] = std::move(sets);
  else if (!portal_sets_.empty()) portal_sets_.erase(std::string(portal));
  // DEALLOCATE ALL / DISCARD ALL in a unit the proxy could not answer alone: as with the
  // simple protocol, this server holds no shared statements for anyone else afterwards.
  for (const auto& ts : tmpl->statements) {
    const auto& st = ts.info;
    if (st.kind == router::StatementKind::Ddl) services_.statements.invalidate_all();
    if ((st.kind == router::StatementKind::Deallocate && st.deallocate_name && st.deallocate_name->empty()) ||
        (st.kind == router::StatementKind::Discard && st.discard == router::DiscardTarget::All)) {
      server_->broken = true;
      server_->prepared.clear();
    }
  }
}

bool ClientSession::handle_describe_or_close(const Frame& f) {
  protocol::BodyReader r(f.body);
  auto kind = r.byte();
  auto name = r.cstr();
  if (!kind || !name || (*kind != 'S' && *kind != 'P')) {
    unit_extras().last_error = SqlError::fatal(sqlstate::kProtocolViolation,
                                  f.tag == 'D' ? "invalid Describe message" : "invalid Close message");
    return false;
  }
  const Expect reply = f.tag == 'D' ? Expect::Describe : Expect::ClosePortal;
  if (*kind == 'P' || name->empty()) {
    if (f.tag == 'D' && *kind == 'S') ensure_unnamed();
    to_server_.ref(f.body.data() - 5, f.total_size);
    tracker_.push(Pending{reply});
    return true;
  }
  std::string client_name(*name);
  if (f.tag == 'C') {
    // The shared server-side statement stays for other clients; only the name goes.
    statements_.erase(client_name);
    std::string out;
    protocol::MessageWriter(out).close_complete();
    add_synthetic(std::move(out));
    return true;
  }
  auto it = statements_.find(client_name);
  if (it == statements_.end()) {
    push_failing_parse(SqlError::error(sqlstate::kUndefinedPreparedStatement,
                                       fmt::format("prepared statement \"{}\" does not exist", client_name)));
    return true;
  }
  ensure_prepared(*it->second);
  protocol::MessageWriter w = to_server_.writer();
  w.begin('D').byte('S').cstr(it->second->server_name).end();
  to_server_.sealed();
  tracker_.push(Pending{Expect::Describe});
  return true;
}

void ClientSession::ensure_prepared(const PreparedStatement& st) {
  if (server_->prepared.count(st.id)) return;
  server_->prepared.insert(st.id);
  to_server_.own_bytes(st.parse_message);
  Pending p{Expect::InjectedParse};
  p.statement_id = st.id;
  tracker_.push(std::move(p));
}

void ClientSession::ensure_unnamed() {
  if (!has_unnamed_ || unnamed_server_ == server_->id()) return;
  protocol::MessageWriter w = to_server_.writer();
  w.begin('P').cstr("").cstr(unnamed_query_).raw(unnamed_types_).end();
  to_server_.sealed();
  Pending p{Expect::InjectedParse};
  p.statement_id = kUnnamedStatement;
  tracker_.push(std::move(p));
  unnamed_server_ = server_->id();
}

void ClientSession::push_failing_parse(SqlError e) {
  // The server must skip to Sync exactly as if it had raised this error itself, so it is
  // given a Parse that fails, and its error is replaced by ours.
  unnamed_server_ = 0;  // the failing Parse replaces the server's unnamed statement
  protocol::MessageWriter w = to_server_.writer();
  w.begin('P').cstr("").cstr("shardline proxy error").i16(0).end();
  to_server_.sealed();
  Pending p{Expect::FailingParse};
  p.replacement = std::make_shared<const SqlError>(std::move(e));
  tracker_.push(std::move(p));
}

void ClientSession::remember_unnamed(std::string_view query, std::string_view types, std::uint64_t on_server) {
  unnamed_query_.assign(query);
  unnamed_types_.assign(types);
  has_unnamed_ = true;
  unnamed_server_ = on_server;
}

}  // namespace shardline::proxy::session
