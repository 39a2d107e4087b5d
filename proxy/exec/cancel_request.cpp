#include "proxy/exec/cancel_request.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <string>

#include "proxy/protocol/message_writer.hpp"

namespace shardline::proxy::exec {

namespace asio = boost::asio;

asio::awaitable<bool> send_cancel_request(config::Endpoint endpoint, std::int32_t backend_pid,
                                          std::int32_t backend_secret) {
  auto ex = co_await asio::this_coro::executor;
  asio::ip::tcp::socket sock(ex);
  // Bounded: a server that does not answer must not keep the socket (or the waiter) forever.
  asio::steady_timer timer(ex, std::chrono::seconds(10));
  timer.async_wait([&sock](boost::system::error_code ec) {
    boost::system::error_code ignored;
    if (!ec) sock.close(ignored);
  });
  asio::ip::tcp::resolver resolver(ex);
  bool delivered = false;
  auto [rerr, results] = co_await resolver.async_resolve(endpoint.host, std::to_string(endpoint.port),
                                                         asio::as_tuple(asio::use_awaitable));
  if (!rerr) {
    auto [cerr, ep] = co_await asio::async_connect(sock, results, asio::as_tuple(asio::use_awaitable));
    if (!cerr) {
      std::string out;
      protocol::MessageWriter(out).begin(0).i32(80877102).i32(backend_pid).i32(backend_secret).end();
      auto [werr, wn] = co_await asio::async_write(sock, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
      char c;
      // The server closes the connection once it has signalled the backend.
      if (!werr) {
        auto [rderr, rn] = co_await sock.async_read_some(asio::buffer(&c, 1), asio::as_tuple(asio::use_awaitable));
        delivered = rderr == asio::error::eof;
      }
    }
  }
  timer.cancel();
  co_return delivered;
}

}  // namespace shardline::proxy::exec
