// Protocol fuzzing of a running proxy: thousands of clients send mutated protocol (before and
// after authentication: startup packets, simple and extended queries, COPY, transactions, bad
// type bytes and lengths, truncations) and then end their side of the connection (EOF), vanish
// or stop mid-message. Meanwhile a healthy client queries a sharded table. Checked:
//  - 0 crashes (the proxy is alive, its log has no sanitizer report);
//  - 0 hung connections: after a fuzz client's EOF the proxy closes its side within 3 s;
//  - the healthy client is never delayed more than 100 ms and sees no error;
//  - SHOW POOLS and SHOW CLIENTS are back to the baseline afterwards;
//  - SIGTERM ends the proxy within 2 s.
// PROXY_FUZZ_CASES sets the number of cases (make test: 600; the figure: 10000).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

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
using shardline::testing::must;
using shardline::testing::PgConnection;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using shardline::testing::ShardedTableSpec;
namespace raw = shardline::testing::raw;
using Clock = std::chrono::steady_clock;
using Rng = std::mt19937_64;

shardline::control::LocalCluster& cluster() { return shardline::testing::test_cluster({.shards = 2}); }

using raw::be32;
using raw::message;

const std::vector<std::string> kSql = {
    "SELECT 1",
    "SELECT * FROM fuzz_items WHERE tenant_id = 3",
    "SELECT count(*) FROM fuzz_items",
    "INSERT INTO fuzz_items VALUES (5, 'x')",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "SELECT pg_sleep(0.05)",
    "SELEC broken",
    "SET application_name = 'fuzz'",
    "COPY fuzz_items FROM STDIN",
    "COPY fuzz_plain FROM STDIN",
    "SELECT 1; SELECT 2",
    "/* shardline: tenant=7 */ SELECT 1",
    "",
};

std::string pick_sql(Rng& rng) { return kSql[rng() % kSql.size()]; }

/// One protocol message a client might send after login, valid or not.
std::string post_auth_message(Rng& rng) {
  switch (rng() % 12) {
    case 0: case 1: return raw::query(pick_sql(rng));
    case 2: return raw::parse(rng() % 2 ? "" : "s1", pick_sql(rng));
    case 3: return raw::bind("", rng() % 2 ? "" : "s1", {std::string("3")});
    case 4: return raw::execute("", std::int32_t(rng() % 3));
    case 5: return raw::sync();
    case 6: return raw::flush();
    case 7: return raw::describe(rng() % 2 ? 'S' : 'P', "");
    case 8: return message('d', "3\tfuzz\n");
    case 9: return message(rng() % 2 ? 'c' : 'f', rng() % 2 ? std::string("\0", 1) : "");
    case 10: return raw::close('S', "s1");
    default: {  // random type byte and length
      std::string m(1, char(rng() % 256));
      const std::uint32_t lens[] = {0, 3, 4, 5, 0x40000000u, std::uint32_t(rng())};
      m += be32(lens[rng() % 6]);
      m += std::string(rng() % 16, char(rng() % 256));
      return m;
    }
  }
}

/// Flips, truncates or splices bytes of `s`.
void mutate(std::string& s, Rng& rng) {
  if (s.empty()) return;
  switch (rng() % 4) {
    case 0: s[rng() % s.size()] = char(rng() % 256); break;
    case 1: s.resize(rng() % s.size()); break;
    case 2: s.insert(rng() % s.size(), std::string(1 + rng() % 8, char(rng() % 256))); break;
    default: {
      const std::size_t at = rng() % s.size();
      if (at + 4 <= s.size()) s.replace(at, 4, be32(std::uint32_t(rng())));
    }
  }
}

std::string startup_packet(Rng& rng) {
  std::string body = be32(rng() % 8 == 0 ? std::uint32_t(rng()) : 196608u);
  body += std::string("user") + '\0' + "app" + '\0' + "database" + '\0' + (rng() % 4 ? "app" : "shardline") + '\0' + '\0';
  std::string p = be32(std::uint32_t(body.size() + 4)) + body;
  if (rng() % 5 == 0) p = be32(8) + be32(80877103) + p;  // SSLRequest first
  return p;
}

int connect_raw(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void send_all(int fd, const std::string& bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 500) <= 0) return;  // the proxy stopped reading (it closed, or backpressure)
    const ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n <= 0) return;
    off += std::size_t(n);
  }
}

bool closed_within(int fd, std::chrono::milliseconds limit) { return shardline::testing::peer_closed_within(fd, limit); }

struct Figures {
  std::atomic<int> cases{0}, hung{0}, pre_auth{0}, post_auth{0}, vanished{0};
  std::mutex mu;
  std::vector<std::string> hung_samples;
};

/// One fuzz case; the socket is the client's (pre-auth: raw; post-auth: after libpq's login).
void run_case(std::uint16_t port, const std::string& conninfo, std::uint64_t seed, Figures& fig) {
  Rng rng(seed);
  std::string bytes;
  int fd = -1;
  std::unique_ptr<shardline::testing::RawClient> client;
  const bool post_auth = rng() % 4 != 0;
  if (post_auth) {
    try {
      client = std::make_unique<shardline::testing::RawClient>(conninfo, 5s);
    } catch (const std::exception&) {
      return;  // a refused login is not this case's subject
    }
    fd = client->socket_fd();
    const int n = 1 + int(rng() % 8);
    for (int i = 0; i < n; ++i) {
      std::string m = post_auth_message(rng);
      if (rng() % 6 == 0) mutate(m, rng);
      bytes += m;
    }
    ++fig.post_auth;
  } else {
    fd = connect_raw(port);
    if (fd < 0) return;
    bytes = startup_packet(rng);
    if (rng() % 2) mutate(bytes, rng);
    if (rng() % 3 == 0) bytes.resize(rng() % (bytes.size() + 1));
    ++fig.pre_auth;
  }
  if (std::getenv("PROXY_FUZZ_DUMP")) {
    std::string hex;
    for (unsigned char ch : bytes) hex += (ch >= 32 && ch < 127) ? std::string(1, char(ch)) : fmt::format("\\x{:02x}", ch);
    std::printf("case %llu (%s): %s\n", (unsigned long long)seed, post_auth ? "post-auth" : "pre-auth", hex.c_str());
  }
  send_all(fd, bytes);
  // Read a little of the reply, as a client that waits for one would.
  (void)closed_within(fd, std::chrono::milliseconds(rng() % 30));
  if (rng() % 4 == 0) {
    // Vanish: no EOF first, just a reset (SO_LINGER 0).
    linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ++fig.vanished;
  } else {
    ::shutdown(fd, SHUT_WR);
    if (!closed_within(fd, 3s)) {
      ++fig.hung;
      std::lock_guard lock(fig.mu);
      if (fig.hung_samples.size() < 20) fig.hung_samples.push_back(fmt::format("seed {} ({})", seed, post_auth ? "post" : "pre"));
    }
  }
  if (!post_auth) ::close(fd);
  else client->vanish();
  ++fig.cases;
}

TEST(ProxyFuzz, MalformedClientsHurtNobody) {
  for (int s = 0; s < 2; ++s) {
    PgConnection c(cluster().conninfo(s));
    ASSERT_TRUE(c.ok()) << c.error();
    must(c, "DROP TABLE IF EXISTS fuzz_items, fuzz_plain");
    must(c, "CREATE TABLE fuzz_items (tenant_id int, v text)");
    if (s == 0) must(c, "CREATE TABLE fuzz_plain (v int)");
  }
  ProxyConfig cfg(cluster(), free_port());
  cfg.pool_size(20).query_wait_timeout_ms(5000).client_login_timeout_ms(2000).sharded_table(
      ShardedTableSpec{"fuzz_items", "", "int"});
  if (std::getenv("PROXY_FUZZ_DUMP")) cfg.log_level(shardline::config::LogLevel::Debug);
  ProxyProcess proxy(cfg.yaml());
  const std::string conninfo = proxy.conninfo() + " sslmode=disable gssencmode=disable connect_timeout=5";
  const std::string admin = proxy.conninfo("app", "secret", "shardline") + " sslmode=disable";
  const auto baseline = shardline::testing::wait_pools_idle(admin, 1, 5s);

  const int cases = std::getenv("PROXY_FUZZ_CASES") ? std::atoi(std::getenv("PROXY_FUZZ_CASES")) : 600;
  const int first = std::getenv("PROXY_FUZZ_FIRST") ? std::atoi(std::getenv("PROXY_FUZZ_FIRST")) : 0;
  const int kThreads = std::getenv("PROXY_FUZZ_THREADS") ? std::atoi(std::getenv("PROXY_FUZZ_THREADS")) : 4;
  Figures fig;
  const std::string healthy_sql = "SELECT count(*) FROM fuzz_items WHERE tenant_id = 1";
  const double alone_ms = shardline::testing::worst_delay_alone_ms(conninfo, healthy_sql, 2s);
  const auto started = Clock::now();
  {
    HealthyClient healthy(conninfo, healthy_sql);
    std::atomic<int> next{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&] {
        for (int i = next++; i < cases; i = next++) run_case(proxy.port(), proxy.conninfo(), 7777u + std::uint64_t(first + i), fig);
      });
    for (auto& t : threads) t.join();
    healthy.stop();
    std::printf("fuzz: %d cases (%d pre-auth, %d post-auth, %d vanished) in %.0f s; %d hung; healthy client: %d "
                "statements, worst %.1f ms, %d over 100 ms (alone before: %.1f ms)\n",
                fig.cases.load(), fig.pre_auth.load(), fig.post_auth.load(), fig.vanished.load(),
                std::chrono::duration<double>(Clock::now() - started).count(), fig.hung.load(), healthy.statements(),
                healthy.worst_ms(), healthy.slow(), alone_ms);
    EXPECT_TRUE(healthy.errors().empty()) << healthy.errors().front();
    EXPECT_LE(healthy.worst_ms(), shardline::testing::allowed_delay_ms(alone_ms));
    EXPECT_GT(healthy.statements(), 10);
  }
  EXPECT_GE(fig.cases.load(), cases * 9 / 10);
  std::string hung;
  for (const auto& h : fig.hung_samples) hung += h + "; ";
  if (std::getenv("PROXY_FUZZ_DUMP") && fig.hung.load() > 0) std::printf("proxy log:\n%s\n", proxy.log().c_str());
  EXPECT_EQ(fig.hung.load(), 0) << "PROXY_FUZZ_FIRST=<seed - 7777> PROXY_FUZZ_CASES=1 PROXY_FUZZ_DUMP=1 replays one: " << hung;
  EXPECT_EQ(proxy.wait_exit(0ms), -1) << "the proxy died:\n" << proxy.log();
  const auto after = shardline::testing::wait_pools_idle(admin, 1, 10s);
  EXPECT_EQ(after.text(), (shardline::testing::PoolUsage{0, 0, 0, 1}).text()) << "baseline was " << baseline.text();

  const auto term = Clock::now();
  proxy.signal(SIGTERM);
  const int code = proxy.wait_exit(5s);
  const double secs = std::chrono::duration<double>(Clock::now() - term).count();
  std::printf("fuzz: SIGTERM -> exit %d in %.2f s\n", code, secs);
  EXPECT_EQ(code, 0);
  EXPECT_LT(secs, 2.0);
  EXPECT_EQ(proxy.log().find("Sanitizer"), std::string::npos) << proxy.log();
}

}  // namespace
