// Hostile backends: shard s1's primary is a fake server speaking just enough of the protocol
// to misbehave: an ErrorResponse without a SQLSTATE, a SCRAM server-first-message asking for
// two billion iterations or carrying a 100 kB nonce, garbage instead of a reply after a clean
// login. The client whose statement went there gets a clear error with a SQLSTATE, quickly;
// a healthy client of the real shard s0 querying throughout is not affected.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <chrono>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/health_probe.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"
#include "tests/integration/support/raw_client.hpp"

namespace {

using namespace std::chrono_literals;
using shardline::testing::free_port;
using shardline::testing::HealthyClient;
using shardline::testing::PgConnection;
using shardline::testing::PgResult;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using Clock = std::chrono::steady_clock;

shardline::control::LocalCluster& cluster() { return shardline::testing::test_cluster({.shards = 2}); }

enum class Misbehaviour { ErrorWithoutSqlstate, HugeIterations, HugeNonce, GarbageAfterLogin };

using shardline::testing::raw::be32;
using shardline::testing::raw::message;
std::string auth(std::uint32_t code, const std::string& rest = "") { return message('R', be32(code) + rest); }
std::string ready() { return message('Z', "I"); }

/// Blocking reads on one accepted connection; empty on EOF or after 10 s of silence.
class Peer {
 public:
  /// `ends` is polled while waiting: once true the connection closes (a misbehaviour ended).
  Peer(int fd, std::function<bool()> ends) : fd_(fd), ends_(std::move(ends)) {}
  ~Peer() { ::close(fd_); }
  bool fill(std::size_t n) {
    const auto deadline = Clock::now() + 10s;
    while (in_.size() < n) {
      if (ends_() || Clock::now() > deadline) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      char buf[65536];
      const ssize_t got = ::read(fd_, buf, sizeof buf);
      if (got <= 0) return false;
      in_.append(buf, std::size_t(got));
    }
    return true;
  }
  /// The startup packet (answering an SSLRequest with 'N' first).
  bool startup() {
    for (;;) {
      if (!fill(4)) return false;
      const std::uint32_t len = ntohl(*reinterpret_cast<const std::uint32_t*>(in_.data()));
      if (!fill(len)) return false;
      const std::uint32_t code = ntohl(*reinterpret_cast<const std::uint32_t*>(in_.data() + 4));
      in_.erase(0, len);
      if (code == 80877103 || code == 80877104) {
        send("N");
        continue;
      }
      return true;
    }
  }
  /// The next tagged message: its tag and body (tag 0 when the connection ended).
  std::pair<char, std::string> next() {
    if (!fill(5)) return {0, ""};
    const std::uint32_t len = ntohl(*reinterpret_cast<const std::uint32_t*>(in_.data() + 1));
    if (!fill(len + 1)) return {0, ""};
    std::pair<char, std::string> m{in_[0], in_.substr(5, len - 4)};
    in_.erase(0, len + 1);
    return m;
  }
  void send(const std::string& bytes) { (void)!::write(fd_, bytes.data(), bytes.size()); }

 private:
  int fd_;
  std::function<bool()> ends_;
  std::string in_;
};

/// A fake PostgreSQL server on a free port; every connection gets the current misbehaviour.
class FakeBackend {
 public:
  FakeBackend() : port_(free_port()) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port_);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 64) != 0)
      throw std::runtime_error("fake backend cannot listen");
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~FakeBackend() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  std::atomic<Misbehaviour> mode{Misbehaviour::ErrorWithoutSqlstate};

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      std::thread([this, fd] { serve(fd); }).detach();
    }
  }
  static void login_ok(Peer& peer) {
    std::string out = auth(0);
    for (const auto& [k, v] : {std::pair<std::string, std::string>{"server_version", "15.0"}, {"server_encoding", "UTF8"},
                               {"client_encoding", "UTF8"}, {"DateStyle", "ISO, MDY"}, {"integer_datetimes", "on"},
                               {"standard_conforming_strings", "on"}, {"TimeZone", "UTC"}})
      out += message('S', k + std::string(1, '\0') + v + std::string(1, '\0'));
    out += message('K', be32(4242) + be32(1234));
    peer.send(out + ready());
  }
  void serve(int fd) {
    const Misbehaviour m = mode.load();
    Peer peer(fd, [this, m] { return stop_ || mode.load() != m; });
    if (!peer.startup()) return;
    if (m == Misbehaviour::HugeIterations || m == Misbehaviour::HugeNonce) {
      peer.send(auth(10, std::string("SCRAM-SHA-256") + '\0' + '\0'));
      auto [tag, body] = peer.next();  // SASLInitialResponse: mechanism, length, client-first
      const auto r = body.find("r=");
      if (tag != 'p' || r == std::string::npos) return;
      const std::string client_nonce = body.substr(r + 2);
      const std::string nonce = client_nonce + (m == Misbehaviour::HugeNonce ? std::string(100000, 'x') : "abc");
      const std::string iterations = m == Misbehaviour::HugeIterations ? "2000000000" : "4096";
      peer.send(auth(11, "r=" + nonce + ",s=c2FsdHNhbHQ=,i=" + iterations));
      (void)peer.next();  // the proxy should have given up instead
      return;
    }
    login_ok(peer);
    for (;;) {
      auto [tag, body] = peer.next();
      if (tag == 0 || tag == 'X') return;
      if (tag != 'Q' && tag != 'S') continue;
      if (m == Misbehaviour::GarbageAfterLogin) {
        peer.send("this is not the PostgreSQL protocol\n");
        continue;
      }
      const std::string fields = std::string("SERROR") + '\0' + "Mthe fake server failed" + '\0' + '\0';
      peer.send(message('E', fields) + ready());
    }
  }

  std::uint16_t port_;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(HostileBackend, ClientsGetClearErrorsAndOthersAreUnaffected) {
  // A tenant of s1, asked of a proxy in front of the real cluster.
  int s1_tenant = 0;
  {
    ProxyProcess real(ProxyConfig(cluster(), free_port()).yaml());
    PgConnection c(real.conninfo() + " sslmode=disable");
    ASSERT_TRUE(c.ok()) << c.error();
    for (int k = 1; s1_tenant == 0; ++k)
      if (std::stoi(c.value(fmt::format("/* shardline: tenant={} */ SELECT inet_server_port()", k))) ==
          cluster().primary_port(1))
        s1_tenant = k;
  }
  FakeBackend fake;
  // Every case logs in anew (server_login_retry off): each must see its own hostile answer.
  std::string yaml =
      ProxyConfig(cluster(), free_port()).query_wait_timeout_ms(3000).pool_options("server_login_retry_ms: 0").yaml();
  const std::string real_port = fmt::format("port: {}}}", cluster().primary_port(1));
  ASSERT_NE(yaml.find(real_port), std::string::npos);
  yaml.replace(yaml.find(real_port), real_port.size(), fmt::format("port: {}}}", fake.port()));
  ProxyProcess proxy(yaml);
  const std::string conninfo = proxy.conninfo() + " sslmode=disable gssencmode=disable connect_timeout=5";
  HealthyClient healthy(conninfo);

  struct Case {
    Misbehaviour mode;
    std::string sqlstate;
    std::string says;  ///< part of the message the client must see
  };
  const std::vector<Case> cases = {
      {Misbehaviour::ErrorWithoutSqlstate, "XX000", "the fake server failed"},
      {Misbehaviour::HugeIterations, "08006", "iterations"},
      {Misbehaviour::HugeNonce, "08006", "nonce"},
      {Misbehaviour::GarbageAfterLogin, "08P01", "not PostgreSQL's protocol"},
  };
  const std::string sql = fmt::format("/* shardline: tenant={} */ SELECT 1", s1_tenant);
  for (const Case& c : cases) {
    fake.mode = c.mode;
    std::this_thread::sleep_for(100ms);  // the fake closes the earlier mode's connections
    for (int i = 0; i < 3; ++i) {
      PgConnection client(conninfo);
      ASSERT_TRUE(client.ok()) << client.error();
      const auto t0 = Clock::now();
      const PgResult r = client.exec(sql);
      const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      ASSERT_FALSE(r.ok());
      std::string state = r.sqlstate();
      if (state.empty() && !client.error_sqlstates().empty()) state = client.error_sqlstates().back();
      // A FATAL's text is libpq's connection error, not the result's.
      const std::string said = r.describe() + " / " + client.error();
      EXPECT_EQ(state, c.sqlstate) << said;
      EXPECT_NE(said.find(c.says), std::string::npos) << said;
      EXPECT_LT(secs, 1.0) << said;
      if (i == 0) std::printf("%s (%.3f s)\n", said.c_str(), secs);
      // The connection to the proxy is either still usable or was closed after the error.
      if (PQstatus(client.get()) == CONNECTION_OK) {
        const PgResult after = client.exec("SELECT 2");
        EXPECT_TRUE(after.ok()) << after.describe();
      }
    }
  }
  healthy.stop();
  EXPECT_TRUE(healthy.errors().empty()) << healthy.errors().front();
  EXPECT_LE(healthy.worst_ms(), 100.0);
  std::printf("healthy client: %d statements, worst %.1f ms\n", healthy.statements(), healthy.worst_ms());
}

}  // namespace
