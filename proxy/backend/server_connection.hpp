#pragma once
// One authenticated connection from the proxy to a PostgreSQL server (a shard's primary or a
// replica). Owned by its Pool while idle and lent to one client session at a time.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "proxy/backend/session_vars.hpp"
#include "proxy/protocol/byte_buffer.hpp"
#include "proxy/protocol/result.hpp"
#include "proxy/protocol/stream.hpp"

namespace shardline::proxy::backend {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

class Pool;

class ServerConnection {
 public:
  ServerConnection(protocol::Stream stream, config::Endpoint endpoint);
  ServerConnection(const ServerConnection&) = delete;
  ServerConnection& operator=(const ServerConnection&) = delete;

  /// TCP connect, optional TLS, StartupMessage and authentication (SCRAM-SHA-256, md5,
  /// cleartext or trust), all within `timeout` (pool.server_connect_timeout_ms). The error names
  /// the server (and the step the timeout interrupted).
  static asio::awaitable<protocol::Result<std::unique_ptr<ServerConnection>>> connect(
      asio::any_io_executor ex, config::Endpoint endpoint, const config::Backend& backend,
      asio::ssl::context* tls, std::chrono::milliseconds timeout);

  protocol::Stream& stream() { return stream_; }
  protocol::ByteBuffer& input() { return input_; }
  const config::Endpoint& endpoint() const { return endpoint_; }
  std::int32_t backend_pid() const { return backend_pid_; }
  std::int32_t backend_secret() const { return backend_secret_; }
  /// ParameterStatus values the server reported while starting (server_version, encodings...).
  const std::vector<std::pair<std::string, std::string>>& startup_parameters() const {
    return parameters_;
  }

  std::uint64_t id() const { return id_; }
  Clock::time_point created_at() const { return created_at_; }
  Clock::time_point last_used() const { return last_used_; }
  void touch() { last_used_ = Clock::now(); }

  /// Settings applied on this server (see SessionVars).
  SessionVars vars;
  /// Ids of the client prepared statements that exist on this server under their shared name.
  std::unordered_set<std::uint64_t> prepared;
  /// Set once the connection is known unusable; the pool then closes it instead of reusing it.
  bool broken = false;
  /// CancelRequests sent for this connection's query whose delivery the server has not yet
  /// confirmed (closed the cancel connection). Until then the connection serves no other client:
  /// a late signal would cancel that client's query (Pool::release parks it).
  int cancels_in_flight = 0;
  /// Session using it right now (0 when idle), for SHOW SERVERS.
  std::uint64_t client_id = 0;
  Pool* pool = nullptr;

 private:
  asio::awaitable<protocol::Result<void>> handshake(const config::Backend& backend, asio::ssl::context* tls);

  protocol::Stream stream_;
  protocol::ByteBuffer input_;
  config::Endpoint endpoint_;
  std::int32_t backend_pid_ = 0;
  std::int32_t backend_secret_ = 0;
  std::vector<std::pair<std::string, std::string>> parameters_;
  std::uint64_t id_;
  Clock::time_point created_at_;
  Clock::time_point last_used_;
};

}  // namespace shardline::proxy::backend
