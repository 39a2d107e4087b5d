#include "proxy/backend/server_connection.hpp"

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "proxy/protocol/frame_reader.hpp"
#include "proxy/protocol/md5_auth.hpp"
#include "proxy/protocol/message_writer.hpp"
#include "proxy/protocol/scram.hpp"

namespace shardline::proxy::backend {

using protocol::Error;
using tcp = asio::ip::tcp;
using protocol::Result;
namespace {
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
std::atomic<std::uint64_t> g_next_server_id{1};
constexpr std::int32_t kSslRequestCode = 80877103;
constexpr std::int32_t kProtocolVersion3 = 196608;
}  // namespace

ServerConnection::ServerConnection(protocol::Stream stream, config::Endpoint endpoint)
    : stream_(std::move(stream)),
      endpoint_(std::move(endpoint)),
      id_(g_next_server_id++),
      created_at_(Clock::now()),
      last_used_(created_at_) {}

asio::awaitable<Result<std::unique_ptr<ServerConnection>>> ServerConnection::connect(
    asio::any_io_executor ex, config::Endpoint endpoint, const config::Backend& backend,
    asio::ssl::context* tls, std::chrono::milliseconds timeout) {
  const std::string where = fmt::format("{}:{}", endpoint.host, endpoint.port);
  // One deadline for all of it (PgBouncer's server_connect_timeout): name lookup, TCP connect,
  // TLS, startup and authentication. When it passes, the timer ends whatever step is waiting.
  tcp::resolver resolver(ex);
  tcp::socket socket(ex);
  tcp::socket* current = &socket;  // the stream's own socket once the connection is made
  asio::steady_timer deadline(ex, timeout);
  bool timed_out = false;
  deadline.async_wait([&current, &resolver, &timed_out](boost::system::error_code ec) {
    if (ec) return;
    timed_out = true;
    resolver.cancel();
    boost::system::error_code ignored;
    current->shutdown(tcp::socket::shutdown_both, ignored);
    current->close(ignored);
  });
  const auto expired = [&](std::string_view step) {
    return Error{fmt::format("server {}: no answer within server_connect_timeout ({} ms) while {}", where,
                             timeout.count(), step)};
  };
  auto [rerr, results] =
      co_await resolver.async_resolve(endpoint.host, std::to_string(endpoint.port), kTuple);
  if (rerr) {
    deadline.cancel();
    if (timed_out) co_return expired("resolving its name");
    co_return Error{fmt::format("cannot resolve {}: {}", where, rerr.message())};
  }
  auto [cerr, ep] = co_await asio::async_connect(socket, results, kTuple);
  if (cerr) {
    deadline.cancel();
    if (timed_out) co_return expired("connecting");
    co_return Error{fmt::format("cannot connect to {}: {}", where, cerr.message())};
  }
  // The Stream makes the connected socket non-blocking (its reads rely on that).
  auto conn = std::make_unique<ServerConnection>(protocol::Stream(std::move(socket)), endpoint);
  current = &conn->stream().socket();
  auto r = co_await conn->handshake(backend, tls);
  deadline.cancel();
  if (!r.ok()) {
    if (timed_out) co_return expired("logging in");
    co_return Error{fmt::format("server {}: {}", where, r.error())};
  }
  co_return std::move(conn);
}

asio::awaitable<Result<void>> ServerConnection::handshake(const config::Backend& backend,
                                                          asio::ssl::context* tls) {
  boost::system::error_code ec;
  std::string out;
  protocol::MessageWriter w(out);

  if (backend.tls != config::BackendTlsMode::Disable && tls) {
    w.begin(0).i32(kSslRequestCode).end();
    co_await stream_.write_all(out, ec);
    if (ec) co_return Error{"SSLRequest: " + ec.message()};
    out.clear();
    char answer = 0;
    co_await stream_.read_some({&answer, 1}, ec);
    if (ec) co_return Error{"SSLRequest: " + ec.message()};
    if (answer == 'S') {
      try {
        co_await stream_.start_tls(*tls, asio::ssl::stream_base::client);
      } catch (const boost::system::system_error& e) {
        co_return Error{std::string("TLS handshake failed: ") + e.what()};
      }
    } else if (answer != 'N') {
      co_return Error{"unexpected answer to SSLRequest"};
    } else if (backend.tls == config::BackendTlsMode::Require) {
      co_return Error{"server does not support TLS but backend.tls is require"};
    }
  } else if (backend.tls == config::BackendTlsMode::Require) {
    co_return Error{"backend.tls is require but no TLS context is available"};
  }

  w.begin(0).i32(kProtocolVersion3);
  w.cstr("user").cstr(backend.user).cstr("database").cstr(backend.database);
  w.byte('\0').end();
  co_await stream_.write_all(out, ec);
  if (ec) co_return Error{"startup: " + ec.message()};

  std::unique_ptr<protocol::ScramClient> scram;
  for (;;) {
    protocol::Frame f;
    auto st = protocol::decode_backend_frame(input_.readable(), f);
    if (st == protocol::DecodeStatus::Malformed) co_return Error{"malformed message from server"};
    if (st == protocol::DecodeStatus::NeedMoreData) {
      auto span = input_.prepare(4096);
      std::size_t n = co_await stream_.read_some(span, ec);
      if (ec) co_return Error{"connection closed during startup: " + ec.message()};
      input_.commit(n);
      continue;
    }
    protocol::BodyReader r(f.body);
    out.clear();
    switch (f.tag) {
      case 'R': {
        auto code = r.i32();
        if (!code) co_return Error{"malformed authentication request"};
        if (*code == 0) break;  // AuthenticationOk
        if (*code == 3) {       // cleartext
          w.begin('p').cstr(backend.password).end();
        } else if (*code == 5) {  // md5
          auto salt = r.bytes(4);
          if (!salt) co_return Error{"malformed md5 request"};
          std::array<unsigned char, 4> s;
          std::memcpy(s.data(), salt->data(), 4);
          w.begin('p').cstr(protocol::md5_password_response(backend.user, backend.password, s)).end();
        } else if (*code == 10) {  // SASL: list of mechanisms
          bool has_scram = false;
          while (auto mech = r.cstr()) {
            if (mech->empty()) break;
            if (*mech == protocol::kScramSha256Mechanism) has_scram = true;
          }
          if (!has_scram) co_return Error{"server offers no SASL mechanism we support"};
          scram = std::make_unique<protocol::ScramClient>(backend.password);
          std::string first = scram->client_first();
          w.begin('p').cstr(protocol::kScramSha256Mechanism).i32(std::int32_t(first.size())).raw(first).end();
        } else if (*code == 11) {  // SASL continue
          if (!scram) co_return Error{"unexpected SASL continue"};
          std::string_view data(r.pos(), r.remaining());
          auto fin = scram->on_server_first(data);
          if (!fin.ok()) co_return Error{"SCRAM: " + fin.error()};
          w.begin('p').raw(fin.value()).end();
        } else if (*code == 12) {  // SASL final
          if (!scram) co_return Error{"unexpected SASL final"};
          std::string_view data(r.pos(), r.remaining());
          auto ok = scram->on_server_final(data);
          if (!ok.ok()) co_return Error{"SCRAM: " + ok.error()};
        } else {
          co_return Error{fmt::format("unsupported authentication method {}", *code)};
        }
        break;
      }
      case 'S': {
        auto name = r.cstr();
        auto value = r.cstr();
        if (!name || !value) co_return Error{"malformed ParameterStatus"};
        parameters_.emplace_back(std::string(*name), std::string(*value));
        break;
      }
      case 'K': {
        auto pid = r.i32();
        auto secret = r.i32();
        if (!pid || !secret) co_return Error{"malformed BackendKeyData"};
        backend_pid_ = *pid;
        backend_secret_ = *secret;
        break;
      }
      case 'E': {
        auto e = protocol::parse_error_fields({f.body.data(), f.body.size()});
        co_return Error{fmt::format("{} (SQLSTATE {})", e.message, e.sqlstate)};
      }
      case 'Z':
        input_.consume(f.total_size);
        co_return Result<void>{};
      default:  // NoticeResponse, NegotiateProtocolVersion: nothing to do
        break;
    }
    input_.consume(f.total_size);
    if (!out.empty()) {
      co_await stream_.write_all(out, ec);
      if (ec) co_return Error{"authentication: " + ec.message()};
    }
  }
}

}  // namespace shardline::proxy::backend
