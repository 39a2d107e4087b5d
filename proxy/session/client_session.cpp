#include "proxy/session/client_session.hpp"

#include <openssl/rand.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/admin/admin_console.hpp"
#include "proxy/protocol/message_writer.hpp"
#include "proxy/control/lsn.hpp"
#include "router/parser/literal_normalizer.hpp"
#include "router/parser/statement.hpp"

namespace shardline::proxy::session {

using protocol::Frame;
using protocol::SqlError;
namespace sqlstate = protocol::sqlstate;

namespace {
/// Statement id of a proxy-injected unnamed Parse (no shared statement has it).
constexpr std::uint64_t kUnnamedStatement = ~std::uint64_t(0);
}  // namespace

asio::awaitable<void> run_session(tcp::socket socket, Services& services) {
  ClientSession session(std::move(socket), services);
  co_await session.run();
}

ClientSession::ClientSession(tcp::socket socket, Services& services)
    : services_(services), stream_(std::move(socket)), meter_(services.metrics), pump_state_(services.ex) {
  boost::system::error_code ec;
  auto ep = stream_.socket().remote_endpoint(ec);
  peer_ = ec ? "?" : fmt::format("{}:{}", ep.address().to_string(), ep.port());
  do {
    pid_ = services_.next_session_pid++;
    if (services_.next_session_pid <= 0) services_.next_session_pid = 1;
  } while (services_.sessions.count(pid_));
  RAND_bytes(reinterpret_cast<unsigned char*>(&secret_), sizeof secret_);
  connected_at_ = std::chrono::system_clock::now();
  consistency_ = services_.cluster.config().replicas.default_consistency;
  tracker_.bind_hooks(*this);
  services_.sessions[pid_] = this;
  ++services_.total_clients;
}

ClientSession::~ClientSession() { services_.sessions.erase(pid_); }

const char* ClientSession::state() const {
  if (waiting_for_server_) return "waiting";
  if (server_) return tx_status_ == 'I' ? "active" : "active (in transaction)";
  return "idle";
}

asio::awaitable<void> ClientSession::run() {
  bool ok = co_await login();
  if (ok) {
    startup_vars_ = vars_;
    if (admin_) {
      admin::AdminConsole console(services_, *this);
      co_await console.run();
    } else {
      co_await client_loop();
    }
  }
  // Teardown: a server mid-transaction cannot be reused (its state is unknown); an idle one
  // goes back to its pool.
  if (pump_running_) {
    stop_pump_ = true;
    if (server_ && (!tracker_.empty() || tx_status_ != 'I')) server_->broken = true;
    boost::system::error_code ec;
    server_->stream().socket().cancel(ec);
    while (pump_running_) co_await pump_state_.wait();
  }
  if (server_) detach_server(services_.cluster.config().pool.mode == config::PoolMode::Session);
  stream_.close();
}

asio::awaitable<bool> ClientSession::login() {
  const auto& pool = services_.cluster.config().pool;
  // Over the cap the client is told so once its startup packet is in (after SSL negotiation,
  // where libpq can read an error), and it does not count as logging in.
  const bool counted = services_.logging_in < pool.max_login_clients;
  if (!counted) {
    spdlog::warn("client {}: refused, {} clients are already logging in (pool.max_login_clients)", peer_,
                 services_.logging_in);
    login_refusal_ = SqlError::fatal(sqlstate::kTooManyConnections,
                                     fmt::format("too many clients logging in at once: pool.max_login_clients is {}",
                                                 pool.max_login_clients));
  }
  // A client that stalls mid-startup or mid-SCRAM is cut off: the timer closes the socket,
  // which ends whatever read or write startup() waits on.
  if (counted) ++services_.logging_in;
  auto timer = std::make_shared<asio::steady_timer>(services_.ex, std::chrono::milliseconds(pool.client_login_timeout_ms));
  enum class Login { Running, Done, TimedOut };
  auto state = std::make_shared<Login>(Login::Running);
  timer->async_wait([this, state](boost::system::error_code ec) {
    // Done: the login finished first (and the session may be gone by now).
    if (ec || *state != Login::Running) return;
    *state = Login::TimedOut;
    boost::system::error_code ignored;
    stream_.socket().close(ignored);
  });
  const bool ok = co_await startup();
  const bool timed_out = *state == Login::TimedOut;
  *state = Login::Done;
  timer->cancel();
  if (counted) --services_.logging_in;
  if (timed_out) {
    spdlog::info("client {}: login not finished within pool.client_login_timeout_ms ({} ms), closed", peer_,
                 pool.client_login_timeout_ms);
    co_return false;
  }
  co_return ok;
}

void ClientSession::cancel_running_query() {
  if (!server_) return;
  // A CancelRequest goes on a new connection to the server that runs the query, with that
  // server's own key (never another client's: the lease is this session's).
  asio::co_spawn(services_.ex,
                 exec::send_cancel_request(server_->endpoint(), server_->backend_pid(), server_->backend_secret()),
                 asio::detached);
}

void ClientSession::shutdown_when_idle() {
  closing_ = true;
  if (!server_ && !waiting_for_server_) {
    boost::system::error_code ec;
    stream_.socket().cancel(ec);
  }
}

// ---- writing to the client --------------------------------------------------------------------

asio::awaitable<bool> ClientSession::write_client(std::string_view bytes) {
  if (client_gone_) co_return false;
  while (client_writing_) co_await pump_state_.wait();
  client_writing_ = true;
  boost::system::error_code ec;
  co_await stream_.write_all(bytes, ec);
  client_writing_ = false;
  pump_state_.notify();
  if (ec) client_gone_ = true;
  co_return !ec;
}

asio::awaitable<bool> ClientSession::write_client(OutBatch& batch) {
  if (client_gone_) co_return false;
  while (client_writing_) co_await pump_state_.wait();
  client_writing_ = true;
  boost::system::error_code ec;
  const auto& bufs = batch.buffers();
  co_await stream_.write_all(std::span<const asio::const_buffer>(bufs.data(), bufs.size()), ec);
  client_writing_ = false;
  pump_state_.notify();
  if (ec) client_gone_ = true;
  co_return !ec;
}

asio::awaitable<void> ClientSession::send_fatal(const SqlError& e) {
  std::string out;
  protocol::MessageWriter(out).error(e);
  co_await write_client(out);
}

asio::awaitable<bool> ClientSession::fail_request(const SqlError& e, bool extended) {
  std::string out;
  protocol::MessageWriter w(out);
  w.error(e);
  meter_.error(e.sqlstate);
  if (extended) {
    skip_until_sync_ = true;  // like PostgreSQL: discard until Sync, which gets ReadyForQuery
  } else {
    w.ready_for_query(tx_status_);
  }
  co_return co_await write_client(out);
}

void ClientSession::add_synthetic(std::string bytes) {
  Pending p{Expect::Synthetic};
  p.synthetic = std::move(bytes);
  tracker_.push(std::move(p));
}

// ---- client -> server ---------------------------------------------------------------------------

asio::awaitable<void> ClientSession::client_loop() {
  for (;;) {
    Frame f;
    const char* why = "invalid message";
    auto st = protocol::decode_client_frame(in_.readable(), f, &why);
    if (st == protocol::DecodeStatus::Malformed) {
      co_await flush_to_server();
      const auto head = in_.readable();
      const int type = head.empty() ? 0 : int(static_cast<unsigned char>(head[0]));
      spdlog::info("client {} (pid {}): {} (type byte {}), closing", peer_, pid_, why, type);
      co_await send_fatal(SqlError::fatal(sqlstate::kProtocolViolation,
                                          fmt::format("{} (message type byte {}); closing the connection", why, type)));
      co_return;
    }
    if (st == protocol::DecodeStatus::NeedMoreData) {
      if (!co_await flush_to_server()) co_return;
      if (closing_ && !server_) {
        co_await send_fatal(SqlError::fatal(sqlstate::kAdminShutdown,
                                            "terminating connection: the proxy is shutting down"));
        co_return;
      }
      boost::system::error_code ec;
      if (in_.empty()) {
        in_.release_if_empty();
        co_await stream_.wait_readable(ec);
        if (ec) {
          if (ec == asio::error::operation_aborted && closing_) continue;
          co_return;
        }
      }
      auto n = co_await stream_.read_some(in_.prepare(4096), ec);
      if (ec) {
        if (ec == asio::error::operation_aborted && closing_) continue;
        co_return;
      }
      in_.commit(n);
      continue;
    }
    if (!unit_routed_ && !skip_until_sync_ &&
        (f.tag == 'P' || f.tag == 'B' || f.tag == 'D' || f.tag == 'E' || f.tag == 'C')) {
      auto routed = co_await route_unit();
      if (!routed) {  // the unit's routing message has not arrived yet
        if (!co_await flush_to_server()) co_return;
        boost::system::error_code ec;
        auto n = co_await stream_.read_some(in_.prepare(4096), ec);
        if (ec) co_return;
        in_.commit(n);
        continue;
      }
      continue;  // re-decode: attaching may have changed nothing in the input, but be exact
    }
    // Consumed first: the frame's bytes stay where they are until the next read, and a
    // handler that reads on (COPY) must not see this frame again.
    in_.consume(f.total_size);
    bool keep = co_await handle(f);
    if (!keep) {
      co_await flush_to_server();
      co_return;
    }
  }
}

asio::awaitable<bool> ClientSession::flush_to_server() {
  if (to_server_.empty()) {
    // Proxy-made replies that are first in line (no server reply pending before them).
    if (!tracker_.empty()) {
      OutBatch replies;
      tracker_.emit_ready_synthetic(replies, *this);
      if (!replies.empty() && !co_await write_client(replies)) co_return false;
    }
    co_return true;
  }
  if (!server_) {
    to_server_.clear();
    co_return true;
  }
  OutBatch replies;
  tracker_.emit_ready_synthetic(replies, *this);
  if (!replies.empty() && !co_await write_client(replies)) co_return false;
  boost::system::error_code ec;
  const auto& bufs = to_server_.buffers();
  pool_->stats.bytes_received += to_server_.bytes();
  auto* server = server_.get();
  co_await server->stream().write_all(std::span<const asio::const_buffer>(bufs.data(), bufs.size()), ec);
  to_server_.clear();
  if (ec) {
    // The pump sees the dead connection too and tells the client.
    server->broken = true;
    server->stream().close();
  }
  co_return true;
}

asio::awaitable<bool> ClientSession::ensure_server(int shard, int replica) {
  const auto& cfg = services_.cluster.config();
  pool_ = replica < 0 ? &services_.cluster.primary(shard) : services_.cluster.replicas(shard)[std::size_t(replica)].get();
  waiting_for_server_ = true;
  SqlError err;
  auto lease = co_await pool_->acquire(
      backend::Clock::now() + std::chrono::milliseconds(cfg.pool.query_wait_timeout_ms), err);
  if (!lease && replica >= 0) {
    // A replica that cannot be had (down before the lag monitor noticed, or its pool full) is
    // no reason to fail a read: the primary answers it (SPEC section 7: never an error).
    spdlog::info("client {}: replica {} of shard {} unavailable ({}: {}); reading from the primary", peer_, replica,
                 services_.directory->shard_name(shard), err.sqlstate, err.message);
    replica = -1;
    pool_ = &services_.cluster.primary(shard);
    err = SqlError{};
    lease = co_await pool_->acquire(
        backend::Clock::now() + std::chrono::milliseconds(cfg.pool.query_wait_timeout_ms), err);
  }
  waiting_for_server_ = false;
  if (!lease) {
    unit_extras().last_error = err;
    co_return false;
  }
  server_ = std::move(lease);
  shard_ = shard;
  replica_ = replica;
  server_->client_id = std::uint64_t(pid_);
  pump_running_ = true;
  stop_pump_ = false;
  asio::co_spawn(services_.ex, pump(), asio::detached);
  co_return true;
}

asio::awaitable<bool> ClientSession::release_idle_server() {
  if (!server_) co_return true;
  co_await flush_to_server();
  while (server_ && !tracker_.empty()) co_await pump_state_.wait();
  if (!server_) co_return true;
  if (tx_status_ != 'I' || unit_open_) co_return false;  // a transaction or unit is open on it
  if (services_.cluster.config().pool.mode == config::PoolMode::Session) co_return false;
  // Idle, but the pump may be parked on a read: stop it and hand the server back ourselves.
  stop_pump_ = true;
  boost::system::error_code ec;
  server_->stream().socket().cancel(ec);
  while (pump_running_) co_await pump_state_.wait();
  stop_pump_ = false;
  detach_server(false);
  co_return true;
}

asio::awaitable<bool> ClientSession::attach(int shard, bool binds, int replica) {
  // In a failed transaction every statement gets PostgreSQL's own 25P02 from the bound server;
  // after an error in an open extended unit the server ignores everything up to Sync.
  if (server_ && (tx_status_ == 'E' || (unit_open_ && error_in_tx_))) {
    shard = shard_;
    replica = replica_;
  }
  if (server_ && server_provisional_ && binds && (shard_ != shard || replica_ != replica)) leave_provisional_server();
  const bool switching = !server_ || shard_ != shard || replica_ != replica;
  if (switching) {
    const bool switched = co_await switch_server(shard, replica);
    if (!switched) co_return false;
  }
  if (switching) server_provisional_ = !binds && services_.cluster.config().pool.mode == config::PoolMode::Transaction;
  else if (binds) server_provisional_ = false;
  // Every message that reaches a server inside the client's transaction must run in it: the
  // held BEGIN goes first, even before a Parse (which takes the transaction's snapshot).
  if (held_) apply_held_begin();
  co_return true;
}

void ClientSession::apply_held_begin() {
  // The transaction the client opened earlier starts now, on this server; the client already
  // had its replies.
  held_ = false;
  sync_server_state();
  protocol::MessageWriter w = to_server_.writer();
  w.begin('Q').cstr(held_sql_).end();
  to_server_.sealed();
  tracker_.push(Pending{Expect::Swallow});
  tx_status_ = 'T';     // what the swallowed ReadyForQuery says
  unnamed_server_ = 0;  // a Query drops the server's unnamed statement
  if (!server_provisional_) held_sql_.clear();  // kept while the transaction may still move
}

void ClientSession::leave_provisional_server() {
  protocol::MessageWriter w = to_server_.writer();
  if (unit_open_) {
    w.begin('S').end();
    tracker_.push(Pending{Expect::Swallow});
    unit_open_ = false;
  }
  if (tx_status_ != 'I') {
    w.begin('Q').cstr("ROLLBACK").end();
    tracker_.push(Pending{Expect::Swallow});
    tx_status_ = 'I';
    held_ = true;  // held_sql_ was kept for this
    held_failed_ = false;
  }
  to_server_.sealed();
  server_provisional_ = false;
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

asio::awaitable<bool> ClientSession::switch_server(int shard, int replica) {
  if (server_ && !co_await release_idle_server()) {
    const auto& names = services_.directory->shard_names();
    if (tx_status_ != 'I') {
      unit_extras().last_error = SqlError::error(
          sqlstate::kFeatureNotSupported,
          fmt::format("transaction is bound to shard {}; this statement needs shard {} (cross-shard "
                      "transactions are disabled: cross_shard_transactions is deny)",
                      names[std::size_t(shard_)], names[std::size_t(shard)]));
      co_return false;
    }
    unit_extras().last_error = SqlError::error(
        sqlstate::kFeatureNotSupported,
        fmt::format("session pooling keeps this connection on shard {}; this statement needs shard {}",
                    names[std::size_t(shard_)], names[std::size_t(shard)]));
    co_return false;
  }
  co_return co_await ensure_server(shard, replica);
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
          if (unit_extras().local_tag == "BEGIN") held_ = false;
          unit_local_ = false;
          skip_until_sync_ = true;
          co_return co_await reply_local(std::move(out));
        }
        statements_[std::string(*name)] =
            services_.statements.intern(*query, std::string_view(types_at, r.remaining()));
      } else if (name && query) {
        unnamed_query_.assign(*query);
        unnamed_types_.assign(types_at, r.remaining());
        has_unnamed_ = true;
        unnamed_server_ = 0;
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
      if (unit_extras().local_error) {
        w.error(*unit_extras().local_error);
        unit_local_ = false;
        skip_until_sync_ = true;
        break;
      }
      if (unit_extras().local_show) w.data_row({unit_extras().local_show->second});
      if (unit_extras().local_command) {
        run_namespace_command(*unit_extras().local_command);
        unit_extras().local_command.reset();
      }
      w.command_complete(unit_extras().local_tag);
      break;
    case 'C': w.close_complete(); break;
    case 'S':
      w.ready_for_query(held_ ? (held_failed_ ? 'E' : 'T') : tx_status_);
      unit_local_ = false;
      unit_routed_ = false;
      break;
    default: co_return true;  // Flush: nothing pending
  }
  co_return co_await reply_local(std::move(out));
}

router::Plan ClientSession::plan_for(const router::RouteTemplate& t, const router::BindValues* bind) {
  router::RouteContext ctx{*services_.directory, *services_.schema, tenant_, bind};
  router::Plan plan = router::route(t, ctx);
  meter_.routed(plan, in_transaction());
  return plan;
}

asio::awaitable<bool> ClientSession::reply_local(std::string bytes) {
  if (!tracker_.empty()) {
    add_synthetic(std::move(bytes));
    co_return true;
  }
  co_await flush_to_server();
  co_return co_await write_client(bytes);
}

void ClientSession::sync_server_state() {
  if (server_->vars.fingerprint() == vars_.fingerprint()) return;
  std::string sql = vars_.diff_from(server_->vars);
  if (sql.empty()) {
    server_->vars = vars_;
    return;
  }
  // Recorded as applied at once: the next messages of this batch must not trigger another
  // replay (a Query between Parse and Bind would drop the unnamed statement). If the server
  // refuses part of it, state_sync_done marks the connection broken.
  sync_target_ = vars_;
  server_->vars = vars_;
  unnamed_server_ = 0;  // a Query drops the server's unnamed statement
  protocol::MessageWriter w = to_server_.writer();
  w.begin('Q').cstr(sql).end();
  to_server_.sealed();
  tracker_.push(Pending{Expect::StateSync});
}

asio::awaitable<bool> ClientSession::handle(const Frame& f) {
  const std::string_view whole(f.body.data() - 5, f.total_size);
  const bool extended = f.tag == 'P' || f.tag == 'B' || f.tag == 'D' || f.tag == 'E' ||
                        f.tag == 'C' || f.tag == 'H' || f.tag == 'S';
  switch (f.tag) {
    case 'X':
      co_return false;
    case 'Q': case 'P': case 'B': case 'D': case 'E': case 'C': case 'S': case 'H': case 'F':
    case 'd': case 'c': case 'f':
      break;
    default:
      co_await flush_to_server();
      co_await send_fatal(SqlError::fatal(sqlstate::kProtocolViolation,
                                          fmt::format("invalid frontend message type {}", int(f.tag))));
      co_return false;
  }
  if (unit_local_ && extended) co_return co_await handle_local_unit(f);
  if (unit_multi() && extended) {
    if (f.tag == 'P') {  // a named statement the client prepares must exist for its later Binds
      protocol::BodyReader r(f.body);
      auto name = r.cstr();
      auto query = r.cstr();
      if (name && query && !name->empty())
        statements_[std::string(*name)] = services_.statements.intern(*query, std::string_view(r.pos(), r.remaining()));
      else if (name && query) {
        unnamed_query_.assign(*query);
        unnamed_types_.assign(r.pos(), r.remaining());
        has_unnamed_ = true;
        unnamed_server_ = 0;
      }
    }
    if (f.tag != 'S') co_return true;
    router::Plan plan = std::move(*unit_extras().multi);
    unit_extras().multi.reset();
    unit_routed_ = false;
    std::string request = std::move(unit_extras().multi_request);
    std::vector<bool> keep = std::move(unit_extras().multi_keep_parse);
    co_return co_await run_multi(plan, {}, request, keep, std::move(unit_extras().multi_scatter));
  }
  if (f.tag == 'S') unit_routed_ = false;
  if (skip_until_sync_) {
    if (f.tag == 'S') {
      skip_until_sync_ = false;
      unit_open_ = false;
      if (forward_sync_ && server_) {  // the server saw the failing Parse: its Sync answers
        forward_sync_ = false;
        to_server_.ref(whole.data(), whole.size());
        tracker_.push(Pending{Expect::Sync});
        co_return true;
      }
      forward_sync_ = false;
      std::string out;
      protocol::MessageWriter(out).ready_for_query(held_ ? (held_failed_ ? 'E' : 'T') : tx_status_);
      co_return co_await reply_local(std::move(out));
    }
    if (extended) co_return true;
  }
  if (f.tag == 'Q') co_return co_await handle_query(f, whole);
  if (!server_) {
    if (f.tag == 'd' || f.tag == 'c' || f.tag == 'f' || f.tag == 'H') co_return true;  // no COPY running
    if (f.tag == 'S') {  // nothing pending: just the ReadyForQuery
      std::string out;
      protocol::MessageWriter(out).ready_for_query(held_ ? (held_failed_ ? 'E' : 'T') : tx_status_);
      co_return co_await reply_local(std::move(out));
    }
    if (f.tag == 'F' && !co_await attach(default_shard())) co_return co_await fail_request(unit_extras().last_error, false);
  }
  if (!server_ && extended) {
    // route_unit() has attached the unit's server unless it failed, which skips to Sync.
    co_return co_await fail_request(SqlError::error(sqlstate::kInternalError, "no server for this request"), true);
  }
  sync_server_state();
  if (held_) apply_held_begin();  // e.g. a Query BEGIN arrived inside an open extended unit
  if (extended && f.tag != 'S') unit_open_ = true;  // the unnamed statement/portal lives on this server
  switch (f.tag) {
    case 'F':
      to_server_.ref(whole.data(), whole.size());
      tracker_.push(Pending{Expect::SimpleQuery});
      break;
    case 'P':
      if (!handle_parse(f)) {
        co_await send_fatal(unit_extras().last_error);
        co_return false;
      }
      break;
    case 'B':
      if (!handle_bind(f)) {
        co_await send_fatal(unit_extras().last_error);
        co_return false;
      }
      break;
    case 'D':
    case 'C':
      if (!handle_describe_or_close(f)) {
        co_await send_fatal(unit_extras().last_error);
        co_return false;
      }
      break;
    case 'E': {
      ++pool_->stats.query_count;
      meter_.forwarded(shard_, replica_);
      to_server_.ref(whole.data(), whole.size());
      Pending p{Expect::Execute};
      if (!portal_sets_.empty()) {
        protocol::BodyReader r(f.body);
        if (auto portal = r.cstr())
          if (auto it = portal_sets_.find(std::string(*portal)); it != portal_sets_.end()) p.sets = it->second;
      }
      tracker_.push(std::move(p));
      break;
    }
    case 'S':
      unit_open_ = false;
      to_server_.ref(whole.data(), whole.size());
      tracker_.push(Pending{Expect::Sync});
      note_writes(unit_writes_, unit_begin_, unit_commit_, unit_in_tx_, unit_scope_.logical());
      unit_writes_ = unit_begin_ = unit_commit_ = false;
      break;
    default:  // Flush, CopyData, CopyDone, CopyFail: no reply of their own
      to_server_.ref(whole.data(), whole.size());
      // After a Flush ending a unit that only prepared or described, the next messages are
      // routed by their own content (their Bind may need another shard).
      if (f.tag == 'H' && unit_undecided_) unit_routed_ = false;
      break;
  }
  co_return true;
}

asio::awaitable<bool> ClientSession::handle_query(const Frame& f, std::string_view whole) {
  protocol::BodyReader r(f.body);
  auto sql_opt = r.cstr();
  if (!sql_opt) {
    co_await send_fatal(SqlError::fatal(sqlstate::kProtocolViolation, "invalid Query message"));
    co_return false;
  }
  const std::string_view sql = *sql_opt;
  has_unnamed_ = false;  // a Query drops the unnamed statement
  // Statements are cached by shape: literals become $n and are routed like bound values.
  const router::BindValues* literal_bind = nullptr;
  std::shared_ptr<const router::RouteTemplate> tmpl;
  if (router::normalize_literals(sql, scratch().normalized)) {
    tmpl = services_.templates.get(scratch().normalized.text, *services_.schema);
    if (tmpl->parse_error) {
      tmpl = services_.templates.get(sql, *services_.schema);  // a shape the grammar rejects
    } else {
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
      literal_bind = &scratch().literal_bind;
    }
  } else {
    tmpl = services_.templates.get(sql, *services_.schema);
  }
  const auto& stmts = tmpl->statements;
  for (const auto& ts : stmts)
    if (ts.info.kind == router::StatementKind::Ddl) services_.statements.invalidate_all();
  std::string out;
  protocol::MessageWriter w(out);
  auto status = [&] { return held_ ? (held_failed_ ? 'E' : 'T') : tx_status_; };

  // shardline's own settings never reach a server.
  if (stmts.size() == 1) {
    const auto& st = stmts[0].info;
    if (is_proxy_setting(st)) {
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
      w.ready_for_query(status());
      co_return co_await reply_local(std::move(out));
    }
    // A transaction is bound to a shard by its first routable statement: hold BEGIN until then.
    if (st.kind == router::StatementKind::Transaction && (held_ || tx_status_ == 'I') &&
        services_.cluster.config().pool.mode == config::PoolMode::Transaction) {
      using T = router::TxCommand;
      if ((st.tx == T::Begin || st.tx == T::Start) && !held_) {
        held_ = true;
        held_failed_ = false;
        held_sql_ = std::string(st.text) + ";";
        w.command_complete("BEGIN");
        w.ready_for_query('T');
        co_return co_await reply_local(std::move(out));
      }
      if (held_) {
        if (st.tx == T::Commit || st.tx == T::Rollback) {
          w.command_complete(held_failed_ || st.tx == T::Rollback ? "ROLLBACK" : "COMMIT");
          held_ = held_failed_ = false;
          held_sql_.clear();
          w.ready_for_query('I');
          co_return co_await reply_local(std::move(out));
        }
        if (!held_failed_ && (st.tx == T::Savepoint || st.tx == T::Release || st.tx == T::RollbackTo)) {
          held_sql_ += std::string(st.text) + ";";
          w.command_complete(st.tx == T::Savepoint ? "SAVEPOINT" : st.tx == T::Release ? "RELEASE" : "ROLLBACK");
          w.ready_for_query('T');
          co_return co_await reply_local(std::move(out));
        }
        if (st.tx == T::Begin || st.tx == T::Start) {
          w.notice(SqlError{"25001", "there is already a transaction in progress", "WARNING", {}, {}});
          w.command_complete("BEGIN");
          w.ready_for_query(status());
          co_return co_await reply_local(std::move(out));
        }
      }
    }
  }
  if (held_ && held_failed_) {
    w.error(SqlError::error("25P02", "current transaction is aborted, commands ignored until end of transaction block"));
    w.ready_for_query('E');
    co_return co_await reply_local(std::move(out));
  }
  if (stmts.size() == 1) {
    if (auto cmd = namespace_command(stmts[0].info)) {
      run_namespace_command(*cmd);
      w.command_complete(cmd->tag);
      w.ready_for_query(status());
      co_return co_await reply_local(std::move(out));
    }
  }

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
  int target = -1;
  switch (plan.kind) {
    case router::RouteKind::Any: target = default_shard(); break;
    case router::RouteKind::Single: target = plan.shards.front(); break;
    case router::RouteKind::Refuse: break;
    default:
      if (in_transaction()) {
        plan.kind = router::RouteKind::Refuse;
        plan.error = {sqlstate::kFeatureNotSupported,
                      "this statement spans several shards, which is not possible inside a transaction "
                      "(cross_shard_transactions is deny)"};
        break;
      }
      if (!co_await release_idle_server()) {
        plan.kind = router::RouteKind::Refuse;
        plan.error = {sqlstate::kFeatureNotSupported,
                      "this statement spans several shards, which is not possible inside a transaction "
                      "or on a session-pooled connection"};
        break;
      }
      if (plan.kind == router::RouteKind::Split && plan.parts.empty() && stmts.size() == 1 &&
          stmts[0].copy_from_sharded) {
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
  // What the statements do: reads a replica may answer, writes whose commit LSN to learn.
  bool safe = !stmts.empty(), writes = false, has_begin = false, has_commit = false, copy_in = false;
  for (const auto& ts : stmts) {
    copy_in = copy_in || (ts.info.kind == router::StatementKind::Copy && ts.info.copy_direction == "from");
    safe = safe && ts.replica_safe;
    writes = writes || ts.info.writes || (ts.info.kind == router::StatementKind::Select && !ts.replica_safe);
    has_begin = has_begin || ts.info.tx == router::TxCommand::Begin || ts.info.tx == router::TxCommand::Start;
    has_commit = has_commit || ts.info.tx == router::TxCommand::Commit;
  }
  const bool was_in_tx = in_transaction();
  int replica = -1;
  if (safe && !was_in_tx && target >= 0 && plan.kind != router::RouteKind::Refuse)
    replica = co_await choose_replica(target, *tmpl, plan.logical);
  SqlError refusal;
  if (plan.kind == router::RouteKind::Refuse) {
    refusal = SqlError::error(plan.error.sqlstate, plan.error.message);
  } else if (!co_await attach(target, true, replica)) {
    refusal = unit_extras().last_error;
  }
  if (!refusal.sqlstate.empty()) {
    meter_.error(refusal.sqlstate);
    if (server_ && tx_status_ != 'I') {
      // Abort the server's transaction too, exactly as an error there would.
      sync_server_state();
      protocol::MessageWriter fw = to_server_.writer();
      fw.begin('Q').cstr("shardline proxy error").end();
      to_server_.sealed();
      Pending p{Expect::FailingQuery};
      p.replacement = std::make_shared<const SqlError>(refusal);
      tracker_.push(std::move(p));
      co_return true;
    }
    if (held_) held_failed_ = true;
    w.error(refusal);
    w.ready_for_query(status());
    co_return co_await reply_local(std::move(out));
  }
  sync_server_state();
  Pending p{Expect::SimpleQuery};
  if (!track_simple_query(*tmpl, literal_bind, p)) co_return true;  // answered by the proxy
  ++pool_->stats.query_count;
  meter_.forwarded(shard_, replica_);
  to_server_.ref(whole.data(), whole.size());
  tracker_.push(std::move(p));
  if (copy_in && replica_ < 0) {
    // COPY data follows this Query, so no probe may be queued behind it: inside a transaction
    // the COMMIT's probe covers it, otherwise it is acknowledged at an unknown position.
    if ((was_in_tx || has_begin) && !has_commit) {
      tx_wrote_ = true;
      tx_scope_.add(plan.logical);
    } else {
      Pending mark{Expect::CommitMark};
      mark.logical = plan.logical;
      tracker_.push(std::move(mark));
    }
  } else {
    note_writes(writes, has_begin, has_commit, was_in_tx, plan.logical);
  }
  co_return true;
}

void ClientSession::note_writes(bool writes, bool has_begin, bool has_commit, bool was_in_tx,
                                std::span<const int> logical) {
  if (!server_ || replica_ >= 0) return;
  if (!was_in_tx && !has_begin) {  // autocommit: the write commits with this request
    if (writes) push_lsn_probe(std::vector<int>(logical.begin(), logical.end()));
    return;
  }
  if (writes) {
    tx_wrote_ = true;
    tx_scope_.add(logical);
  }
  if (has_commit && tx_wrote_) {
    push_lsn_probe(tx_scope_.take());
    tx_wrote_ = false;
  }
}

void ClientSession::push_lsn_probe(std::vector<int> logical) {
  if (!services_.cluster.config().replicas.track_commit_lsn) {
    // No probe: the write counts as acknowledged at an unknown position when its reply is in.
    Pending mark{Expect::CommitMark};
    mark.logical = std::move(logical);
    tracker_.push(std::move(mark));
    return;
  }
  // Pipelined behind the commit on the same connection, and the write's ReadyForQuery is held
  // until it answers, so the position is known before anyone can have seen the write
  // acknowledged. pg_current_wal_insert_lsn(), not pg_current_wal_lsn(): with asynchronous
  // commit the commit record is inserted but not yet written when the commit returns, and the
  // insert position is at or past it whatever synchronous_commit says.
  // A statement prepared once per server connection (id 0 is reserved for it), so each probe
  // costs the server a Bind/Execute, not a parse and plan.
  constexpr std::uint64_t kProbeId = 0;
  constexpr std::string_view kProbeName = "_sl_lsn";
  protocol::MessageWriter w = to_server_.writer();
  const bool prepare = !server_->prepared.count(kProbeId);
  if (prepare) w.begin('P').cstr(kProbeName).cstr("SELECT pg_current_wal_insert_lsn()").i16(0).end();
  w.begin('B').cstr("").cstr(kProbeName).i16(0).i16(0).i16(0).end();
  w.begin('E').cstr("").i32(0).end();
  w.begin('S').end();
  to_server_.sealed();
  if (prepare) server_->prepared.insert(kProbeId);
  Pending probe{Expect::LsnProbe};
  probe.logical = std::move(logical);
  probe.probe_parses = prepare;
  tracker_.push(std::move(probe));
}

void ClientSession::note_commit(int shard, std::span<const int> logical, std::optional<std::uint64_t> lsn) {
  if (shard < 0 || shard >= services_.commits->shards()) return;
  WriteMarks& mine = writes_on(shard);
  WriteMarks& everyone = services_.commits->shard(shard);
  if (lsn) {
    mine.commit_at({}, *lsn);
    everyone.commit_at(logical, *lsn);
  } else {
    const auto now = WriteMarks::Clock::now();
    mine.commit_unknown(now);
    everyone.commit_unknown(now);
  }
}

std::string ClientSession::lsn_learned(const Pending& p, std::string_view lsn_text) {
  if (shard_ < 0) return {};
  auto lsn = control::Lsn::parse(lsn_text);
  if (!lsn) {
    // Never guess: the write counts as acknowledged now at an unknown position (reads of this
    // shard wait for a primary sample taken after now). If the probe's own Parse failed, the
    // statement is prepared again next time; a Bind that failed (an aborted transaction)
    // leaves it in place.
    note_commit(shard_, p.logical, std::nullopt);
    if (server_ && p.probe_parses && !p.probe_parsed) server_->prepared.erase(0);
    return {};
  }
  note_commit(shard_, p.logical, lsn->value());
  if (!services_.cluster.config().replicas.report_lsn) return {};
  std::string out;
  protocol::MessageWriter(out).parameter_status("shardline.lsn", lsn_token());
  return out;
}

asio::awaitable<int> ClientSession::choose_replica(int shard, const router::RouteTemplate& t, std::vector<int> logical) {
  bool behind = false;
  int r = pick_replica(shard, t, logical, &behind);
  const auto& limits = services_.cluster.config().replicas;
  if (r >= 0 || !behind || limits.read_after_wait_ms <= 0) co_return r;
  // A replica is healthy but has not replayed this session's write yet: give it a moment
  // (each lag-monitor round may show it caught up), then fall back to the primary.
  const auto deadline = backend::Clock::now() + std::chrono::milliseconds(limits.read_after_wait_ms);
  asio::steady_timer timer(services_.ex);
  while (behind && backend::Clock::now() < deadline) {
    timer.expires_at(std::min(deadline, backend::Clock::now() + std::chrono::milliseconds(limits.poll_interval_ms)));
    (void)co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    behind = false;
    r = pick_replica(shard, t, logical, &behind);
    if (r >= 0) co_return r;
  }
  co_return -1;
}

int ClientSession::pick_replica(int shard, const router::RouteTemplate& t, std::span<const int> logical,
                                bool* behind) {
  const auto& snapshot = services_.replicas;
  auto& pools = services_.cluster.replicas(shard);
  if (!snapshot || pools.empty()) return -1;
  config::Consistency consistency = consistency_;
  if (t.hint_consistency) {
    if (auto c = config::parse_consistency(*t.hint_consistency)) consistency = *c;
  }
  if (consistency == config::Consistency::Strong) return -1;
  const std::string& name = services_.directory->shard_name(shard);
  // The position a replica must have replayed: every acknowledged write on what the read can
  // see (global), or this session's own (session); and any version cookie the client brought
  // (read_after, from SET or a comment hint). An acknowledged write whose position is not
  // known yet keeps the read on the primary.
  std::uint64_t required = 0;
  WriteMarks* marks = consistency == config::Consistency::Global    ? &services_.commits->shard(shard)
                      : consistency == config::Consistency::Session ? written(shard)
                                                                    : nullptr;
  if (marks) {
    auto need = marks->required(consistency == config::Consistency::Global ? logical : std::span<const int>{},
                                snapshot->primary_sample(name));
    if (!need) {
      if (behind) *behind = true;  // the next primary sample may tell
      return -1;
    }
    required = *need;
  }
  auto require_token = [&](const std::vector<ShardLsn>& token) {
    for (const auto& s : token)
      if (s.shard == shard) required = std::max(required, s.lsn);
  };
  require_token(read_after_);
  if (t.hint_read_after) {
    std::string error;
    if (auto parsed = parse_lsn_token(*t.hint_read_after, services_.directory->shard_names(), &error)) require_token(*parsed);
    else return -1;  // a bad hint never risks a stale read
  }
  const auto& limits = services_.cluster.config().replicas;
  int best = -1;
  int best_load = 0;
  for (std::size_t r = 0; r < pools.size(); ++r) {
    const auto* st = snapshot->find(name, int(r));
    if (!st || !st->healthy() || st->lag_bytes > limits.max_lag_bytes || st->lag_ms > limits.max_lag_ms) continue;
    if (st->replayed_lsn.value() < required) {
      if (behind) *behind = true;
      continue;
    }
    int load = pools[r]->active() + pools[r]->waiting();
    if (best < 0 || load < best_load) {
      best = int(r);
      best_load = load;
    }
  }
  return best;
}

asio::awaitable<std::optional<bool>> ClientSession::route_unit() {
  // Scan the buffered messages of this unit (up to Sync or Flush) without consuming them.
  auto data = in_.readable();
  std::size_t pos = 0;
  // Names parsed in this unit; views into the input buffer, which does not move until the
  // next read (and no read happens here).
  std::unordered_map<std::string_view, std::string_view> parsed;
  std::unordered_map<std::string_view, std::string_view> parsed_types;  // name -> Parse's type part
  std::string_view unnamed = unnamed_query_;
  std::optional<std::string_view> unnamed_types;  // only when parsed in this unit
  std::optional<router::Plan> decided;
  bool complete = false;
  bool complete_with_sync = false;
  // A unit that only says BEGIN (or ends a held transaction) is answered by the proxy, so the
  // transaction binds to the shard of its first real statement, as with the simple protocol.
  bool tx_only = (held_ || tx_status_ == 'I') && services_.cluster.config().pool.mode == config::PoolMode::Transaction;
  std::optional<router::TxCommand> tx_cmd;
  std::string tx_text;
  bool executes = false;  // a unit that only parses/describes gives no routing information
  int binds = 0;
  bool unit_safe = true;  // every statement bound may be answered by a replica
  unit_writes_ = unit_begin_ = unit_commit_ = false;
  unit_scope_.clear();
  unit_in_tx_ = in_transaction();
  const router::Statement* setting = nullptr;  // SET/SHOW/RESET shardline.* (answered here)
  std::optional<NamespaceCommand> namespace_cmd;  // DEALLOCATE / DISCARD ALL (answered here)
  std::shared_ptr<const router::RouteTemplate> keep_alive;
  for (;;) {
    Frame g;
    auto st = protocol::decode_frame(data.subspan(pos), g);
    if (st != protocol::DecodeStatus::Ok) break;  // malformed input is reported by the loop
    pos += g.total_size;
    protocol::BodyReader r(g.body);
    if (g.tag == 'P') {
      auto name = r.cstr();
      auto query = r.cstr();
      if (name && query) {
        const std::string_view types(r.pos(), r.remaining());
        if (name->empty()) unnamed = *query, unnamed_types = types;
        else parsed[*name] = *query, parsed_types[*name] = types;
      }
    } else if (g.tag == 'B') {
      // Every Bind of the unit is routed: one unit (up to Sync) is one implicit transaction on
      // one server, so Binds whose keys live on different shards cannot all be answered there.
      auto portal = r.cstr();
      auto stmt = r.cstr();
      if (!portal || !stmt) break;
      std::string_view query;
      if (stmt->empty()) query = unnamed;
      else if (auto it = parsed.find(*stmt); it != parsed.end()) query = it->second;
      else if (auto it2 = statements_.find(std::string(*stmt)); it2 != statements_.end()) query = it2->second->query;
      // Parameter values, expanded to one format per value.
      router::BindValues& bind = scratch().bind;
      bind.values.clear();
      bind.formats.clear();
      auto nfmt = r.i16();
      std::vector<std::int16_t>& fmts = scratch().formats;
      fmts.clear();
      for (int i = 0; nfmt && i < *nfmt; ++i) fmts.push_back(r.i16().value_or(0));
      auto nval = r.i16();
      for (int i = 0; nval && i < *nval && r.ok(); ++i) {
        auto len = r.i32();
        if (!len) break;
        if (*len < 0) bind.values.push_back(std::nullopt);
        else bind.values.push_back(r.bytes(std::size_t(*len)));
        bind.formats.push_back(fmts.empty() ? 0 : fmts.size() == 1 ? fmts[0] : (std::size_t(i) < fmts.size() ? fmts[std::size_t(i)] : 0));
      }
      // The parameter types the client declared decide how PostgreSQL reads the values.
      bind.types.clear();
      std::optional<std::string_view> types;
      if (stmt->empty()) types = unnamed_types;
      else if (auto it = parsed_types.find(*stmt); it != parsed_types.end()) types = it->second;
      else if (auto it2 = statements_.find(std::string(*stmt)); it2 != statements_.end()) types = it2->second->param_types;
      if (types) {
        protocol::BodyReader tr(*types);
        const int ntypes = tr.i16().value_or(0);
        for (std::size_t i = 0; i < bind.values.size(); ++i) {
          const auto oid = int(i) < ntypes ? tr.i32() : std::optional<std::int32_t>(0);
          bind.types.push_back(std::uint32_t(oid.value_or(0)));
        }
      }
      auto tmpl = services_.templates.get(query, *services_.schema);
      keep_alive = tmpl;
      ++binds;
      for (const auto& ts : tmpl->statements) {
        unit_safe = unit_safe && ts.replica_safe;
        unit_writes_ = unit_writes_ || ts.info.writes || (ts.info.kind == router::StatementKind::Select && !ts.replica_safe);
        unit_begin_ = unit_begin_ || ts.info.tx == router::TxCommand::Begin || ts.info.tx == router::TxCommand::Start;
        unit_commit_ = unit_commit_ || ts.info.tx == router::TxCommand::Commit;
      }
      if (tmpl->statements.size() == 1) {
        const auto& st = tmpl->statements[0].info;
        if (is_proxy_setting(st))
          setting = &st;
        else if (auto cmd = namespace_command(st))
          namespace_cmd = std::move(cmd);
      }
      if (tx_only) {
        using T = router::TxCommand;
        const bool ok = tmpl->statements.size() == 1 && !tx_cmd &&
                        tmpl->statements[0].info.kind == router::StatementKind::Transaction;
        T cmd = ok ? tmpl->statements[0].info.tx : T::None;
        if (ok && ((!held_ && (cmd == T::Begin || cmd == T::Start)) || (held_ && (cmd == T::Commit || cmd == T::Rollback)))) {
          tx_cmd = cmd;
          tx_text = std::string(tmpl->statements[0].info.text);
        } else {
          tx_only = false;
        }
      }
      auto plan = plan_for(*tmpl, &bind);
      if (std::string why = pooling_refusal(*tmpl); !why.empty()) {
        plan.kind = router::RouteKind::Refuse;
        plan.error = {sqlstate::kFeatureNotSupported, why};
      }
      // What the unit can see and write: a statement without tables only matters if it writes.
      if (plan.kind != router::RouteKind::Any || plan.writes) unit_scope_.add(plan.logical);
      if (plan.kind != router::RouteKind::Any) {
        if (!decided) {
          decided = std::move(plan);
        } else if (decided->kind == router::RouteKind::Single && plan.kind == router::RouteKind::Single &&
                   plan.shards != decided->shards) {
          const auto& names = services_.directory->shard_names();
          decided->kind = router::RouteKind::Refuse;
          decided->error = {sqlstate::kFeatureNotSupported,
                            fmt::format("this batch binds statements for tenants on shard {} and shard {} before one "
                                        "Sync, and a batch runs as one transaction on one shard; send a Sync after "
                                        "each tenant's statements",
                                        names[std::size_t(decided->shards.front())], names[std::size_t(plan.shards.front())])};
        }
      }
    } else if (g.tag == 'S' || g.tag == 'H') {
      complete = true;
      complete_with_sync = g.tag == 'S';
      break;
    } else if (g.tag == 'E') {
      executes = true;
    } else if (g.tag != 'D' && g.tag != 'E' && g.tag != 'C') {
      complete = true;  // anything else ends the lookahead
      break;
    }
  }
  if (!complete && !decided) co_return std::nullopt;  // wait for the rest of the unit
  unit_routed_ = true;
  unit_undecided_ = !executes && !decided.has_value();
  if (setting && binds == 1 && complete) {
    // shardline's own settings through the extended protocol, answered like PostgreSQL would.
    unit_local_ = true;
    unit_extras().local_show.reset();
    unit_extras().local_error.reset();
    std::string tag;
    std::optional<std::pair<std::string, std::string>> shown;
    unit_extras().local_error = proxy_setting(*setting, tag, shown);
    unit_extras().local_show = std::move(shown);
    unit_extras().local_tag = tag;
    co_return true;
  }
  if (namespace_cmd && binds == 1 && complete) {
    unit_local_ = true;
    unit_extras().local_show.reset();
    unit_extras().local_error.reset();
    unit_extras().local_tag = namespace_cmd->tag;
    unit_extras().local_command = std::move(namespace_cmd);
    co_return true;
  }
  if (tx_only && tx_cmd && complete && !decided) {
    using T = router::TxCommand;
    unit_local_ = true;
    unit_extras().local_show.reset();
    unit_extras().local_error.reset();
    if (*tx_cmd == T::Begin || *tx_cmd == T::Start) {
      unit_extras().local_tag = "BEGIN";
      held_ = true;
      held_failed_ = false;
      held_sql_ = tx_text + ";";
    } else {
      unit_extras().local_tag = held_failed_ || *tx_cmd == T::Rollback ? "ROLLBACK" : "COMMIT";
      held_ = held_failed_ = false;
      held_sql_.clear();
    }
    co_return true;
  }
  router::Plan plan = decided ? std::move(*decided) : router::Plan{};
  int target = default_shard();
  if (plan.kind == router::RouteKind::Single) target = plan.shards.front();
  else if (plan.kind != router::RouteKind::Any && plan.kind != router::RouteKind::Refuse) {
    // Several shards: the whole unit (up to Sync) runs on each, outside any transaction.
    std::string why;
    if (plan.kind == router::RouteKind::Split)
      why = "a multi-row INSERT across shards through the extended query protocol is not supported yet; "
            "send one INSERT per tenant or use the simple query protocol";
    else if (in_transaction() || !complete_with_sync)
      why = "this statement spans several shards, which is not possible inside a transaction";
    std::vector<bool> keep;
    std::optional<std::string> request;
    exec::ScatterRequest scatter;
    const bool scatter_read = exec::streams_as_scatter(plan);
    if (why.empty()) request = multi_shard_unit(data.subspan(0, pos), keep, scatter_read ? &scatter : nullptr, why);
    if (why.empty() && !request) why = "this extended-protocol request cannot be sent to several shards";
    if (why.empty() && server_ && server_provisional_) leave_provisional_server();
    if (why.empty() && !co_await release_idle_server())
      why = "this statement spans several shards, which is not possible inside a transaction";
    if (why.empty()) {
      unit_extras().multi = std::move(plan);
      unit_extras().multi_request = std::move(*request);
      unit_extras().multi_keep_parse = std::move(keep);
      unit_extras().multi_scatter = std::move(scatter);
      co_return true;
    }
    plan.kind = router::RouteKind::Refuse;
    plan.error = {sqlstate::kFeatureNotSupported, why};
  }
  int replica = -1;
  if (unit_safe && binds > 0 && !unit_in_tx_ && !unit_begin_ && plan.kind != router::RouteKind::Refuse && keep_alive)
    replica = co_await choose_replica(target, *keep_alive, unit_scope_.logical());
  SqlError refusal;
  if (plan.kind == router::RouteKind::Refuse) refusal = SqlError::error(plan.error.sqlstate, plan.error.message);
  else if (!co_await attach(target, executes || decided.has_value(), replica)) refusal = unit_extras().last_error;
  if (refusal.sqlstate.empty()) co_return true;
  if (server_ && tx_status_ != 'I') {
    sync_server_state();
    push_failing_parse(refusal);  // the server's transaction fails as it would have itself
    skip_until_sync_ = true;
    forward_sync_ = true;
    co_return true;
  }
  if (held_) held_failed_ = true;
  co_await fail_request(refusal, true);
  co_return true;
}

bool ClientSession::track_simple_query(const router::RouteTemplate& t, const router::BindValues* bind, Pending& p) {
  const auto& stmts = t.statements;
  if (!config_changes(t, bind, p.sets) && server_) {
    // What the statement sets is unknown: no other client may get this server afterwards.
    spdlog::info("client {} (pid {}): set_config with computed arguments; its server will not be reused", peer_, pid_);
    server_->broken = true;
  }
  for (const auto& ts : stmts) {
    const router::Statement& s = ts.info;
    if (s.kind == router::StatementKind::Set && s.set) {
      using K = router::SetCommand::Kind;
      switch (s.set->kind) {
        case K::Value:
          p.sets.push_back({SetChange::Kind::Set, s.set->name, s.set->text});
          break;
        case K::Default:
        case K::Reset:
          p.sets.push_back({SetChange::Kind::Reset, s.set->name, {}});
          break;
        case K::ResetAll:
          p.sets.push_back({SetChange::Kind::ResetAll, {}, {}});
          break;
        case K::Local:
          break;
      }
    } else if (s.kind == router::StatementKind::Discard && s.discard == router::DiscardTarget::All) {
      p.discard_all = true;
    } else if (s.kind == router::StatementKind::Deallocate && s.deallocate_name && s.deallocate_name->empty()) {
      p.deallocate_all = true;
    }
  }
  // Not answered by the proxy (several statements, or session pooling): the server's shared
  // statements go, so this server is never handed to another client (whether or not the
  // statement ran, what it holds is unknown).
  if ((p.discard_all || p.deallocate_all) && server_) server_->broken = true;
  return true;
}

std::string ClientSession::pooling_refusal(const router::RouteTemplate& t) const {
  if (services_.cluster.config().pool.mode != config::PoolMode::Transaction) return {};
  for (const auto& ts : t.statements)
    if (ts.info.kind == router::StatementKind::Listen && !ts.info.unlisten)
      return "LISTEN is not supported in transaction pooling (pool.mode: transaction): the server connection "
             "goes back to the pool after each transaction, so notifications would never reach this client; "
             "connect to a proxy in session pooling (pool.mode: session) to LISTEN";
  return {};
}

std::optional<ClientSession::NamespaceCommand> ClientSession::namespace_command(const router::Statement& st) const {
  if (tx_status_ == 'E' || (held_ && held_failed_)) return std::nullopt;
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

void ClientSession::ensure_prepared(const PreparedStatement& st) {
  if (server_->prepared.count(st.id)) return;
  server_->prepared.insert(st.id);
  to_server_.own_bytes(st.parse_message);
  Pending p{Expect::InjectedParse};
  p.statement_id = st.id;
  tracker_.push(std::move(p));
}

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
    unnamed_query_.assign(*query);
    unnamed_types_.assign(types_at, std::size_t(r.pos() - types_at));
    has_unnamed_ = true;
    unnamed_server_ = server_->id();
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
    auto tmpl = services_.templates.get(*query, *services_.schema);
    auto sets = set_changes(*tmpl);
    bool has_set_config = false;
    for (const auto& ts : tmpl->statements) has_set_config = has_set_config || !ts.set_configs.empty();
    if (has_set_config) {
      router::BindValues bind;
      protocol::BodyReader v = r;
      std::vector<std::int16_t> fmts;
      auto nfmt = v.i16();
      for (int i = 0; nfmt && i < *nfmt; ++i) fmts.push_back(v.i16().value_or(0));
      auto nval = v.i16();
      for (int i = 0; nval && i < *nval && v.ok(); ++i) {
        auto len = v.i32();
        if (!len) break;
        if (*len < 0) bind.values.push_back(std::nullopt);
        else bind.values.push_back(v.bytes(std::size_t(*len)));
        bind.formats.push_back(fmts.empty() ? 0 : fmts.size() == 1 ? fmts[0] : (std::size_t(i) < fmts.size() ? fmts[std::size_t(i)] : 0));
      }
      if (!config_changes(*tmpl, &bind, sets)) server_->broken = true;  // unknown settings: never reused
    }
    if (!sets.empty()) portal_sets_[std::string(*portal)] = std::move(sets);
    else if (!portal_sets_.empty()) portal_sets_.erase(std::string(*portal));
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

// ---- server -> client -----------------------------------------------------------------------------

bool ClientSession::filter_parameter_status(std::string_view body) {
  auto z = body.find('\0');
  if (z == std::string_view::npos) return true;
  std::string name(body.substr(0, z));
  auto rest = body.substr(z + 1);
  std::string value(rest.substr(0, rest.find('\0')));
  if (const std::string* known = reported_.find(name); known && *known == value) return false;
  reported_.set(name, value);
  if (name == "application_name") application_name_ = value;
  return true;
}

asio::awaitable<void> ClientSession::pump() {
  backend::ServerConnection* server = server_.get();
  auto& in = server->input();
  const bool transaction_mode = services_.cluster.config().pool.mode == config::PoolMode::Transaction;
  bool lost = false;
  for (;;) {
    boost::system::error_code ec;
    if (in.empty()) {
      co_await server->stream().wait_readable(ec);
      if (ec) {
        lost = !stop_pump_;
        break;
      }
    }
    auto n = co_await server->stream().read_some(in.prepare(8192), ec);
    if (ec) {
      lost = !stop_pump_;
      break;
    }
    in.commit(n);
    auto data = in.readable();
    std::size_t used = 0;
    bool malformed = false;
    for (;;) {
      Frame f;
      auto st = protocol::decode_frame(data.subspan(used), f);
      if (st == protocol::DecodeStatus::NeedMoreData) break;
      if (st == protocol::DecodeStatus::Malformed) {
        malformed = true;
        break;
      }
      std::string_view whole(data.data() + used, f.total_size);
      std::string_view body(f.body.data(), f.body.size());
      used += f.total_size;
      if (f.tag == 'S' && !filter_parameter_status(body)) continue;
      tracker_.on_server_message(f.tag, whole, body, to_client_, *this);
    }
    if (malformed) {
      spdlog::warn("server {} sent a malformed message; closing it", pool_->name());
      lost = true;
      break;
    }
    if (!to_client_.empty()) {
      pool_->stats.bytes_sent += to_client_.bytes();
      bool ok = co_await write_client(to_client_);
      to_client_.clear();
      if (!ok) {
        // The client is gone; finish this exchange only if the server is idle now.
        in.consume(used);
        if (!(tracker_.empty() && tx_status_ == 'I')) server->broken = true;
        stream_.socket().cancel(ec);
        break;
      }
    }
    in.consume(used);
    if (stop_pump_) break;
    if (tracker_.empty() && tx_status_ == 'I' && in.empty() && !unit_open_ && (transaction_mode || closing_)) {
      detach_server(false);
      if (closing_) {
        boost::system::error_code ignored;
        stream_.socket().cancel(ignored);
      }
      break;
    }
  }
  if (lost && server_) {
    server->broken = true;
    if (!client_gone_) {
      to_client_.clear();
      SqlError e = SqlError::fatal(sqlstate::kConnectionFailure,
                                   fmt::format("server connection to shard {} {} ({}:{}) was lost",
                                               pool_->shard(), pool_->role(), server->endpoint().host,
                                               server->endpoint().port));
      std::string out;
      protocol::MessageWriter(out).error(e);
      co_await write_client(out);
    }
    client_gone_ = true;
    detach_server(true);
    stream_.close();
  }
  pump_running_ = false;
  pump_state_.notify();
}

void ClientSession::detach_server(bool broken) {
  unit_open_ = false;
  server_provisional_ = false;
  unnamed_server_ = 0;
  if (!server_) return;
  if (broken) server_->broken = true;
  meter_.abandon();
  tracker_.clear();
  server_.reset();
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
  if (tx_status == 'I') {
    apply_sets(p.sets);
  } else {
    tx_sets_.insert(tx_sets_.end(), p.sets.begin(), p.sets.end());
  }
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
  if (tx_sets_.empty()) return;
  if (tag == "COMMIT") {
    apply_sets(tx_sets_);
    tx_sets_.clear();
  } else if (tag == "ROLLBACK") {
    tx_sets_.clear();
    error_in_tx_ = true;  // nothing of it is to be applied at the ReadyForQuery either
  }
}

void ClientSession::ready_for_query(char tx_status) {
  meter_.ready();
  if (tx_status == 'I' && pool_) ++pool_->stats.xact_count;
  tx_status_ = tx_status;
  if (tx_status == 'I') {
    // tx_wrote_ and tx_scope_ stay until the next commit probe: a pipelined next transaction
    // may already have written. (After a ROLLBACK that costs one needless probe at most.)
    // An implicit (extended protocol) transaction committed at Sync unless an error came first.
    if (!tx_sets_.empty() && !error_in_tx_) apply_sets(tx_sets_);
    tx_sets_.clear();
    portal_sets_.clear();
  }
  error_in_tx_ = false;
}

void ClientSession::execute_succeeded(const Pending& p) {
  tx_sets_.insert(tx_sets_.end(), p.sets.begin(), p.sets.end());
}

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
