// Stalled logins (issue: half a startup packet, a client that stops mid-SCRAM) are closed after
// pool.client_login_timeout_ms, and at most pool.max_login_clients may be logging in at once;
// the healthy clients of the same proxy are not affected. Malformed frames after login are
// refused on their header with 08P01.

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>
#include <algorithm>

#include <fmt/format.h>

#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"
#include "tests/integration/support/raw_client.hpp"

namespace {

using namespace std::chrono_literals;
using shardline::testing::free_port;
using shardline::testing::PgConnection;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using Clock = std::chrono::steady_clock;

shardline::control::LocalCluster& cluster() { return shardline::testing::test_cluster({.shards = 1}); }

/// A raw TCP connection to the proxy.
class RawSocket {
 public:
  explicit RawSocket(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawSocket() { ::close(fd_); }
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;
  bool connected() const { return connected_; }
  void send(const std::string& bytes) const { (void)!::write(fd_, bytes.data(), bytes.size()); }
  /// Reads until the peer closes (true) or `limit` passes (false); what arrived goes to `got`.
  bool closed_within(std::chrono::milliseconds limit, std::string* got = nullptr) const {
    return shardline::testing::peer_closed_within(fd_, limit, got);
  }

 private:
  int fd_;
  bool connected_ = false;
};

std::string be32(std::uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[std::size_t(i)] = char((v >> (24 - 8 * i)) & 0xff);
  return s;
}

/// A StartupMessage for user app, database app.
std::string startup_packet() {
  std::string body = be32(196608) + std::string("user\0app\0database\0app\0\0", 24);
  return be32(std::uint32_t(body.size() + 4)) + body;
}

TEST(LoginLimits, StalledLoginsAreClosedAndCappedWhileHealthyClientsWork) {
  constexpr int kTimeoutMs = 1500;
  ProxyProcess proxy(
      ProxyConfig(cluster(), free_port()).client_login_timeout_ms(kTimeoutMs).max_login_clients(3).yaml());
  // Half a startup packet, and a client that stops after the server's SASL request.
  RawSocket half(proxy.port());
  ASSERT_TRUE(half.connected());
  half.send(startup_packet().substr(0, 7));
  RawSocket mid_scram(proxy.port());
  ASSERT_TRUE(mid_scram.connected());
  mid_scram.send(startup_packet());
  RawSocket third(proxy.port());
  third.send(std::string(3, '\0'));
  std::this_thread::sleep_for(200ms);
  // A fourth login while three are in progress: refused at once with 53300.
  {
    PgConnection refused(proxy.conninfo());
    EXPECT_FALSE(refused.ok());
    EXPECT_EQ(refused.connect_sqlstate(), "53300") << refused.error();
  }
  // The stalled ones are closed by the proxy (well within 10 timeouts: this is not a speed test).
  const auto bound = std::chrono::milliseconds(10 * kTimeoutMs);
  std::string scram_bytes;
  EXPECT_TRUE(half.closed_within(bound)) << "half a startup packet kept its connection";
  EXPECT_TRUE(mid_scram.closed_within(bound, &scram_bytes)) << "a login stalled mid-SCRAM kept its connection";
  EXPECT_FALSE(scram_bytes.empty()) << "the proxy never asked for the password";
  EXPECT_TRUE(third.closed_within(bound));
  // Now logins are possible again, and a healthy client works.
  PgConnection ok(proxy.conninfo());
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_EQ(ok.value("SELECT 6 * 7"), "42");
  // A client that logged in is not subject to the login timeout.
  std::this_thread::sleep_for(std::chrono::milliseconds(kTimeoutMs + 500));
  EXPECT_EQ(ok.value("SELECT 1"), "1");
}

TEST(LoginLimits, BadFrameHeadersAreRefusedAtOnceWith08P01) {
  ProxyProcess proxy(ProxyConfig(cluster(), free_port()).yaml());
  PgConnection healthy(proxy.conninfo());
  ASSERT_TRUE(healthy.ok()) << healthy.error();
  struct Case {
    const char* what;
    std::string bytes;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"type byte 0x00", std::string("\0\0\0\0\x08", 5) + "abcd", "invalid frontend message type"},
      {"a Query declaring 1 GB", std::string("Q") + be32(0x40000000u), "invalid message length"},
      {"a Sync with a body", std::string("S") + be32(20000), "invalid message length"},
  };
  for (const auto& c : cases) {
    PgConnection victim(proxy.conninfo());
    ASSERT_TRUE(victim.ok()) << victim.error();
    const int fd = PQsocket(victim.get());
    ASSERT_EQ(::write(fd, c.bytes.data(), c.bytes.size()), ssize_t(c.bytes.size()));
    // The reply comes at once: the header alone was enough (the body never comes).
    std::string reply;
    const auto until = Clock::now() + 10s;
    while (Clock::now() < until && reply.find(c.message) == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[1024];
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      reply.append(buf, std::size_t(n));
    }
    EXPECT_NE(reply.find("08P01"), std::string::npos) << c.what << ": " << reply;
    EXPECT_NE(reply.find(c.message), std::string::npos) << c.what << ": " << reply;
    // Nobody else noticed.
    EXPECT_EQ(healthy.value("SELECT 1"), "1") << "after " << c.what;
  }
}

}  // namespace
