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
#include "proxy/exec/cancel_request.hpp"
#include "proxy/protocol/message_writer.hpp"
#include "proxy/control/lsn.hpp"
#include "router/parser/literal_normalizer.hpp"
#include "router/parser/statement.hpp"

namespace shardline::proxy::session {

using protocol::Frame;
using protocol::SqlError;
namespace sqlstate = protocol::sqlstate;

asio::awaitable<void> run_session(tcp::socket socket, Services& services) {
  ClientSession session(std::move(socket), services);
  co_await session.run();
}

ClientSession::ClientSession(tcp::socket socket, Services& services)
    : services_(services),
      stream_(std::move(socket)),
      meter_(services.metrics),
      pump_state_(services.ex),
      tx_(services.cluster.config().pool.mode == config::PoolMode::Transaction) {
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

ClientSession::~ClientSession() {
  if (cancel_flight_) cancel_flight_->wake = nullptr;  // the cancel may still be on its way
  services_.sessions.erase(pid_);
}

const char* ClientSession::state() const {
  if (waiting_for_server_) return "waiting";
  if (server_) return tx_.server_status() == 'I' ? "active" : "active (in transaction)";
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
      in_client_loop_ = false;  // no timeout acts on the teardown
    }
  }
  // Teardown: a server that is not idle at a ReadyForQuery cannot be reused (a reply still due,
  // a transaction, an extended unit without its Sync); an idle one goes back to its pool.
  if (server_ && !server_idle()) server_->broken = true;
  if (pump_running_) {
    stop_pump_ = true;
    boost::system::error_code ec;
    server_->stream().socket().cancel(ec);
    while (pump_running_) co_await pump_state_.wait();
  }
  if (server_) detach_server(services_.cluster.config().pool.mode == config::PoolMode::Session);
  drop_participants();
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

namespace {
/// The cancel of `server`'s query, reported to its pool when it ends. A free coroutine: the
/// session that asked may be gone by then.
asio::awaitable<void> cancel_on_server(backend::Pool* pool, std::uint64_t server_id, config::Endpoint endpoint,
                                       std::int32_t pid, std::int32_t secret) {
  const bool delivered = co_await exec::send_cancel_request(std::move(endpoint), pid, secret);
  pool->cancel_finished(server_id, delivered);
}
}  // namespace

asio::awaitable<void> ClientSession::cancel_running_query() {
  // A CancelRequest goes on a new connection to the server that runs the query, with that
  // server's own key (never another client's: the lease is this session's).
  if (running_parts_) {
    // A multi-shard statement: every part's server; they are closed when it ends (parts_ended).
    parts_cancelled_ = true;
    for (const auto& lease : *running_parts_)
      if (lease)
        asio::co_spawn(services_.ex,
                       exec::send_cancel_request(lease->endpoint(), lease->backend_pid(), lease->backend_secret()),
                       asio::detached);
    co_return;
  }
  // Only while this session's request is in flight on its server: a session waiting for a
  // server, or idle, holds none, and the server it used last runs someone else's query now.
  // The server is parked by its pool when released before the cancel is delivered.
  if (!server_ || waiting_for_server_ || tracker_.empty()) co_return;
  backend::ServerConnection& s = *server_;
  ++s.cancels_in_flight;
  co_await cancel_on_server(s.pool, s.id(), s.endpoint(), s.backend_pid(), s.backend_secret());
}

void ClientSession::parts_started(std::vector<backend::ServerLease>& leases) {
  running_parts_ = &leases;
  parts_cancelled_ = false;
}

void ClientSession::parts_ended() {
  if (running_parts_ && parts_cancelled_)
    for (auto& lease : *running_parts_)
      if (lease) lease->broken = true;
  running_parts_ = nullptr;
  parts_cancelled_ = false;
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
    w.ready_for_query(tx_.status());
  }
  co_return co_await reply_local(std::move(out));
}

asio::awaitable<bool> ClientSession::refuse(const SqlError& e, bool extended) {
  if (server_ && tx_.server_status() != 'I') {
    // The server's transaction fails too, exactly as an error there would have made it.
    sync_server_state();
    if (extended) {
      push_failing_parse(e);  // the server skips to Sync as after its own error
      skip_until_sync_ = true;
      forward_sync_ = true;
      co_return true;
    }
    meter_.error(e.sqlstate);
    protocol::MessageWriter w = to_server_.writer();
    w.begin('Q').cstr("shardline proxy error").end();
    to_server_.sealed();
    Pending p{Expect::FailingQuery};
    p.replacement = std::make_shared<const SqlError>(e);
    tracker_.push(std::move(p));
    co_return true;
  }
  tx_.refused();
  co_return co_await fail_request(e, extended);
}

void ClientSession::add_synthetic(std::string bytes) {
  Pending p{Expect::Synthetic};
  p.synthetic = std::move(bytes);
  tracker_.push(std::move(p));
}

asio::awaitable<bool> ClientSession::reply_local(std::string bytes) {
  if (!tracker_.empty()) {
    add_synthetic(std::move(bytes));
    co_return true;
  }
  co_await flush_to_server();
  co_return co_await write_client(bytes);
}

// ---- client -> server ---------------------------------------------------------------------------

asio::awaitable<bool> ClientSession::read_client(bool& retry) {
  retry = false;
  boost::system::error_code ec;
  reading_client_ = true;
  client_waiting_ = true;  // for the timeout janitor: the session waits for its client
  if (in_.empty()) {
    in_.release_if_empty();
    co_await stream_.wait_readable(ec);
  }
  std::size_t n = 0;
  if (!ec) n = co_await stream_.read_some(in_.prepare(4096), ec);
  reading_client_ = false;
  client_waiting_ = false;
  if (ec) {
    // Aborted by shutdown_when_idle, or by the pump to resend a Query whose replica died (not
    // by a timeout, which ends the session).
    retry = ec == asio::error::operation_aborted && (closing_ || resend_) && !timeout_error_;
    co_return false;
  }
  ++client_reads_;
  in_.commit(n);
  co_return true;
}

asio::awaitable<void> ClientSession::client_loop() {
  in_client_loop_ = true;
  for (;;) {
    if (resend_) {
      if (!co_await run_again()) co_return;
      continue;
    }
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
      bool retry = false;
      if (!co_await read_client(retry) && !retry) {
        if (timeout_error_) co_await send_fatal(*timeout_error_);  // an idle timeout ended the wait
        co_return;
      }
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

asio::awaitable<bool> ClientSession::run_again() {
  const std::string request = std::move(*resend_);
  resend_.reset();
  Frame f;
  if (protocol::decode_client_frame(request, f) != protocol::DecodeStatus::Ok) co_return false;
  const bool keep = co_await handle(f);
  co_await flush_to_server();  // the request's bytes are referenced until sent
  co_return keep;
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
  if (unit_multi() && extended) co_return co_await handle_multi_unit(f);
  if (f.tag == 'S') unit_routed_ = false;
  if (skip_until_sync_ && (f.tag == 'S' || extended)) co_return co_await skip_to_sync(f, whole);
  if (f.tag == 'Q') co_return co_await handle_query(f, whole);
  if (!server_) {
    if (f.tag == 'd' || f.tag == 'c' || f.tag == 'f' || f.tag == 'H') co_return true;  // no COPY running
    if (f.tag == 'S') {  // nothing pending: just the ReadyForQuery
      std::string out;
      protocol::MessageWriter(out).ready_for_query(tx_.status());
      co_return co_await reply_local(std::move(out));
    }
    if (f.tag == 'F' && !co_await attach(default_shard())) co_return co_await fail_request(unit_extras().last_error, false);
  }
  if (!server_ && extended) {
    // route_unit() has attached the unit's server unless it failed, which skips to Sync.
    co_return co_await fail_request(SqlError::error(sqlstate::kInternalError, "no server for this request"), true);
  }
  co_return co_await forward_message(f, whole, extended);
}

void ClientSession::note_unsent_parse(const Frame& f) {
  protocol::BodyReader r(f.body);
  auto name = r.cstr();
  auto query = r.cstr();
  if (name && query && !name->empty())
    statements_[std::string(*name)] = services_.statements.intern(*query, std::string_view(r.pos(), r.remaining()));
  else if (name && query)
    remember_unnamed(*query, std::string_view(r.pos(), r.remaining()), 0);
}

asio::awaitable<bool> ClientSession::handle_multi_unit(const Frame& f) {
  if (f.tag == 'P') note_unsent_parse(f);  // a named statement must exist for its later Binds
  if (f.tag != 'S') co_return true;
  router::Plan plan = std::move(*unit_extras().multi);
  unit_extras().multi.reset();
  unit_routed_ = false;
  std::string request = std::move(unit_extras().multi_request);
  std::vector<bool> keep = std::move(unit_extras().multi_keep_parse);
  co_return co_await run_multi(plan, {}, request, keep, std::move(unit_extras().multi_scatter));
}

asio::awaitable<bool> ClientSession::skip_to_sync(const Frame& f, std::string_view whole) {
  if (f.tag != 'S') co_return true;
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
  protocol::MessageWriter(out).ready_for_query(tx_.status());
  co_return co_await reply_local(std::move(out));
}

asio::awaitable<bool> ClientSession::forward_message(const Frame& f, std::string_view whole, bool extended) {
  sync_server_state();
  if (tx_.held()) apply_held_begin();  // e.g. a Query BEGIN arrived inside an open extended unit
  if (extended && f.tag != 'S') unit_open_ = true;  // the unnamed statement/portal lives on this server
  bool ok = true;
  switch (f.tag) {
    case 'F':
      to_server_.ref(whole.data(), whole.size());
      tracker_.push(Pending{Expect::SimpleQuery});
      break;
    case 'P': ok = handle_parse(f); break;
    case 'B': ok = handle_bind(f); break;
    case 'D':
    case 'C': ok = handle_describe_or_close(f); break;
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
      note_writes(unit_effects_, unit_in_tx_, unit_scope_.logical());
      unit_effects_ = StatementEffects{};
      break;
    default:  // Flush, CopyData, CopyDone, CopyFail: no reply of their own
      to_server_.ref(whole.data(), whole.size());
      // After a Flush ending a unit that only prepared or described, the next messages are
      // routed by their own content (their Bind may need another shard).
      if (f.tag == 'H' && unit_undecided_) unit_routed_ = false;
      break;
  }
  if (!ok) co_await send_fatal(unit_extras().last_error);
  co_return ok;
}

}  // namespace shardline::proxy::session
