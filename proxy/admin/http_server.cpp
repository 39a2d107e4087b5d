#include "proxy/admin/http_server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include "proxy/admin/admin_api.hpp"
#include "proxy/admin/dashboard_html.hpp"
#include "proxy/admin/prometheus_text.hpp"
#include "proxy/protocol/base64.hpp"
#include "proxy/protocol/scram.hpp"

namespace shardline::proxy::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kIdleTimeout = std::chrono::seconds(30);
constexpr auto kProbeTimeout = std::chrono::milliseconds(1000);

HttpServer::Response text_response(unsigned version, http::status status, std::string_view type, std::string body) {
  HttpServer::Response res{status, version};
  res.set(http::field::server, "shardline");
  res.set(http::field::content_type, type);
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(body);
  return res;
}

HttpServer::Response json_response(unsigned version, http::status status, const nlohmann::json& j) {
  return text_response(version, status, "application/json", j.dump());
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

/// One HTTP/1.1 connection: requests in turn, until the client closes or idles out.
asio::awaitable<void> serve_connection(tcp::socket socket, HttpServer* server) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(64 * 1024);
    stream.expires_after(kIdleTimeout);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    if (ec) break;  // closed, timed out or malformed: this connection only
    HttpServer::Request req = parser.release();
    HttpServer::Response res = co_await server->handle(req);
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    stream.expires_after(kIdleTimeout);
    auto [wec, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    if (wec || !res.keep_alive()) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace

HttpServer::HttpServer(session::Services& services) : services_(services), acceptor_(services.ex) {}

void HttpServer::start(const std::string& host, std::uint16_t port) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) throw std::runtime_error(fmt::format("admin HTTP: host \"{}\" is not an IP address", host));
  tcp::endpoint ep(addr, port);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(ep, ec);
  if (ec) throw std::runtime_error(fmt::format("admin HTTP: cannot listen on {}:{}: {}", host, port, ec.message()));
  acceptor_.listen(asio::socket_base::max_listen_connections);
  spdlog::info("admin HTTP on http://{}:{}/ (/metrics, /healthz, /api/)", host, acceptor_.local_endpoint().port());
  asio::co_spawn(services_.ex, accept_loop(), asio::detached);
}

void HttpServer::stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
}

std::uint16_t HttpServer::port() const {
  boost::system::error_code ec;
  auto ep = acceptor_.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

asio::awaitable<void> HttpServer::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      spdlog::warn("admin HTTP accept failed: {}", ec.message());
      asio::steady_timer t(services_.ex, std::chrono::milliseconds(100));
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    asio::co_spawn(services_.ex, serve_connection(std::move(socket), this), asio::detached);
  }
}

bool HttpServer::authorized(const Request& req) {
  auto cfg = services_.cluster.config_ptr();
  if (!cfg->admin.http_auth) return true;
  if (verified_for_ != cfg) {
    verified_.clear();
    verified_for_ = cfg;
  }
  auto it = req.find(http::field::authorization);
  if (it == req.end()) return false;
  const std::string header(it->value());
  if (verified_.contains(header)) return true;
  if (header.size() < 6 || !std::equal(header.begin(), header.begin() + 6, "Basic ", [](char a, char b) {
        return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
      }))
    return false;
  auto decoded = protocol::base64_decode(std::string_view(header).substr(6));
  if (!decoded) return false;
  const auto colon = decoded->find(':');
  if (colon == std::string::npos) return false;
  const std::string user = decoded->substr(0, colon), password = decoded->substr(colon + 1);
  if (std::find(cfg->admin.users.begin(), cfg->admin.users.end(), user) == cfg->admin.users.end()) return false;
  auto cred = services_.credentials.find(user);
  if (cred == services_.credentials.end()) return false;
  bool ok = false;
  if (auto stored = protocol::parse_scram_secret(cred->second.user.password)) {
    // Only a SCRAM secret is configured: derive the key from the given password and compare.
    const auto derived = protocol::make_scram_secret(password, stored->salt, stored->iterations);
    ok = CRYPTO_memcmp(derived.stored_key.data(), stored->stored_key.data(), derived.stored_key.size()) == 0;
  } else {
    ok = equal_constant_time(password, cred->second.user.password);
  }
  if (ok) {
    if (verified_.size() >= 16) verified_.clear();
    verified_.insert(header);
  }
  return ok;
}

asio::awaitable<HttpServer::Response> HttpServer::handle(const Request& req) {
  const unsigned v = req.version();
  if (!authorized(req)) {
    auto res = text_response(v, http::status::unauthorized, "text/plain", "authentication required: an admin user\n");
    res.set(http::field::www_authenticate, "Basic realm=\"shardline\", charset=\"UTF-8\"");
    co_return res;
  }
  if (req.method() != http::verb::get) {
    auto res = text_response(v, http::status::method_not_allowed, "text/plain", "only GET is supported\n");
    res.set(http::field::allow, "GET");
    co_return res;
  }
  std::string_view target = req.target();
  target = target.substr(0, target.find('?'));
  if (target == "/" || target == "/index.html")
    co_return text_response(v, http::status::ok, "text/html; charset=utf-8", std::string(kDashboardHtml));
  if (target == "/metrics")
    co_return text_response(v, http::status::ok, "text/plain; version=0.0.4; charset=utf-8", render_prometheus(services_));
  if (target == "/healthz") co_return co_await healthz(v);
  if (target.starts_with("/api/")) {
    if (auto t = api_table(services_, target.substr(5))) co_return json_response(v, http::status::ok, table_json(*t));
    co_return json_response(v, http::status::not_found,
                            {{"error", fmt::format("unknown API \"{}\"; try /api/shards, /api/directory, /api/replicas, "
                                                   "/api/tenants, /api/reshards, /api/pools, /api/stats",
                                                   std::string(target))}});
  }
  co_return text_response(v, http::status::not_found, "text/plain",
                          fmt::format("no such page: {} (try /, /metrics, /healthz, /api/shards)\n", std::string(target)));
}

asio::awaitable<HttpServer::Response> HttpServer::healthz(unsigned version) {
  using namespace asio::experimental::awaitable_operators;
  // Each shard's primary: can a TCP connection be opened? (asynchronous, with a timeout)
  const auto& cfg = services_.cluster.config();
  nlohmann::json shards = nlohmann::json::array();
  int reachable = 0;
  for (const auto& sh : cfg.shards) {
    std::string problem;
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(sh.primary.host == "localhost" ? "127.0.0.1" : sh.primary.host, ec);
    if (!ec) {
      tcp::socket sock(services_.ex);
      asio::steady_timer timer(services_.ex, kProbeTimeout);
      auto result = co_await (sock.async_connect(tcp::endpoint(addr, sh.primary.port), asio::as_tuple(asio::use_awaitable)) ||
                              timer.async_wait(asio::as_tuple(asio::use_awaitable)));
      if (result.index() == 1) problem = "connect timed out";
      else if (auto [cec] = std::get<0>(result); cec) problem = cec.message();
    } else {
      // A host name: resolving it would block; the pool's last connection attempt decides.
      auto& pool = services_.cluster.primary(services_.cluster.shard_index(sh.name));
      if (pool.stats.connects == 0 && pool.stats.connect_failures > 0) problem = "no connection succeeded yet";
    }
    if (problem.empty()) ++reachable;
    shards.push_back({{"shard", sh.name},
                      {"primary", fmt::format("{}:{}", sh.primary.host, sh.primary.port)},
                      {"reachable", problem.empty()},
                      {"error", problem}});
  }
  const bool all = reachable == int(cfg.shards.size());
  nlohmann::json body{{"status", all ? "ok" : reachable > 0 ? "degraded" : "unavailable"}, {"shards", shards}};
  co_return json_response(version, reachable > 0 ? http::status::ok : http::status::service_unavailable, body);
}

}  // namespace shardline::proxy::admin
