// The extended query protocol's routing: a unit (its messages up to Sync or Flush) is one
// implicit transaction on one server, so it is routed as a whole by its Binds, looking ahead in
// the buffered input. Units the proxy answers itself (shardline.* settings, the statement
// namespace, a held transaction's control) and units for several shards are decided here too.

#include <fmt/format.h>

#include <unordered_map>

#include "proxy/protocol/message_writer.hpp"
#include "proxy/session/client_session.hpp"

namespace shardline::proxy::session {

using protocol::Frame;
using protocol::SqlError;
namespace sqlstate = protocol::sqlstate;

/// What the lookahead over one unit found.
struct ClientSession::UnitScan {
  std::span<const char> data;  ///< the buffered input; views below point into it
  std::size_t pos = 0;         ///< end of the messages scanned
  /// Names parsed in this unit (the input does not move until the next read, and none happens
  /// during the scan).
  std::unordered_map<std::string_view, std::string_view> parsed;
  std::unordered_map<std::string_view, std::string_view> parsed_types;  ///< name -> Parse's type part
  std::string_view unnamed;
  std::optional<std::string_view> unnamed_types;  ///< only when parsed in this unit
  std::optional<router::Plan> decided;            ///< the first Bind that routes
  bool complete = false;                          ///< a Sync or Flush (or another message) ends it
  bool complete_with_sync = false;
  bool executes = false;  ///< a unit that only parses/describes gives no routing information
  int binds = 0;
  int span_with = -1;  ///< a later Bind's shard when the Binds name keys on several shards
  std::shared_ptr<const router::RouteTemplate> last;  ///< the last Bind's template
};

asio::awaitable<std::optional<bool>> ClientSession::route_unit() {
  UnitScan u;
  u.data = in_.readable();
  u.unnamed = unnamed_query_;
  unit_effects_ = StatementEffects{};
  unit_scope_.clear();
  unit_in_tx_ = in_transaction();
  scratch().bind_shards.clear();
  scratch().binds_followed = 0;
  scan_unit(u);
  if (!u.complete && !u.decided) co_return std::nullopt;  // wait for the rest of the unit
  if (co_await wait_while_held(unit_scope_.logical())) co_return co_await route_unit();
  unit_routed_ = true;
  unit_undecided_ = !u.executes && !u.decided.has_value();
  if (answer_unit_locally(u)) co_return true;
  if (!parked_.empty() && unit_effects_.tx_control) {
    if (co_await distributed_control_unit(u)) co_return true;
    if (!server_) tx_.fail_distributed();
    co_await refuse(SqlError::error(sqlstate::kFeatureNotSupported,
                                    "in a transaction that spans several shards, send COMMIT or ROLLBACK through the "
                                    "simple query protocol (savepoints are not supported there); the transaction "
                                    "is aborted"),
                    true);
    co_return true;
  }
  if (tx_.aborted_while_held() && u.binds > 0) {
    co_await refuse(Transaction::aborted_error(), true);  // as the simple protocol answers
    co_return true;
  }
  router::Plan plan = u.decided ? std::move(*u.decided) : router::Plan{};
  int target = default_shard();
  if (plan.kind == router::RouteKind::Single && u.span_with >= 0) {
    if (std::string why = span_refusal(plan.shards.front(), u.span_with); !why.empty()) {
      plan.kind = router::RouteKind::Refuse;
      plan.error = {sqlstate::kFeatureNotSupported, why};
    }
  }
  if (plan.kind == router::RouteKind::Single) {
    target = plan.shards.front();
  } else if (plan.kind != router::RouteKind::Any && plan.kind != router::RouteKind::Refuse) {
    std::string why = co_await prepare_multi_unit(plan, u);
    if (why.empty()) co_return true;
    plan.kind = router::RouteKind::Refuse;
    plan.error = {sqlstate::kFeatureNotSupported, why};
  }
  int replica = -1;
  if (unit_effects_.all_replica_safe && u.binds > 0 && !unit_in_tx_ && !unit_effects_.begins &&
      plan.kind != router::RouteKind::Refuse && u.last && u.span_with < 0)
    replica = co_await choose_replica(target, *u.last, unit_scope_.logical());
  SqlError refusal;
  if (plan.kind == router::RouteKind::Refuse) refusal = SqlError::error(plan.error.sqlstate, plan.error.message);
  else if (!co_await attach(target, u.executes || u.decided.has_value(), replica)) refusal = unit_extras().last_error;
  if (!refusal.sqlstate.empty()) co_await refuse(refusal, true);
  co_return true;
}

void ClientSession::scan_unit(UnitScan& u) {
  for (;;) {
    Frame g;
    auto st = protocol::decode_frame(u.data.subspan(u.pos), g);
    if (st != protocol::DecodeStatus::Ok) return;  // malformed input is reported by the loop
    u.pos += g.total_size;
    protocol::BodyReader r(g.body);
    if (g.tag == 'P') {
      auto name = r.cstr();
      auto query = r.cstr();
      if (name && query) {
        const std::string_view types(r.pos(), r.remaining());
        if (name->empty()) u.unnamed = *query, u.unnamed_types = types;
        else u.parsed[*name] = *query, u.parsed_types[*name] = types;
      }
    } else if (g.tag == 'B') {
      auto at = r;
      auto portal = r.cstr();
      auto stmt = r.cstr();
      if (!portal || !stmt) return;
      scan_bind(u, at);
    } else if (g.tag == 'S' || g.tag == 'H') {
      u.complete = true;
      u.complete_with_sync = g.tag == 'S';
      return;
    } else if (g.tag == 'E') {
      u.executes = true;
    } else if (g.tag != 'D' && g.tag != 'C') {
      u.complete = true;  // anything else ends the lookahead
      return;
    }
  }
}

void ClientSession::read_bind_values(protocol::BodyReader r, router::BindValues& bind, std::vector<std::int16_t>& fmts) {
  bind.values.clear();
  bind.formats.clear();
  fmts.clear();
  auto nfmt = r.i16();
  for (int i = 0; nfmt && i < *nfmt; ++i) fmts.push_back(r.i16().value_or(0));
  auto nval = r.i16();
  for (int i = 0; nval && i < *nval && r.ok(); ++i) {
    auto len = r.i32();
    if (!len) break;
    if (*len < 0) bind.values.push_back(std::nullopt);
    else bind.values.push_back(r.bytes(std::size_t(*len)));
    bind.formats.push_back(fmts.empty() ? 0 : fmts.size() == 1 ? fmts[0] : (std::size_t(i) < fmts.size() ? fmts[std::size_t(i)] : 0));
  }
}

void ClientSession::scan_bind(UnitScan& u, protocol::BodyReader r) {
  // Every Bind of the unit is routed: one unit (up to Sync) is one implicit transaction, on one
  // server unless its Binds name keys on several shards (see spanning_unit.cpp).
  (void)r.cstr();  // the portal (scan_unit checked both names)
  auto stmt = r.cstr();
  std::string_view query;
  std::optional<std::string_view> types;  // the parameter types the client declared
  if (stmt->empty()) {
    query = u.unnamed;
    types = u.unnamed_types;
  } else if (auto it = u.parsed.find(*stmt); it != u.parsed.end()) {
    query = it->second;
    types = u.parsed_types[*stmt];
  } else if (auto it2 = statements_.find(std::string(*stmt)); it2 != statements_.end()) {
    query = it2->second->query;
    types = it2->second->param_types;
  }
  auto plan = route_bind(query, types, r, u.last);
  ++u.binds;
  scratch().bind_shards.push_back(plan.kind == router::RouteKind::Single ? plan.shards.front() : -1);
  if (plan.kind == router::RouteKind::Any) return;
  if (!u.decided) {
    u.decided = std::move(plan);
  } else if (u.decided->kind != router::RouteKind::Single) {
    // (a unit for several shards: multi_shard_unit checks its later Binds)
  } else if (plan.kind == router::RouteKind::Single) {
    if (plan.shards != u.decided->shards && u.span_with < 0) u.span_with = plan.shards.front();
  } else if (plan.kind == router::RouteKind::Refuse) {
    u.decided = std::move(plan);  // the unit is refused before any of it runs
  } else {
    u.decided->kind = router::RouteKind::Refuse;
    u.decided->error = {sqlstate::kFeatureNotSupported, std::string(kMixedUnit)};
  }
}

router::Plan ClientSession::route_bind(std::string_view query, std::optional<std::string_view> types,
                                       protocol::BodyReader values, std::shared_ptr<const router::RouteTemplate>& tmpl) {
  router::BindValues& bind = scratch().bind;
  read_bind_values(values, bind, scratch().formats);
  // The parameter types decide how PostgreSQL reads the values.
  bind.types.clear();
  if (types) {
    protocol::BodyReader tr(*types);
    const int ntypes = tr.i16().value_or(0);
    for (std::size_t i = 0; i < bind.values.size(); ++i) {
      const auto oid = int(i) < ntypes ? tr.i32() : std::optional<std::int32_t>(0);
      bind.types.push_back(std::uint32_t(oid.value_or(0)));
    }
  }
  tmpl = services_.templates.get(query, *services_.schema);
  unit_effects_.add(*tmpl);
  if (!in_transaction())  // a BEGIN in the unit: shards the transaction joins later replay it
    for (const auto& ts : tmpl->statements)
      if (ts.info.tx == router::TxCommand::Begin || ts.info.tx == router::TxCommand::Start) tx_.note_begin(ts.info.text);
  auto plan = plan_for(*tmpl, &bind);
  if (std::string why = pooling_refusal(*tmpl); !why.empty()) {
    plan.kind = router::RouteKind::Refuse;
    plan.error = {sqlstate::kFeatureNotSupported, why};
  }
  // What the unit can see and write: a statement without tables only matters if it writes.
  if (plan.kind != router::RouteKind::Any || plan.writes) {
    unit_scope_.add(plan.logical);
    if (tx_.open() || unit_effects_.begins) tx_.touch(plan.logical);
  }
  return plan;
}

bool ClientSession::answer_unit_locally(UnitScan& u) {
  if (u.binds != 1 || !u.complete || u.last->statements.size() != 1) return false;
  const router::Statement& st = u.last->statements[0].info;
  const bool setting = is_proxy_setting(st);
  std::optional<NamespaceCommand> cmd;
  if (!setting) cmd = namespace_command(st);
  if (!setting && !cmd && (u.decided || !tx_.local_answer(st))) return false;
  auto& x = unit_extras();  // allocated only once a unit is answered here
  x.local_show.reset();
  x.local_error.reset();
  x.local_command.reset();
  x.local_tx.reset();
  if (setting) {
    // shardline's own settings through the extended protocol, answered like PostgreSQL would.
    std::string tag;
    std::optional<std::pair<std::string, std::string>> shown;
    x.local_error = proxy_setting(st, tag, shown);
    x.local_show = std::move(shown);
    x.local_tag = tag;
  } else if (cmd) {
    x.local_tag = cmd->tag;
    x.local_command = std::move(cmd);
  } else {
    // Transaction control of a held transaction: done at Execute, as for the simple protocol.
    x.local_tx = u.last;
  }
  unit_local_ = true;
  return true;
}

bool ClientSession::execute_local_unit(protocol::MessageWriter& w) {
  auto& x = unit_extras();
  if (x.local_error) {
    w.error(*x.local_error);
    return false;
  }
  if (x.local_show) w.data_row({x.local_show->second});
  if (x.local_command) {
    run_namespace_command(*x.local_command);
    x.local_command.reset();
  }
  if (!x.local_tx) {
    w.command_complete(x.local_tag);
    return true;
  }
  auto tmpl = std::move(x.local_tx);
  auto a = tx_.answer_locally(tmpl->statements[0].info, services_.directory->epoch());
  if (!a) {  // a reply of an earlier pipelined request opened a transaction on the server meanwhile
    w.error(SqlError::error(sqlstate::kFeatureNotSupported,
                            "transaction control pipelined behind a statement that opened a transaction on its "
                            "server cannot be answered by the proxy; send a Sync and wait for its reply first"));
    return false;
  }
  if (a->already_open) w.notice(SqlError{"25001", "there is already a transaction in progress", "WARNING", {}, {}});
  w.command_complete(a->tag);
  x.local_tag = a->tag;  // a second Execute of the portal repeats the tag, and does nothing again
  return true;
}

asio::awaitable<bool> ClientSession::distributed_control_unit(UnitScan& u) {
  if (!u.complete_with_sync || u.binds != 1 || !u.last || u.last->statements.size() != 1) co_return false;
  const router::TxCommand cmd = u.last->statements[0].info.tx;
  if (cmd != router::TxCommand::Commit && cmd != router::TxCommand::Rollback) co_return false;
  // The unit's bytes leave the input first: the commit awaits, and `u` views into the input.
  const std::string unit(u.data.data(), u.pos);
  in_.consume(u.pos);
  unit_routed_ = false;
  std::string out;
  protocol::MessageWriter w(out);
  bool failed = false;
  std::span<const char> rest(unit.data(), unit.size());
  for (Frame g; !rest.empty() && protocol::decode_frame(rest, g) == protocol::DecodeStatus::Ok;
       rest = rest.subspan(g.total_size)) {
    if (failed && g.tag != 'S') continue;  // after an error PostgreSQL skips to Sync
    protocol::BodyReader r(g.body);
    if (g.tag == 'P') {
      note_unsent_parse(g);
      w.begin('1').end();
    } else if (g.tag == 'B') {
      w.begin('2').end();
    } else if (g.tag == 'D') {
      if (r.byte() == 'S') w.begin('t').i16(0).end();  // no parameters
      w.begin('n').end();
    } else if (g.tag == 'C') {
      w.begin('3').end();
    } else if (g.tag == 'E' && !parked_.empty()) {
      std::string tag;
      if (auto err = co_await finish_distributed(cmd == router::TxCommand::Commit, tag)) {
        w.error(*err);
        failed = true;
      } else {
        w.command_complete(tag);
      }
    } else if (g.tag == 'E') {
      w.command_complete(cmd == router::TxCommand::Commit ? "COMMIT" : "ROLLBACK");  // a second Execute
    } else if (g.tag == 'S') {
      w.ready_for_query(tx_.status());
    }
  }
  co_await reply_local(std::move(out));
  co_return true;
}

asio::awaitable<std::string> ClientSession::prepare_multi_unit(router::Plan& plan, UnitScan& u) {
  // Several shards: the whole unit (up to Sync) runs on each, outside any transaction.
  if (plan.kind == router::RouteKind::Split)
    co_return "a multi-row INSERT across shards through the extended query protocol is not supported yet; "
              "send one INSERT per tenant or use the simple query protocol";
  const bool in_tx = in_transaction();  // 2pc: runs on the transaction's participants
  if (in_tx && !twopc())
    co_return "this statement spans several shards, which is not possible inside a transaction "
              "(cross_shard_transactions is deny)";
  if (!u.complete_with_sync) co_return "a statement on several shards must end its unit with Sync";
  std::vector<bool> keep;
  exec::ScatterRequest scatter;
  std::string why;
  std::optional<std::string> request =
      multi_shard_unit(u.data.subspan(0, u.pos), keep, exec::streams_as_scatter(plan) ? &scatter : nullptr, why);
  if (!why.empty()) co_return why;
  if (!request) co_return "this extended-protocol request cannot be sent to several shards";
  if (server_ && server_provisional_) leave_provisional_server();
  if (!in_tx && !co_await release_idle_server())
    co_return "this statement spans several shards, which is not possible on a session-pooled connection";
  unit_extras().multi = std::move(plan);
  unit_extras().multi_request = std::move(*request);
  unit_extras().multi_keep_parse = std::move(keep);
  unit_extras().multi_scatter = std::move(scatter);
  co_return std::string();
}

asio::awaitable<bool> ClientSession::handle_local_unit(const Frame& f) {
  // The replies PostgreSQL gives to Parse/Bind/Describe/Execute/Sync of BEGIN or COMMIT.
  std::string out;
  protocol::MessageWriter w(out);
  switch (f.tag) {
    case 'P': {
      protocol::BodyReader r(f.body);
      auto name = r.cstr();
      auto query = r.cstr();
      const char* types_at = r.pos();
      if (name && query && !name->empty()) {
        // A named BEGIN/COMMIT: the client may bind it again later; it is prepared on a
        // server only when one is used for it.
        if (statements_.count(std::string(*name))) {
          w.error(SqlError::error(sqlstate::kDuplicatePreparedStatement,
                                  fmt::format("prepared statement \"{}\" already exists", *name)));
          unit_local_ = false;
          skip_until_sync_ = true;
          co_return co_await reply_local(std::move(out));
        }
        statements_[std::string(*name)] =
            services_.statements.intern(*query, std::string_view(types_at, r.remaining()));
      } else if (name && query) {
        remember_unnamed(*query, std::string_view(types_at, r.remaining()), 0);
      }
      w.parse_complete();
      break;
    }
    case 'B': w.begin('2').end(); break;
    case 'D': {
      protocol::BodyReader r(f.body);
      if (r.byte().value_or('P') == 'S') w.begin('t').i16(0).end();
      if (unit_extras().local_show) w.row_description_text({unit_extras().local_show->first});
      else w.begin('n').end();
      break;
    }
    case 'E':
      if (!execute_local_unit(w)) {
        unit_local_ = false;
        skip_until_sync_ = true;
      }
      break;
    case 'C': w.close_complete(); break;
    case 'S':
      w.ready_for_query(tx_.status());
      unit_local_ = false;
      unit_routed_ = false;
      break;
    default: co_return true;  // Flush: nothing pending
  }
  co_return co_await reply_local(std::move(out));
}

}  // namespace shardline::proxy::session
