// The simple query protocol: a Query is looked up by its shape, answered by the proxy when it
// only touches proxy state (shardline.* settings, a held transaction, the statement namespace),
// else routed to one server (forwarded untouched) or run on several shards.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "proxy/protocol/message_writer.hpp"
#include "proxy/session/client_session.hpp"
#include "router/parser/literal_normalizer.hpp"

namespace shardline::proxy::session {

using protocol::Frame;
using protocol::SqlError;
namespace sqlstate = protocol::sqlstate;

asio::awaitable<bool> ClientSession::handle_query(const Frame& f, std::string_view whole) {
  protocol::BodyReader r(f.body);
  auto sql_opt = r.cstr();
  if (!sql_opt) {
    co_await send_fatal(SqlError::fatal(sqlstate::kProtocolViolation, "invalid Query message"));
    co_return false;
  }
  const std::string_view sql = *sql_opt;
  has_unnamed_ = false;  // a Query drops the unnamed statement
  const router::BindValues* literal_bind = nullptr;
  std::shared_ptr<const router::RouteTemplate> tmpl = query_template(sql, literal_bind);
  for (const auto& ts : tmpl->statements)
    if (ts.info.kind == router::StatementKind::Ddl) services_.statements.invalidate_all();
  if (auto reply = local_query_reply(*tmpl)) co_return co_await reply_local(std::move(*reply));
  if (!parked_.empty())  // a transaction on several shards: COMMIT is a two-phase commit
    if (auto done = co_await distributed_control(*tmpl)) co_return *done;
  if (tx_.aborted_while_held()) co_return co_await refuse(Transaction::aborted_error(), false);

  router::Plan plan = plan_query(tmpl, sql, literal_bind);
  if (co_await wait_while_held(plan.logical)) plan = plan_query(tmpl, sql, literal_bind);
  int target = -1;
  switch (plan.kind) {
    case router::RouteKind::Any: target = default_shard(); break;
    case router::RouteKind::Single: target = plan.shards.front(); break;
    case router::RouteKind::Refuse: break;
    default:
      if (auto done = co_await run_query_on_shards(plan, *tmpl, sql)) co_return *done;
      break;
  }
  co_return co_await forward_query(*tmpl, literal_bind, plan, target, whole);
}

std::shared_ptr<const router::RouteTemplate> ClientSession::query_template(std::string_view sql,
                                                                           const router::BindValues*& literal_bind) {
  // Statements are cached by shape: literals become $n and are routed like bound values.
  literal_bind = nullptr;
  if (!router::normalize_literals(sql, scratch().normalized)) return services_.templates.get(sql, *services_.schema);
  auto tmpl = services_.templates.get(scratch().normalized.text, *services_.schema);
  if (tmpl->parse_error) return services_.templates.get(sql, *services_.schema);  // a shape the grammar rejects
  // A cross-shard merge the shape cannot plan may be plannable from the text: `GROUP BY qty % 4`
  // and `SELECT qty % 4` are one expression, but their shapes `% $1` and `% $3` are not.
  for (const auto& st : tmpl->statements)
    if (!st.merge_refusal.empty()) return services_.templates.get(sql, *services_.schema);
  auto& lb = scratch().literal_bind;
  lb.values.clear();
  lb.formats.clear();
  lb.origins.clear();
  const auto& lits = scratch().normalized;
  for (std::size_t i = 0; i < lits.literals.size(); ++i) {
    lb.values.emplace_back(lits.literals[i]);
    lb.formats.push_back(0);
    lb.origins.push_back(lits.quoted[i] ? router::BindOrigin::StringLiteral : router::BindOrigin::NumberLiteral);
  }
  literal_bind = &lb;
  return tmpl;
}

std::optional<std::string> ClientSession::local_query_reply(const router::RouteTemplate& t) {
  if (t.statements.size() != 1) return std::nullopt;
  const auto& st = t.statements[0].info;
  std::string out;
  protocol::MessageWriter w(out);
  if (is_proxy_setting(st)) {  // shardline's own settings never reach a server
    std::string tag;
    std::optional<std::pair<std::string, std::string>> shown;
    if (auto err = proxy_setting(st, tag, shown)) {
      w.error(*err);
    } else {
      if (shown) {
        w.row_description_text({shown->first});
        w.data_row({shown->second});
      }
      w.command_complete(tag);
    }
  } else if (tx_.local_answer(st)) {
    // A transaction is bound to a shard by its first routable statement: BEGIN is held until then.
    auto a = *tx_.answer_locally(st, services_.directory->epoch());
    if (a.already_open) w.notice(SqlError{"25001", "there is already a transaction in progress", "WARNING", {}, {}});
    w.command_complete(a.tag);
    w.ready_for_query(a.status);
    return out;
  } else if (tx_.aborted_while_held()) {
    return std::nullopt;  // 25P02, before the namespace is touched
  } else if (auto cmd = namespace_command(st)) {
    run_namespace_command(*cmd);
    w.command_complete(cmd->tag);
  } else {
    return std::nullopt;
  }
  w.ready_for_query(tx_.status());
  return out;
}

router::Plan ClientSession::plan_query(std::shared_ptr<const router::RouteTemplate>& tmpl, std::string_view sql,
                                       const router::BindValues* literal_bind) {
  router::Plan plan = plan_for(*tmpl, literal_bind);
  if (plan.kind == router::RouteKind::Split && literal_bind && !plan.parts.empty()) {
    // Splitting rewrites the statement's text: do it from the original, not the shape.
    tmpl = router::build_route_template(sql, *services_.schema);
    plan = plan_for(*tmpl, nullptr);
  }
  if (std::string why = pooling_refusal(*tmpl); !why.empty()) {
    plan.kind = router::RouteKind::Refuse;
    plan.error = {sqlstate::kFeatureNotSupported, why};
  }
  return plan;
}

asio::awaitable<std::optional<bool>> ClientSession::run_query_on_shards(router::Plan& plan, const router::RouteTemplate& t,
                                                                        std::string_view sql) {
  std::string why;
  const bool in_tx = in_transaction();
  const auto& stmts = t.statements;
  const bool copy = stmts.size() == 1 && stmts[0].copy_from_sharded;
  if (in_tx && !twopc())
    why = std::string(copy ? "COPY into a sharded table writes on every shard"
                           : "this statement spans several shards") +
          (services_.cluster.config().sharding.cross_shard_transactions == config::CrossShardTransactions::TwoPhaseCommit
               ? ", which inside a transaction needs transaction pooling (pool.mode: transaction)"
               : ", which is not possible inside a transaction (cross_shard_transactions is deny)") +
          (copy ? "; COPY per tenant with a /* shardline: tenant=... */ hint, or outside the transaction" : "");
  else if (!in_tx && !co_await release_idle_server())
    why = "this statement spans several shards, which is not possible inside a transaction "
          "or on a session-pooled connection";
  if (!why.empty()) {
    plan.kind = router::RouteKind::Refuse;
    plan.error = {sqlstate::kFeatureNotSupported, std::move(why)};
    co_return std::nullopt;
  }
  if (plan.kind == router::RouteKind::Split && plan.parts.empty() && stmts.size() == 1 && stmts[0].copy_from_sharded) {
    std::string copy_sql(sql);  // the input buffer is reused while the COPY data streams in
    co_return co_await run_copy_in(stmts[0], copy_sql);
  }
  if (plan.merge && stmts.size() > 1)  // the shard SQL is one statement's rewrite
    co_return co_await fail_request(SqlError::error(sqlstate::kFeatureNotSupported,
                                                    "a cross-shard read that needs merging cannot share a query "
                                                    "string with other statements; send it alone"),
                                    false);
  co_return co_await run_multi(plan, sql);
}

asio::awaitable<bool> ClientSession::forward_query(const router::RouteTemplate& t, const router::BindValues* literal_bind,
                                                   const router::Plan& plan, int target, std::string_view whole) {
  // What the statements do: reads a replica may answer, writes whose commit LSN to learn.
  StatementEffects effects;
  effects.add(t);
  const bool was_in_tx = in_transaction();
  int replica = -1;
  if (effects.replica_safe() && !was_in_tx && target >= 0 && plan.kind != router::RouteKind::Refuse)
    replica = co_await choose_replica(target, t, plan.logical);
  if (plan.kind == router::RouteKind::Refuse)
    co_return co_await refuse(SqlError::error(plan.error.sqlstate, plan.error.message), false);
  if (!co_await attach(target, true, replica)) co_return co_await refuse(unit_extras().last_error, false);
  if (!server_)  // lost while attaching (its shard died under it): nothing was sent
    co_return co_await refuse(SqlError::error(sqlstate::kConnectionFailure,
                                              "the server connection was lost before the statement was sent; try again"),
                              false);
  // A read on a replica that dies before the first byte of its reply is run again on the
  // primary (SPEC section 7: a replica's failure is never the client's error); only when no
  // earlier reply is still due, so the client cannot have seen any part of this one.
  if (replica_ >= 0 && tracker_.empty()) replica_retry_ = std::string(whole);
  else replica_retry_.reset();
  if (effects.begins && !was_in_tx)  // shards this transaction joins later replay its BEGIN
    for (const auto& ts : t.statements)
      if (ts.info.tx == router::TxCommand::Begin || ts.info.tx == router::TxCommand::Start) tx_.note_begin(ts.info.text);
  // A statement without tables only matters to the transaction's scope if it writes.
  if ((was_in_tx || effects.begins) && (plan.kind != router::RouteKind::Any || plan.writes)) tx_.touch(plan.logical);
  sync_server_state();
  Pending p{Expect::SimpleQuery};
  track_simple_query(t, literal_bind, p);
  ++pool_->stats.query_count;
  meter_.forwarded(shard_, replica_);
  to_server_.ref(whole.data(), whole.size());
  tracker_.push(std::move(p));
  if (effects.copy_in && replica_ < 0) {
    // COPY data follows this Query, so no probe may be queued behind it: inside a transaction
    // the COMMIT's probe covers it, otherwise it is acknowledged at an unknown position.
    if ((was_in_tx || effects.begins) && !effects.commits) {
      tx_.wrote(plan.logical);
    } else {
      Pending mark{Expect::CommitMark};
      mark.logical = plan.logical;
      tracker_.push(std::move(mark));
    }
  } else {
    note_writes(effects, was_in_tx, plan.logical);
  }
  co_return true;
}

router::Plan ClientSession::plan_for(const router::RouteTemplate& t, const router::BindValues* bind) {
  router::RouteContext ctx{*services_.directory, *services_.schema, tenant_, bind};
  router::Plan plan = router::route(t, ctx);
  meter_.routed(plan, in_transaction());
  return plan;
}

void ClientSession::track_simple_query(const router::RouteTemplate& t, const router::BindValues* bind, Pending& p) {
  if (!config_changes(t, bind, p.sets) && server_) {
    // What the statement sets is unknown: no other client may get this server afterwards.
    spdlog::info("client {} (pid {}): set_config with computed arguments; its server will not be reused", peer_, pid_);
    server_->broken = true;
  }
  std::vector<SetChange> sets = set_changes(t);
  p.sets.insert(p.sets.end(), std::make_move_iterator(sets.begin()), std::make_move_iterator(sets.end()));
  for (const auto& ts : t.statements) {
    const router::Statement& s = ts.info;
    if (s.kind == router::StatementKind::Discard && s.discard == router::DiscardTarget::All) p.discard_all = true;
    else if (s.kind == router::StatementKind::Deallocate && s.deallocate_name && s.deallocate_name->empty())
      p.deallocate_all = true;
  }
  // Not answered by the proxy (several statements, or session pooling): the server's shared
  // statements go, so this server is never handed to another client (whether or not the
  // statement ran, what it holds is unknown).
  if ((p.discard_all || p.deallocate_all) && server_) server_->broken = true;
}

std::string ClientSession::pooling_refusal(const router::RouteTemplate& t) const {
  if (services_.cluster.config().pool.mode != config::PoolMode::Transaction) return {};
  for (const auto& ts : t.statements)
    if (ts.info.tx == router::TxCommand::Prepare || ts.info.tx == router::TxCommand::CommitPrepared ||
        ts.info.tx == router::TxCommand::RollbackPrepared)
      return "PREPARE TRANSACTION, COMMIT PREPARED and ROLLBACK PREPARED are not supported in transaction pooling "
             "(pool.mode: transaction): the prepared transaction would outlive this client's use of the server "
             "connection; shardline runs two-phase commit itself (cross_shard_transactions: 2pc)";
  for (const auto& ts : t.statements)
    if (ts.info.kind == router::StatementKind::Listen && !ts.info.unlisten)
      return "LISTEN is not supported in transaction pooling (pool.mode: transaction): the server connection "
             "goes back to the pool after each transaction, so notifications would never reach this client; "
             "connect to a proxy in session pooling (pool.mode: session) to LISTEN";
  return {};
}

}  // namespace shardline::proxy::session
