// The session's server: taking one from a pool for a shard (and replica), keeping it while a
// transaction or unit is open on it, replaying the session's SET state and a held BEGIN on it,
// handing it back, and the pump coroutine relaying its replies to the client.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "proxy/protocol/error_fields.hpp"
#include "proxy/protocol/message_writer.hpp"
#include "proxy/session/client_session.hpp"

namespace shardline::proxy::session {

using protocol::Frame;
using protocol::SqlError;
namespace sqlstate = protocol::sqlstate;

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
  if (cancel_flight_) {  // a query_timeout cancel is on its way to this server: let it land first
    co_await await_cancel_delivered();
    if (!server_) {
      to_server_.clear();
      co_return true;
    }
  }
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
  start_pump();
  co_return true;
}

asio::awaitable<bool> ClientSession::release_idle_server() {
  if (!server_) co_return true;
  co_await flush_to_server();
  // A server that never answers (it ignores everything up to a Sync the client did not send)
  // must not keep a client that left: its end is checked while waiting.
  while (server_ && !tracker_.empty()) {
    if (co_await pump_state_.wait_until(backend::Clock::now() + std::chrono::milliseconds(200))) continue;
    if (stream_.peer_closed()) {
      client_gone_ = true;
      co_return false;
    }
  }
  if (!server_) co_return true;
  if (tx_.server_status() != 'I' || unit_open_) co_return false;  // a transaction or unit is open on it
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
  if (server_ && (tx_.server_status() == 'E' || (unit_open_ && tx_.error_since_ready()))) {
    shard = shard_;
    replica = replica_;
  } else if (!server_ && !parked_.empty() && tx_.failed()) {
    unit_extras().last_error = Transaction::aborted_error();  // failed in a statement on several shards
    co_return false;
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
  if (tx_.held()) apply_held_begin();
  co_return true;
}

void ClientSession::apply_held_begin() {
  // The transaction the client opened earlier starts now, on this server; the client already
  // had its replies.
  sync_server_state();
  protocol::MessageWriter w = to_server_.writer();
  w.begin('Q').cstr(tx_.held_sql()).end();
  to_server_.sealed();
  tracker_.push(Pending{Expect::Swallow});
  unnamed_server_ = 0;  // a Query drops the server's unnamed statement
  // The replay is kept while the transaction may still move (a provisional server).
  tx_.bind(Participant{shard_, replica_}, server_provisional_);
}

void ClientSession::leave_provisional_server() {
  protocol::MessageWriter w = to_server_.writer();
  if (unit_open_) {
    w.begin('S').end();
    tracker_.push(Pending{Expect::Swallow});
    unit_open_ = false;
  }
  if (tx_.server_status() != 'I') {
    w.begin('Q').cstr("ROLLBACK").end();
    tracker_.push(Pending{Expect::Swallow});
    tx_.unbind();
  }
  to_server_.sealed();
  server_provisional_ = false;
}

asio::awaitable<bool> ClientSession::switch_server(int shard, int replica) {
  // A transaction spanning shards (2pc) keeps its server here and takes or joins `shard`'s.
  if (!tx_.held() && tx_.server_status() != 'I' && replica < 0 && twopc()) co_return co_await join_shard(shard);
  if (server_ && !co_await release_idle_server()) {
    const auto& names = services_.directory->shard_names();
    if (tx_.server_status() != 'I') {
      const bool twopc_set = services_.cluster.config().sharding.cross_shard_transactions ==
                             config::CrossShardTransactions::TwoPhaseCommit;
      unit_extras().last_error = SqlError::error(
          sqlstate::kFeatureNotSupported,
          fmt::format("transaction is bound to shard {}; this statement needs shard {} ({})", names[std::size_t(shard_)],
                      names[std::size_t(shard)],
                      twopc_set ? "transactions across shards need transaction pooling (pool.mode: transaction)"
                                : "cross-shard transactions are disabled: cross_shard_transactions is deny"));
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

void ClientSession::sync_server_state() {
  if (!server_) return;  // lost meanwhile: the caller fails the statement
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
  bool malformed = false;  ///< lost because the server sent something that is not the protocol
  // co_spawn dispatches: this coroutine starts inside start_pump(), before the caller has sent
  // or tracked anything. It first waits for the server to speak (the reactor never completes a
  // wait inline), so a pooled connection found dead is handled once the statement is in flight
  // and its caller can retry it, never under the caller's feet.
  bool first = in.empty();
  for (;;) {
    boost::system::error_code ec;
    if (first) co_await server->stream().wait_readable(ec);
    first = false;
    std::size_t n = 0;
    if (!ec) n = co_await server->stream().read_some(in.prepare(8192), ec);
    if (ec) {
      lost = !stop_pump_;
      break;
    }
    in.commit(n);
    std::size_t used = 0;
    if (!relay_server_input(*server, used)) {
      spdlog::warn("server {} sent a malformed message; closing it", pool_->name());
      lost = true;
      malformed = true;
      break;
    }
    if (!to_client_.empty()) {
      replica_retry_.reset();  // the client has seen part of the reply
      pool_->stats.bytes_sent += to_client_.bytes();
      bool ok = co_await write_client(to_client_);
      to_client_.clear();
      patched_errors_.clear();
      if (!ok) {
        // The client is gone; finish this exchange only if the server is idle now.
        in.consume(used);
        if (!server_idle()) server->broken = true;
        stream_.socket().cancel(ec);
        break;
      }
    }
    in.consume(used);
    if (stop_pump_) break;
    if (server_idle() && in.empty() && (transaction_mode || closing_)) {
      detach_server(false);
      if (closing_) {
        boost::system::error_code ignored;
        stream_.socket().cancel(ignored);
      }
      break;
    }
  }
  if (lost && server_) co_await on_server_lost(*server, malformed);
  pump_running_ = false;
  pump_state_.notify();
}

asio::awaitable<void> ClientSession::on_server_lost(backend::ServerConnection& server, bool malformed) {
  if (replica_ >= 0) pool_->note_failure();
  if (replica_retry_ && reading_client_ && !client_gone_) {
    // Nothing of the reply reached the client and it waits for it: the client loop runs the
    // read again, and the replica is avoided meanwhile.
    spdlog::info("client {}: server {} was lost before replying; the read goes to the primary", peer_,
                 pool_->name());
    resend_ = std::move(replica_retry_);
    replica_retry_.reset();
    detach_server(true);
    boost::system::error_code ignored;
    stream_.socket().cancel(ignored);
  } else {
    server.broken = true;
    if (!client_gone_) {
      to_client_.clear();
      // A query_timeout whose cancel went unanswered closed the server on purpose: say so.
      SqlError e = timeout_error_
                       ? *timeout_error_
                       : SqlError::fatal(
                             malformed ? sqlstate::kProtocolViolation : sqlstate::kConnectionFailure,
                             fmt::format("server connection to shard {} {} ({}:{}) {}", pool_->shard(), pool_->role(),
                                         server.endpoint().host, server.endpoint().port,
                                         malformed ? "sent a message that is not PostgreSQL's protocol; it was closed"
                                                   : "was lost"));
      std::string out;
      protocol::MessageWriter(out).error(e);
      co_await write_client(out);
    }
    client_gone_ = true;
    detach_server(true);
    stream_.close();
  }
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

bool ClientSession::relay_server_input(backend::ServerConnection& server, std::size_t& used) {
  auto data = server.input().readable();
  for (;;) {
    Frame f;
    auto st = protocol::decode_backend_frame(data.subspan(used), f);
    if (st == protocol::DecodeStatus::NeedMoreData) return true;
    if (st == protocol::DecodeStatus::Malformed) return false;
    std::string_view whole(data.data() + used, f.total_size);
    std::string_view body(f.body.data(), f.body.size());
    used += f.total_size;
    if (f.tag == 'S' && !filter_parameter_status(body)) continue;
    if (f.tag == 'E' && protocol::error_sqlstate(body).empty()) {
      // A server error without a SQLSTATE (not PostgreSQL, or a broken one): the client gets
      // XX000 with the server's fields, kept until to_client_ is written.
      spdlog::warn("server {} sent an ErrorResponse without a SQLSTATE; passed on as XX000", pool_->name());
      whole = patched_errors_.emplace_back(protocol::error_with_sqlstate(body, sqlstate::kInternalError));
      body = whole.substr(5);
    }
    tracker_.on_server_message(f.tag, whole, body, to_client_, *this);
  }
}

}  // namespace shardline::proxy::session
