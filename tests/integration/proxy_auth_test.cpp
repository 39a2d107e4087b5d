// The proxy's front door against real PostgreSQL: password methods (SCRAM, md5, trust) and their
// failures with PostgreSQL's SQLSTATEs, the admin console (who may use it, what it shows, PAUSE
// and RESUME), TLS on and off as libpq's sslmode sees it, and malformed protocol input that must
// close only the offending connection.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using shardline::config::AuthMethod;
using shardline::control::LocalCluster;
using shardline::testing::free_port;
using shardline::testing::PgConnection;
using shardline::testing::PgResult;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using shardline::testing::ProxyUser;

LocalCluster& cluster() {
  shardline::testing::ClusterSpec spec;
  spec.shards = 1;
  spec.replicas = 0;
  return shardline::testing::test_cluster(spec);
}

/// Plain TCP unless a test asks for TLS, so libpq's sslmode=prefer retry cannot blur errors.
std::string conninfo(const ProxyProcess& proxy, const std::string& user, const std::string& password,
                     const std::string& db, const std::string& extra = "sslmode=disable") {
  return proxy.conninfo(user, password, db) + " gssencmode=disable connect_timeout=5 " + extra;
}

/// Users of every auth method; `app` (SCRAM) is the only admin.
ProxyConfig auth_config(std::uint16_t port) {
  ProxyConfig cfg(cluster(), port);
  cfg.add_user({"md5user", "md5pass", "app", AuthMethod::Md5});
  cfg.add_user({"trustuser", "", "app", AuthMethod::Trust});
  cfg.add_user({"anydb", "anypass", "", AuthMethod::ScramSha256});
  return cfg;
}

/// One proxy for the authentication and admin tests of this file.
ProxyProcess& auth_proxy() {
  static ProxyProcess proxy(auth_config(free_port()).yaml());
  return proxy;
}

std::vector<std::string> column_names(const PgResult& r) {
  std::vector<std::string> out;
  for (int c = 0; c < r.columns(); ++c) out.push_back(r.column_name(c));
  return out;
}

int column_index(const PgResult& r, const std::string& name) {
  for (int c = 0; c < r.columns(); ++c)
    if (r.column_name(c) == name) return c;
  ADD_FAILURE() << "no column " << name;
  return -1;
}

// ---- authentication ----------------------------------------------------------------------------

TEST(ProxyAuth, ScramRightPasswordReachesHomePrimary) {
  ProxyProcess& proxy = auth_proxy();
  PgConnection c(conninfo(proxy, "app", "secret", "app"));
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ(c.value("SELECT current_database()"), "app");
  EXPECT_EQ(c.server_port(), cluster().primary_port(0));
  EXPECT_EQ(c.value("SELECT 6 * 7"), "42");
  // A real server's parameters reach the client.
  const char* version = PQparameterStatus(c.get(), "server_version");
  ASSERT_NE(version, nullptr);
  EXPECT_EQ(std::string(version).substr(0, 2), "15");
  EXPECT_NE(PQbackendPID(c.get()), 0);
}

TEST(ProxyAuth, ScramWrongPasswordIs28P01) {
  PgConnection c(conninfo(auth_proxy(), "app", "not-the-password", "app"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.connect_sqlstate(), "28P01") << c.error();
  EXPECT_NE(c.error().find("password authentication failed for user \"app\""), std::string::npos) << c.error();
}

TEST(ProxyAuth, Md5UserRightAndWrongPassword) {
  PgConnection good(conninfo(auth_proxy(), "md5user", "md5pass", "app"));
  ASSERT_TRUE(good.ok()) << good.error();
  EXPECT_EQ(good.value("SELECT 'md5 ok'"), "md5 ok");
  EXPECT_EQ(good.server_port(), cluster().primary_port(0));

  PgConnection bad(conninfo(auth_proxy(), "md5user", "wrong", "app"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.connect_sqlstate(), "28P01") << bad.error();
}

TEST(ProxyAuth, TrustUserNeedsNoPassword) {
  // libpq sends no password at all; any password given is simply not asked for.
  PgConnection c(auth_proxy().conninfo("trustuser", "", "app") + " gssencmode=disable sslmode=disable");
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_FALSE(PQconnectionUsedPassword(c.get()));
  EXPECT_EQ(c.value("SELECT 1 + 1"), "2");
}

TEST(ProxyAuth, UnknownUserIs28P01) {
  PgConnection c(conninfo(auth_proxy(), "nosuchuser", "secret", "app"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.connect_sqlstate(), "28P01") << c.error();
}

TEST(ProxyAuth, WrongDatabaseIs3D000) {
  PgConnection c(conninfo(auth_proxy(), "app", "secret", "nosuchdb"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.connect_sqlstate(), "3D000") << c.error();
  EXPECT_NE(c.error().find("nosuchdb"), std::string::npos) << c.error();
}

// ---- admin console -----------------------------------------------------------------------------

TEST(ProxyAdmin, NonAdminUserIsRefusedWith42501) {
  PgConnection c(conninfo(auth_proxy(), "md5user", "md5pass", "shardline"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.connect_sqlstate(), "42501") << c.error();
  // The password was right: a wrong one must still be 28P01, not a hint about admin rights.
  PgConnection wrong(conninfo(auth_proxy(), "md5user", "nope", "shardline"));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.connect_sqlstate(), "28P01") << wrong.error();
}

TEST(ProxyAdmin, ShowCommandsReturnRowsWithExpectedColumns) {
  ProxyProcess& proxy = auth_proxy();
  // A client holding a transaction open, so every SHOW has a live row to report.
  PgConnection client(conninfo(proxy, "app", "secret", "app", "sslmode=disable application_name=busy_client"));
  ASSERT_TRUE(client.ok()) << client.error();
  ASSERT_TRUE(client.exec("BEGIN").ok());
  const int backend_pid = client.backend_pid();

  PgConnection admin(conninfo(proxy, "app", "secret", "shardline"));
  ASSERT_TRUE(admin.ok()) << admin.error();

  const PgResult pools = admin.exec("SHOW POOLS");
  ASSERT_EQ(pools.status(), PGRES_TUPLES_OK) << pools.describe();
  const std::vector<std::string> pool_cols = column_names(pools);
  for (const char* col : {"shard", "role", "cl_active", "cl_waiting", "sv_active", "sv_idle", "pool_mode", "pool_size"})
    EXPECT_NE(std::find(pool_cols.begin(), pool_cols.end(), col), pool_cols.end()) << "SHOW POOLS lacks " << col;
  bool found_pool = false;
  for (int r = 0; r < pools.rows(); ++r) {
    if (pools.value(r, column_index(pools, "shard")) != "s0" || pools.value(r, column_index(pools, "role")) != "primary")
      continue;
    found_pool = true;
    EXPECT_GE(std::stoi(pools.value(r, column_index(pools, "sv_active"))), 1);
    EXPECT_GE(std::stoi(pools.value(r, column_index(pools, "cl_active"))), 1);
    EXPECT_EQ(pools.value(r, column_index(pools, "pool_mode")), "transaction");
    EXPECT_EQ(pools.value(r, column_index(pools, "pool_size")), "20");
  }
  EXPECT_TRUE(found_pool) << "no pool row for s0 primary";

  const PgResult clients = admin.exec("SHOW CLIENTS");
  ASSERT_EQ(clients.status(), PGRES_TUPLES_OK) << clients.describe();
  const std::vector<std::string> client_cols = column_names(clients);
  for (const char* col : {"user", "database", "state", "application_name"})
    EXPECT_NE(std::find(client_cols.begin(), client_cols.end(), col), client_cols.end()) << "SHOW CLIENTS lacks " << col;
  bool found_client = false;
  for (int r = 0; r < clients.rows(); ++r)
    if (clients.value(r, column_index(clients, "application_name")) == "busy_client") {
      found_client = true;
      EXPECT_EQ(clients.value(r, column_index(clients, "user")), "app");
      EXPECT_EQ(clients.value(r, column_index(clients, "database")), "app");
    }
  EXPECT_TRUE(found_client) << "SHOW CLIENTS does not list the client with application_name busy_client";

  const PgResult servers = admin.exec("SHOW SERVERS");
  ASSERT_EQ(servers.status(), PGRES_TUPLES_OK) << servers.describe();
  bool found_server = false;
  for (int r = 0; r < servers.rows(); ++r)
    if (servers.value(r, column_index(servers, "backend_pid")) == std::to_string(backend_pid)) {
      found_server = true;
      EXPECT_EQ(servers.value(r, column_index(servers, "port")), std::to_string(cluster().primary_port(0)));
      EXPECT_EQ(servers.value(r, column_index(servers, "shard")), "s0");
    }
  EXPECT_TRUE(found_server) << "SHOW SERVERS does not list backend pid " << backend_pid;

  ASSERT_TRUE(client.exec("COMMIT").ok());
  const PgResult stats = admin.exec("SHOW STATS");
  ASSERT_EQ(stats.status(), PGRES_TUPLES_OK) << stats.describe();
  ASSERT_GE(stats.rows(), 1);
  const int shard_col = column_index(stats, "shard");
  const int xacts_col = column_index(stats, "total_xact_count");
  const int queries_col = column_index(stats, "total_query_count");
  bool found_stats = false;
  for (int r = 0; r < stats.rows(); ++r)
    if (stats.value(r, shard_col) == "s0") {
      found_stats = true;
      EXPECT_GE(std::stoll(stats.value(r, xacts_col)), 1);
      EXPECT_GE(std::stoll(stats.value(r, queries_col)), 2);
    }
  EXPECT_TRUE(found_stats);

  // The admin console is not a database: ordinary SQL is refused, the session stays usable.
  const PgResult bogus = admin.exec("SELECT 1");
  EXPECT_EQ(bogus.status(), PGRES_FATAL_ERROR);
  EXPECT_EQ(admin.exec("SHOW POOLS").status(), PGRES_TUPLES_OK);
}

TEST(ProxyAdmin, PauseHoldsNewTransactionsUntilResume) {
  ProxyProcess& proxy = auth_proxy();
  PgConnection client(conninfo(proxy, "app", "secret", "app"));
  ASSERT_TRUE(client.ok()) << client.error();
  PgConnection admin(conninfo(proxy, "app", "secret", "shardline"));
  ASSERT_TRUE(admin.ok()) << admin.error();

  const PgResult paused = admin.exec("PAUSE");
  ASSERT_EQ(paused.status(), PGRES_COMMAND_OK) << paused.describe();
  EXPECT_STREQ(PQcmdStatus(paused.get()), "PAUSE");

  auto query = std::async(std::launch::async, [&] { return client.exec("SELECT 'after resume'"); });
  EXPECT_EQ(query.wait_for(600ms), std::future_status::timeout) << "a query ran while the proxy was paused";

  const PgResult resumed = admin.exec("RESUME");
  ASSERT_EQ(resumed.status(), PGRES_COMMAND_OK) << resumed.describe();
  ASSERT_EQ(query.wait_for(5s), std::future_status::ready) << "the held query did not run after RESUME";
  const PgResult r = query.get();
  ASSERT_EQ(r.status(), PGRES_TUPLES_OK) << r.describe();
  EXPECT_EQ(r.value(0, 0), "after resume");
}

// ---- TLS ---------------------------------------------------------------------------------------

/// A throwaway self-signed certificate for CN=localhost.
struct SelfSignedCert {
  SelfSignedCert() {
    std::string tmpl = "/tmp/shardline-it-tls-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir = tmpl;
    cert = dir / "server.crt";
    key = dir / "server.key";
    const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -keyout '" +
                            key.string() + "' -out '" + cert.string() + "' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0 || !fs::exists(cert) || !fs::exists(key))
      throw std::runtime_error("openssl could not create a self-signed certificate in " + dir.string());
  }
  ~SelfSignedCert() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  fs::path dir, cert, key;
};

TEST(ProxyTls, RequireWorksWhenConfigured) {
  SelfSignedCert cert;
  ProxyConfig cfg(cluster(), free_port());
  cfg.tls(cert.cert, cert.key);
  ProxyProcess proxy(cfg.yaml());

  PgConnection tls(conninfo(proxy, "app", "secret", "app", "sslmode=require"));
  ASSERT_TRUE(tls.ok()) << tls.error();
  EXPECT_EQ(PQsslInUse(tls.get()), 1);
  EXPECT_EQ(tls.value("SELECT 'over tls'"), "over tls");
  EXPECT_EQ(tls.server_port(), cluster().primary_port(0));

  // prefer takes TLS when offered; disable still gets plain TCP.
  PgConnection prefer(conninfo(proxy, "app", "secret", "app", "sslmode=prefer"));
  ASSERT_TRUE(prefer.ok()) << prefer.error();
  EXPECT_EQ(PQsslInUse(prefer.get()), 1);
  PgConnection plain(conninfo(proxy, "app", "secret", "app", "sslmode=disable"));
  ASSERT_TRUE(plain.ok()) << plain.error();
  EXPECT_EQ(PQsslInUse(plain.get()), 0);
  EXPECT_EQ(plain.value("SELECT 'plain'"), "plain");

  // Authentication still applies inside TLS.
  PgConnection wrong(conninfo(proxy, "app", "bad", "app", "sslmode=require"));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.connect_sqlstate(), "28P01") << wrong.error();
}

TEST(ProxyTls, WithoutTlsRequireFailsAndPreferFallsBack) {
  ProxyProcess& proxy = auth_proxy();  // no tls section
  PgConnection require(conninfo(proxy, "app", "secret", "app", "sslmode=require"));
  ASSERT_FALSE(require.ok());
  EXPECT_NE(require.error().find("does not support SSL"), std::string::npos) << require.error();

  PgConnection prefer(conninfo(proxy, "app", "secret", "app", "sslmode=prefer"));
  ASSERT_TRUE(prefer.ok()) << prefer.error();
  EXPECT_EQ(PQsslInUse(prefer.get()), 0);
  EXPECT_EQ(prefer.value("SELECT 'fallback'"), "fallback");
}

// ---- malformed input ---------------------------------------------------------------------------

/// A raw TCP client for input libpq would never send.
class RawClient {
 public:
  explicit RawClient(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
      throw std::runtime_error("RawClient: cannot connect to port " + std::to_string(port));
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  void send(const std::string& bytes) {
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
  }

  /// Reads until the peer closes (true) or `timeout` passes (false); `received` collects it all.
  bool read_until_closed(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return true;  // EOF or reset: closed either way
      received.append(buf, static_cast<std::size_t>(n));
    }
  }

  /// Reads whole messages until one with `tag` arrives; false on close or timeout.
  bool read_until_message(char tag, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      std::size_t at = 0;
      while (at + 5 <= received.size()) {
        const std::uint32_t len = ntohl(*reinterpret_cast<const std::uint32_t*>(received.data() + at + 1));
        if (at + 1 + len > received.size()) break;
        if (received[at] == tag) return true;
        at += 1 + len;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return false;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return false;
      received.append(buf, static_cast<std::size_t>(n));
    }
  }

  std::string received;

 private:
  int fd_ = -1;
};

std::string be32(std::uint32_t v) {
  const std::uint32_t n = htonl(v);
  return std::string(reinterpret_cast<const char*>(&n), 4);
}

std::string startup_packet(const std::string& user, const std::string& db) {
  std::string body = be32(3u << 16) + "user" + '\0' + user + '\0' + "database" + '\0' + db + '\0' + '\0';
  return be32(static_cast<std::uint32_t>(body.size() + 4)) + body;
}

/// The SQLSTATE of the first ErrorResponse in `bytes`, "" if there is none.
std::string first_error_sqlstate(const std::string& bytes) {
  std::size_t at = 0;
  while (at + 5 <= bytes.size()) {
    const std::uint32_t len = ntohl(*reinterpret_cast<const std::uint32_t*>(bytes.data() + at + 1));
    if (len < 4 || at + 1 + len > bytes.size()) break;
    if (bytes[at] == 'E') {
      std::size_t f = at + 5;
      while (f < at + 1 + len && bytes[f] != '\0') {
        const char field = bytes[f];
        const std::size_t end = bytes.find('\0', f + 1);
        if (end == std::string::npos) break;
        if (field == 'C') return bytes.substr(f + 1, end - f - 1);
        f = end + 1;
      }
    }
    at += 1 + len;
  }
  return "";
}

TEST(ProxyMalformed, BadStartupLengthClosesOnlyThatConnection) {
  ProxyProcess& proxy = auth_proxy();
  PgConnection bystander(conninfo(proxy, "app", "secret", "app"));
  ASSERT_TRUE(bystander.ok()) << bystander.error();
  ASSERT_TRUE(bystander.exec("BEGIN").ok());
  const int pid_before = bystander.backend_pid();

  {
    RawClient raw(proxy.port());
    raw.send(be32(3) + be32(3u << 16));  // a length below the 8-byte minimum
    EXPECT_TRUE(raw.read_until_closed(3s)) << "the proxy kept a connection with a bad startup length open";
  }
  {
    RawClient raw(proxy.port());
    raw.send(be32(0x7fffff00u) + be32(3u << 16));  // absurdly long startup packet
    EXPECT_TRUE(raw.read_until_closed(3s)) << "the proxy waited for a 2 GB startup packet";
  }

  EXPECT_EQ(bystander.backend_pid(), pid_before);
  EXPECT_EQ(bystander.value("SELECT 'still here'"), "still here");
  ASSERT_TRUE(bystander.exec("COMMIT").ok());
  PgConnection fresh(conninfo(proxy, "app", "secret", "app"));
  ASSERT_TRUE(fresh.ok()) << fresh.error();
  EXPECT_EQ(fresh.value("SELECT 1"), "1");
}

TEST(ProxyMalformed, BadMessageLengthAfterStartupClosesOnlyThatConnection) {
  ProxyProcess& proxy = auth_proxy();
  PgConnection bystander(conninfo(proxy, "app", "secret", "app"));
  ASSERT_TRUE(bystander.ok()) << bystander.error();
  ASSERT_TRUE(bystander.exec("BEGIN").ok());
  ASSERT_TRUE(bystander.exec("CREATE TEMP TABLE malformed_witness (x int)").ok());
  ASSERT_TRUE(bystander.exec("INSERT INTO malformed_witness VALUES (7)").ok());

  RawClient raw(proxy.port());
  raw.send(startup_packet("trustuser", "app"));
  ASSERT_TRUE(raw.read_until_message('Z', 5s)) << "no ReadyForQuery after a trust startup";
  raw.received.clear();
  // A valid query first proves the session works, then a Query whose length (2) is impossible.
  const std::string sql = std::string("SELECT 1") + '\0';
  raw.send("Q" + be32(static_cast<std::uint32_t>(sql.size() + 4)) + sql);
  ASSERT_TRUE(raw.read_until_message('Z', 5s)) << "the raw session's query got no answer";
  raw.received.clear();
  raw.send("Q" + be32(2));
  EXPECT_TRUE(raw.read_until_closed(3s)) << "the connection with an invalid message length stayed open";
  EXPECT_EQ(first_error_sqlstate(raw.received), "08P01")
      << "expected a protocol_violation ErrorResponse before the close";

  // The other client's transaction is untouched.
  EXPECT_EQ(bystander.value("SELECT x FROM malformed_witness"), "7");
  ASSERT_TRUE(bystander.exec("COMMIT").ok());
  EXPECT_EQ(bystander.value("SELECT 'alive'"), "alive");
}

TEST(ProxyMalformed, UnknownMessageTypeClosesOnlyThatConnection) {
  ProxyProcess& proxy = auth_proxy();
  PgConnection bystander(conninfo(proxy, "app", "secret", "app"));
  ASSERT_TRUE(bystander.ok()) << bystander.error();

  RawClient raw(proxy.port());
  raw.send(startup_packet("trustuser", "app"));
  ASSERT_TRUE(raw.read_until_message('Z', 5s));
  raw.received.clear();
  raw.send("!" + be32(4));
  EXPECT_TRUE(raw.read_until_closed(3s));
  EXPECT_EQ(first_error_sqlstate(raw.received), "08P01");
  EXPECT_EQ(bystander.value("SELECT 'fine'"), "fine");
}

}  // namespace
