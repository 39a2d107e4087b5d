// PgBouncer's timeouts (README "Timeouts"), each seen firing with its documented SQLSTATE by a
// libpq client against real PostgreSQL: query_timeout (57014, the statement cancelled on its
// server, which is then reused; FATAL 57014 when a fake server ignores the cancel), idle_transaction_timeout (FATAL 25P03, the server closed),
// client_idle_timeout (FATAL 57P05), server_connect_timeout (08006 against a server that
// accepts and never answers) and server_login_retry (08006 at once while a shard refuses logins,
// working again after it recovers and the retry interval passed).

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "router/sharding/shard_key.hpp"
#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"

namespace {

using namespace std::chrono_literals;
using shardline::testing::free_port;
using shardline::testing::must;
using shardline::testing::PgConnection;
using shardline::testing::PgResult;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using shardline::testing::ShardedTableSpec;
using Clock = std::chrono::steady_clock;

constexpr int kShards = 2;
constexpr int kLogicalShards = 1024;  // ProxyConfig's
constexpr const char* kTable = "tmo_items";

shardline::control::LocalCluster& cluster() { return shardline::testing::test_cluster({.shards = kShards}); }

/// A tenant of kTable whose rows live on `shard` (the directory splits the logical shards evenly).
std::int64_t tenant_on(int shard) {
  for (std::int64_t t = 1;; ++t)
    if (shardline::router::logical_shard_of_int(t, kLogicalShards) * kShards / kLogicalShards == shard) return t;
}

/// The proxy's config: kTable sharded by a bigint tenant_id (declared, so nothing is learned
/// from the shards at startup), pool fields as given.
ProxyConfig config(const std::string& pool_fields) {
  ProxyConfig c(cluster(), free_port());
  c.sharded_table(ShardedTableSpec{kTable, "", "bigint"}).pool_options(pool_fields);
  return c;
}

std::string conninfo(const ProxyProcess& p) { return p.conninfo() + " sslmode=disable gssencmode=disable"; }

std::string on_shard_query(int shard) { return fmt::format("SELECT count(*) FROM {} WHERE tenant_id = {}", kTable, tenant_on(shard)); }

/// Creates kTable on every shard (directly, not through the proxy).
void create_table() {
  for (int s = 0; s < kShards; ++s) {
    PgConnection c(cluster().conninfo(s));
    ASSERT_TRUE(c.ok()) << c.error();
    must(c, fmt::format("CREATE TABLE IF NOT EXISTS {} (tenant_id bigint, v int)", kTable));
  }
}

/// Backends on `shard` running pg_sleep, seen by the superuser.
int sleeping_backends(int shard) {
  PgConnection su(cluster().superuser_conninfo(shard));
  return std::stoi(su.value("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'"));
}

bool backend_alive(int shard, int pid) {
  PgConnection su(cluster().superuser_conninfo(shard));
  return su.value(fmt::format("SELECT count(*) FROM pg_stat_activity WHERE pid = {}", pid)) == "1";
}

bool has(const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

TEST(Timeouts, QueryTimeoutCancelsTheStatementOnItsServerWhichIsReused) {
  // One server: the cancelled statement's server must be the one every later statement gets.
  ProxyProcess proxy(config("query_timeout_ms: 500").pool_size(1).yaml());
  PgConnection c(conninfo(proxy));
  ASSERT_TRUE(c.ok()) << c.error();
  const int server_pid = c.backend_pid();

  auto t0 = Clock::now();
  PgResult r = c.exec("SELECT pg_sleep(30)");
  const double took = seconds_since(t0);
  EXPECT_EQ(r.sqlstate(), "57014") << r.describe();
  EXPECT_NE(r.message().find("canceling statement due to query_timeout"), std::string::npos) << r.message();
  EXPECT_GE(took, 0.45);
  EXPECT_LT(took, 5.0) << "the statement was not cancelled";
  fmt::print("query_timeout 500 ms: error after {:.3f} s: {} ({})\n", took, r.message(), r.sqlstate());
  EXPECT_EQ(sleeping_backends(0), 0) << "the statement still runs on the server";
  // The server answered the cancel: it went back to the pool and serves the next statement.
  EXPECT_EQ(c.value("SELECT 41 + 1"), "42");
  EXPECT_EQ(c.backend_pid(), server_pid);

  // Extended protocol, and inside a transaction: the transaction fails as after any error.
  must(c, "BEGIN");
  t0 = Clock::now();
  r = c.exec_params("SELECT pg_sleep($1::float8)", {"30"});
  EXPECT_EQ(r.sqlstate(), "57014") << r.describe();
  EXPECT_LT(seconds_since(t0), 5.0);
  EXPECT_EQ(c.exec("SELECT 1").sqlstate(), "25P02");
  must(c, "ROLLBACK");
  EXPECT_EQ(c.value("SELECT 'after'"), "after");
  EXPECT_EQ(c.backend_pid(), server_pid);

  // Statements shorter than the timeout, many in a row, are untouched.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(c.value("SELECT pg_sleep(0.2)::text || 'ok'"), "ok");
}

TEST(Timeouts, QueryTimeoutRacingTheStatementsEndNeverCancelsTheNextStatement) {
  // Statements about as long as the timeout: some end before their cancel arrives. That late
  // cancel must not hit the next statement (which would fail with "due to user request").
  ProxyProcess proxy(config("query_timeout_ms: 60").pool_size(1).yaml());
  PgConnection c(conninfo(proxy));
  ASSERT_TRUE(c.ok()) << c.error();
  int ok = 0, timed_out = 0;
  for (int i = 0; i < 60; ++i) {
    PgResult r = c.exec(i % 2 ? "SELECT pg_sleep(0.055)" : "SELECT pg_sleep(0.07)");
    if (r.ok()) {
      ++ok;
    } else {
      ASSERT_EQ(r.sqlstate(), "57014") << r.describe();
      ASSERT_NE(r.message().find("query_timeout"), std::string::npos) << "statement " << i << ": " << r.message();
      ++timed_out;
    }
    // A quick statement right behind it, on the same server (pool size 1), is never cancelled.
    ASSERT_EQ(c.value("SELECT 'next'"), "next") << "after statement " << i;
  }
  fmt::print("query_timeout 60 ms vs statements of 55-70 ms: {} finished, {} cancelled\n", ok, timed_out);
  EXPECT_GT(timed_out, 0);
}

TEST(Timeouts, IdleTransactionTimeoutClosesTheClientAndItsServer) {
  ProxyProcess proxy(config("idle_transaction_timeout_ms: 500").yaml());
  PgConnection c(conninfo(proxy));
  ASSERT_TRUE(c.ok()) << c.error();
  must(c, "BEGIN");
  const int server_pid = c.backend_pid();
  // An idle client outside a transaction is not affected.
  PgConnection idle(conninfo(proxy));
  ASSERT_TRUE(idle.ok()) << idle.error();
  EXPECT_EQ(idle.value("SELECT 1"), "1");
  std::this_thread::sleep_for(1500ms);
  PgResult r = c.exec("SELECT 1");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(has(c.error_sqlstates(), "25P03") || has(c.async_sqlstates(), "25P03"))
      << PQerrorMessage(c.get());
  const std::string text = PQerrorMessage(c.get());
  EXPECT_NE(text.find("idle transaction timeout"), std::string::npos) << text;
  EXPECT_EQ(PQstatus(c.get()), CONNECTION_BAD);
  fmt::print("idle_transaction_timeout 500 ms: {}\n", text);
  // The transaction's server is closed, not handed to another client with a transaction open.
  const auto until = Clock::now() + 5s;
  while (backend_alive(0, server_pid) && Clock::now() < until) std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(backend_alive(0, server_pid));
  EXPECT_EQ(idle.value("SELECT 2"), "2");

  // A transaction the proxy holds (BEGIN not yet sent to any server) times out too.
  PgConnection held(conninfo(proxy));
  ASSERT_TRUE(held.ok()) << held.error();
  must(held, "BEGIN");
  std::this_thread::sleep_for(1500ms);
  EXPECT_FALSE(held.exec("SELECT 1").ok());
  EXPECT_TRUE(has(held.error_sqlstates(), "25P03") || has(held.async_sqlstates(), "25P03"))
      << PQerrorMessage(held.get());
}

TEST(Timeouts, ClientIdleTimeoutClosesIdleClientsOnly) {
  ProxyProcess proxy(config("client_idle_timeout_ms: 600").yaml());
  PgConnection idle(conninfo(proxy));
  PgConnection busy(conninfo(proxy));
  ASSERT_TRUE(idle.ok() && busy.ok()) << idle.error() << busy.error();
  EXPECT_EQ(idle.value("SELECT 1"), "1");
  const auto t0 = Clock::now();
  while (seconds_since(t0) < 1.8) {  // a statement every 150 ms: never idle for 600 ms
    EXPECT_EQ(busy.value("SELECT 1"), "1");
    std::this_thread::sleep_for(150ms);
  }
  // The idle one got the FATAL while idle; libpq reads it with the next statement.
  PgResult r = idle.exec("SELECT 1");
  EXPECT_FALSE(r.ok());
  const std::string text = PQerrorMessage(idle.get());
  EXPECT_TRUE(has(idle.error_sqlstates(), "57P05") || has(idle.async_sqlstates(), "57P05")) << text;
  EXPECT_NE(text.find("client_idle_timeout"), std::string::npos) << text;
  fmt::print("client_idle_timeout 600 ms: {}\n", text);
  EXPECT_EQ(busy.value("SELECT 'still here'"), "still here");
}

/// A TCP listener on 127.0.0.1 standing in for a shard server that misbehaves. Silent: accepts
/// connections and never says anything. Deaf: completes the login (trust; BackendKeyData
/// kPid/kSecret) and then never answers a query; CancelRequests are recorded and ignored.
class FakeServer {
 public:
  enum class Mode { Silent, Deaf };
  static constexpr std::uint32_t kPid = 4242, kSecret = 777777;

  explicit FakeServer(Mode mode) : mode_(mode), fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0)
      throw std::runtime_error("FakeServer: cannot listen");
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) break;
        ++accepted_;
        if (mode_ == Mode::Deaf) serve(c);
        open_.push_back(c);
      }
    });
  }
  ~FakeServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
    for (int c : open_) ::close(c);
  }
  std::uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }
  /// CancelRequests that named this server's kPid and kSecret.
  int cancels_for_its_key() const { return cancels_; }

 private:
  static bool read_exact(int fd, char* p, std::size_t n) {
    while (n > 0) {
      const ssize_t r = ::read(fd, p, n);
      if (r <= 0) return false;
      p += r;
      n -= std::size_t(r);
    }
    return true;
  }
  static std::uint32_t be(const char* p) {
    return std::uint32_t(std::uint8_t(p[0])) << 24 | std::uint32_t(std::uint8_t(p[1])) << 16 |
           std::uint32_t(std::uint8_t(p[2])) << 8 | std::uint32_t(std::uint8_t(p[3]));
  }
  static std::string be32(std::uint32_t v) {
    return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  }
  /// Reads the startup packet: answers a StartupMessage with a trust login, records a
  /// CancelRequest (and closes it, as PostgreSQL does).
  void serve(int c) {
    char head[8];
    if (!read_exact(c, head, 8)) return;
    std::string body(be(head) - 8, '\0');
    if (!read_exact(c, body.data(), body.size())) return;
    if (be(head + 4) == 80877102) {  // CancelRequest: pid, secret
      if (body.size() == 8 && be(body.data()) == kPid && be(body.data() + 4) == kSecret) ++cancels_;
      ::shutdown(c, SHUT_RDWR);
      return;
    }
    const std::string reply = std::string("R") + be32(8) + be32(0) + "K" + be32(12) + be32(kPid) + be32(kSecret) +
                              "Z" + be32(5) + "I";
    (void)!::write(c, reply.data(), reply.size());
  }

  Mode mode_;
  int fd_;
  std::uint16_t port_ = 0;
  std::atomic<int> accepted_{0};
  std::atomic<int> cancels_{0};
  std::vector<int> open_;
  std::thread thread_;
};

TEST(Timeouts, QueryTimeoutClosesAServerThatDoesNotAnswerTheCancel) {
  FakeServer deaf(FakeServer::Mode::Deaf);
  ProxyProcess proxy(config("query_timeout_ms: 400").primary_port(1, deaf.port()).yaml());
  PgConnection c(conninfo(proxy));
  ASSERT_TRUE(c.ok()) << c.error();
  const auto t0 = Clock::now();
  PgResult r = c.exec(on_shard_query(1));
  const double took = seconds_since(t0);
  EXPECT_FALSE(r.ok());
  const std::string text = PQerrorMessage(c.get());
  EXPECT_TRUE(has(c.error_sqlstates(), "57014")) << text;
  EXPECT_NE(text.find("terminating connection due to query_timeout"), std::string::npos) << text;
  EXPECT_EQ(PQstatus(c.get()), CONNECTION_BAD);
  EXPECT_GE(took, 2.35);  // the cancel at 400 ms, the close 2 s (the least grace) later
  EXPECT_LT(took, 8.0);
  // The cancel went to that server, with the key it gave at login.
  EXPECT_EQ(deaf.cancels_for_its_key(), 1);
  fmt::print("query_timeout 400 ms, server ignores the cancel: closed after {:.3f} s: {}\n", took, text);
  // Other clients and shards are unaffected.
  PgConnection other(conninfo(proxy));
  ASSERT_TRUE(other.ok()) << other.error();
  EXPECT_EQ(other.value("SELECT 'fine'"), "fine");
}

TEST(Timeouts, ServerConnectTimeoutBoundsConnectAndLoginToAShard) {
  FakeServer silent(FakeServer::Mode::Silent);
  ProxyProcess proxy(config("server_connect_timeout_ms: 700, query_wait_timeout_ms: 20000, server_login_retry_ms: 0")
                         .primary_port(1, silent.port())
                         .yaml());
  PgConnection c(conninfo(proxy));
  ASSERT_TRUE(c.ok()) << c.error();
  const auto t0 = Clock::now();
  PgResult r = c.exec(on_shard_query(1));
  const double took = seconds_since(t0);
  EXPECT_EQ(r.sqlstate(), "08006") << r.describe();
  EXPECT_NE(r.message().find("server_connect_timeout (700 ms)"), std::string::npos) << r.message();
  EXPECT_NE(r.message().find("logging in"), std::string::npos) << r.message();
  EXPECT_GE(took, 0.65);
  EXPECT_LT(took, 5.0);
  EXPECT_GE(silent.accepted(), 1);
  fmt::print("server_connect_timeout 700 ms: error after {:.3f} s: {} ({})\n", took, r.message(), r.sqlstate());
  // The client's session goes on: the other shard answers.
  EXPECT_EQ(c.value("SELECT 'home'"), "home");
}

TEST(Timeouts, ServerLoginRetryFailsFastWhileAShardRefusesLoginsThenRecovers) {
  create_table();
  constexpr int kRetryMs = 2000;
  ProxyProcess proxy(config(fmt::format("server_login_retry_ms: {}", kRetryMs)).yaml());
  PgConnection su(cluster().superuser_conninfo(1));
  ASSERT_TRUE(su.ok()) << su.error();
  const std::string role = cluster().options().user;
  must(su, fmt::format("ALTER ROLE {} NOLOGIN", role));
  struct Restore {
    PgConnection& su;
    std::string role;
    ~Restore() { (void)su.exec(fmt::format("ALTER ROLE {} LOGIN", role)); }
  } restore{su, role};

  PgConnection c(conninfo(proxy));
  ASSERT_TRUE(c.ok()) << c.error();
  // The first attempt reaches the server and is refused there.
  PgResult first = c.exec(on_shard_query(1));
  EXPECT_EQ(first.sqlstate(), "08006") << first.describe();
  EXPECT_NE(first.message().find("not permitted to log in"), std::string::npos) << first.message();
  // Within the retry interval no login is tried: clients are told so at once.
  const auto t0 = Clock::now();
  PgResult fast = c.exec(on_shard_query(1));
  const double took = seconds_since(t0);
  EXPECT_EQ(fast.sqlstate(), "08006") << fast.describe();
  EXPECT_NE(fast.message().find("server login has been failing, try again later (server_login_retry"), std::string::npos)
      << fast.message();
  EXPECT_NE(fast.message().find("not permitted to log in"), std::string::npos) << fast.message();
  EXPECT_LT(took, 0.5);
  fmt::print("server_login_retry {} ms: second attempt answered in {:.3f} s: {} ({})\n", kRetryMs, took,
             fast.message(), fast.sqlstate());
  // The shard recovers; still refused until the interval passes, then it works.
  must(su, fmt::format("ALTER ROLE {} LOGIN", role));
  EXPECT_EQ(c.exec(on_shard_query(1)).sqlstate(), "08006");
  std::this_thread::sleep_for(std::chrono::milliseconds(kRetryMs + 200));
  EXPECT_EQ(c.value(on_shard_query(1)), "0");
  // Shard 0 was never affected.
  EXPECT_EQ(c.value(on_shard_query(0)), "0");
}

}  // namespace
