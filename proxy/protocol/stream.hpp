#pragma once
// A connection that is plain TCP or TLS over TCP, decided during the startup handshake
// (SSLRequest). Both the client side and the server side of the proxy use it.
//
// Plain reads are asio reads on the reactor (see read_some in stream.cpp for why not a wait
// for readability and then a read); idle clients wait for readability with no buffer held.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <memory>
#include <span>
#include <system_error>
#include <vector>

namespace shardline::proxy::protocol {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class Stream {
 public:
  explicit Stream(tcp::socket socket);
  Stream(Stream&&) noexcept = default;
  ~Stream();

  tcp::socket& socket() { return socket_; }
  bool is_tls() const { return tls_ != nullptr; }

  /// TLS handshake as the server side (client connections) or the client side (backends).
  /// Throws boost::system::system_error on failure.
  asio::awaitable<void> start_tls(asio::ssl::context& ctx, asio::ssl::stream_base::handshake_type type);

  /// Reads at least one byte; 0 with `ec` set on EOF or error. Never throws.
  asio::awaitable<std::size_t> read_some(std::span<char> into, boost::system::error_code& ec);
  /// Waits until a read would not block (idle clients hold no read buffer meanwhile); costs an
  /// epoll_ctl, which read_some does not.
  asio::awaitable<void> wait_readable(boost::system::error_code& ec);
  /// Writes everything (gathered buffers: one writev on plain TCP). Never throws.
  asio::awaitable<void> write_all(std::span<const asio::const_buffer> bufs, boost::system::error_code& ec);
  asio::awaitable<void> write_all(std::string_view bytes, boost::system::error_code& ec);

  /// Bytes already readable without blocking (TLS: decrypted bytes pending in OpenSSL).
  bool has_pending_input();
  /// True when an idle connection must not be reused: the peer closed it, or sent something
  /// nobody asked for (one recv with MSG_PEEK).
  /// The peer has closed or reset the connection (a non-blocking peek; bytes waiting to be
  /// read are not an end).
  bool peer_closed();
  bool unusable_when_idle();
  void close();

 private:
  tcp::socket socket_;
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;
};

}  // namespace shardline::proxy::protocol
