#pragma once
// HTTP on admin.http_port (same host as `listen`), Boost.Beast on the data-plane executor:
// /metrics (Prometheus text), /healthz, /api/<table> (JSON), and the dashboard at /. Every
// handler only reads the data plane's state and formats it, so it never blocks the data plane;
// /healthz's connection probes are asynchronous. Optional HTTP basic auth (admin.http_auth)
// with an admin user's password.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <string>
#include <unordered_set>

#include "proxy/session/services.hpp"

namespace shardline::proxy::admin {

class HttpServer {
 public:
  using Request = boost::beast::http::request<boost::beast::http::string_body>;
  using Response = boost::beast::http::response<boost::beast::http::string_body>;

  explicit HttpServer(session::Services& services);
  /// Binds host:port; throws std::runtime_error naming the address on failure.
  void start(const std::string& host, std::uint16_t port);
  void stop();
  std::uint16_t port() const;

  /// The response to one request (public for the connection coroutine).
  boost::asio::awaitable<Response> handle(const Request& req);

 private:
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<Response> healthz(unsigned version);
  /// Basic auth: true if the Authorization header names an admin user with its password.
  bool authorized(const Request& req);

  session::Services& services_;
  boost::asio::ip::tcp::acceptor acceptor_;
  /// Authorization headers already verified (a SCRAM secret takes a PBKDF2 to check, which must
  /// not run on every dashboard poll); cleared when it grows past a few entries.
  std::unordered_set<std::string> verified_;
  std::shared_ptr<const config::Config> verified_for_;  ///< the config those were verified against
};

}  // namespace shardline::proxy::admin
