// Pooling behaviour of the proxy against real PostgreSQL, as a client observes it: cancel reaches
// only the query it targets, transaction pooling shares few servers among many clients, a full
// pool times out with 53300, protocol-level prepared statements and SET values follow the client
// (not the server), COPY and pipelined batches pass through intact, session mode keeps one
// server, and a stopped home primary fails fast with 08006. Every statement goes to the home
// shard's primary (s0), which the tests check with inet_server_port().
//
// The server-down test stops a server: it is the last test of this file.

#include <libpq-fe.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"
#include "tests/integration/support/raw_client.hpp"

namespace {

using namespace std::chrono_literals;
using shardline::config::PoolMode;
using shardline::control::LocalCluster;
using shardline::control::ServerInfo;
using shardline::testing::free_port;
using shardline::testing::PgConnection;
using shardline::testing::PgResult;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using Clock = std::chrono::steady_clock;

LocalCluster& cluster() {
  shardline::testing::ClusterSpec spec;
  spec.shards = 2;  // a second shard makes "went to the home shard" a real check
  spec.replicas = 0;
  return shardline::testing::test_cluster(spec);
}

std::string conninfo(const ProxyProcess& proxy, const std::string& extra = "") {
  return proxy.conninfo() + " sslmode=disable gssencmode=disable connect_timeout=5 " + extra;
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

/// Server connections the proxy holds on shard `shard` (only the proxy logs in as `app`;
/// the tests' direct connections use the superuser).
/// Server connections of the proxy's pools on a shard (the control plane's catalog connection,
/// which names itself in application_name, is not a pool connection).
int app_backends(int shard) {
  PgConnection su(cluster().superuser_conninfo(shard));
  if (!su.ok()) throw std::runtime_error(su.error());
  return std::stoi(su.value(
      "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND backend_type = 'client backend' "
      "AND application_name NOT LIKE 'shardline%'"));
}

/// Waits until server connections of earlier tests' proxies are gone, so counts are this test's.
void wait_no_app_backends() {
  const auto deadline = Clock::now() + 10s;
  while (app_backends(0) != 0 && Clock::now() < deadline) std::this_thread::sleep_for(50ms);
  ASSERT_EQ(app_backends(0), 0) << "server connections of an earlier proxy are still open";
}

/// Waits until `n` backends of the app user run a statement containing `needle`.
bool wait_running(const std::string& needle, int n, std::chrono::milliseconds timeout) {
  PgConnection su(cluster().superuser_conninfo(0));
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    const PgResult r = su.exec_params(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app' AND state = 'active' AND "
        "position($1 in query) > 0",
        {needle});
    if (r.ok() && std::stoi(r.value(0, 0)) >= n) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

/// All results of the query in flight, until libpq's terminating nullptr.
std::vector<PgResult> drain(const PgConnection& c) {
  std::vector<PgResult> out;
  while (PGresult* r = PQgetResult(c.get())) out.emplace_back(r);
  return out;
}

// ---- cancel ------------------------------------------------------------------------------------

TEST(ProxyPooling, CancelStopsOnlyTheTargetedQuery) {
  ProxyProcess proxy(ProxyConfig(cluster(), free_port()).yaml());
  PgConnection victim(conninfo(proxy));
  PgConnection bystander(conninfo(proxy));
  ASSERT_TRUE(victim.ok()) << victim.error();
  ASSERT_TRUE(bystander.ok()) << bystander.error();

  const auto started = Clock::now();
  ASSERT_EQ(PQsendQuery(victim.get(), "SELECT pg_sleep(10) /* victim */"), 1);
  ASSERT_EQ(PQsendQuery(bystander.get(), "SELECT pg_sleep(2) /* bystander */"), 1);
  ASSERT_TRUE(wait_running("pg_sleep(", 2, 5s)) << "the two sleeps never ran at the same time";

  PGcancel* cancel = PQgetCancel(victim.get());
  ASSERT_NE(cancel, nullptr);
  char err[256] = {0};
  const auto cancelled_at = Clock::now();
  EXPECT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
  PQfreeCancel(cancel);

  const std::vector<PgResult> victim_results = drain(victim);
  const double cancel_latency = seconds_since(cancelled_at);
  ASSERT_EQ(victim_results.size(), 1u);
  EXPECT_EQ(victim_results[0].status(), PGRES_FATAL_ERROR) << victim_results[0].describe();
  EXPECT_EQ(victim_results[0].sqlstate(), "57014") << victim_results[0].describe();
  EXPECT_LT(cancel_latency, 1.5) << "the cancelled query took " << cancel_latency << " s to stop";

  const std::vector<PgResult> bystander_results = drain(bystander);
  ASSERT_EQ(bystander_results.size(), 1u);
  EXPECT_EQ(bystander_results[0].status(), PGRES_TUPLES_OK) << bystander_results[0].describe();
  EXPECT_GE(seconds_since(started), 1.9) << "the bystander's pg_sleep(2) ended early";

  // Both sessions go on working.
  EXPECT_EQ(victim.value("SELECT 'after cancel'"), "after cancel");
  EXPECT_EQ(bystander.server_port(), cluster().primary_port(0));

  // A cancel carrying another (idle) session's key does not touch this session's query.
  ASSERT_EQ(PQsendQuery(victim.get(), "SELECT pg_sleep(0.5), 'done'"), 1);
  ASSERT_TRUE(wait_running("pg_sleep(0.5)", 1, 5s));
  PgConnection other(conninfo(proxy));
  ASSERT_TRUE(other.ok());
  PGcancel* wrong = PQgetCancel(other.get());
  EXPECT_EQ(PQcancel(wrong, err, sizeof err), 1) << err;
  PQfreeCancel(wrong);
  const std::vector<PgResult> after = drain(victim);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].status(), PGRES_TUPLES_OK) << after[0].describe();
}

// ---- transaction pooling -----------------------------------------------------------------------

TEST(ProxyPooling, TenClientsShareTwoServersInTransactionMode) {
  wait_no_app_backends();
  ProxyConfig cfg(cluster(), free_port());
  cfg.pool_size(2);
  ProxyProcess proxy(cfg.yaml());
  {
    PgConnection setup(conninfo(proxy));
    ASSERT_TRUE(setup.ok()) << setup.error();
    ASSERT_TRUE(setup.exec("DROP TABLE IF EXISTS pool_t").ok());
    const PgResult r = setup.exec("CREATE TABLE pool_t (client int, i int, pid int, port int)");
    ASSERT_TRUE(r.ok()) << r.describe();
  }

  constexpr int kClients = 10;
  constexpr int kTransactions = 20;
  std::vector<std::unique_ptr<PgConnection>> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.push_back(std::make_unique<PgConnection>(conninfo(proxy)));
    ASSERT_TRUE(clients.back()->ok()) << clients.back()->error();
  }

  std::atomic<bool> running{true};
  std::atomic<int> max_backends{0};
  std::thread monitor([&] {
    while (running) {
      const int n = app_backends(0);
      if (n > max_backends) max_backends = n;
      std::this_thread::sleep_for(20ms);
    }
  });

  std::mutex mu;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      const PgConnection& conn = *clients[c];
      auto fail = [&](const std::string& what) {
        std::lock_guard lock(mu);
        failures.push_back(fmt::format("client {}: {}", c, what));
      };
      for (int i = 0; i < kTransactions; ++i) {
        if (PgResult r = conn.exec("BEGIN"); !r.ok()) return fail("BEGIN: " + r.describe());
        const PgResult ins = conn.exec_params(
            "INSERT INTO pool_t VALUES ($1, $2, pg_backend_pid(), inet_server_port()) RETURNING pid",
            {std::to_string(c), std::to_string(i)});
        if (ins.status() != PGRES_TUPLES_OK) return fail("INSERT: " + ins.describe());
        const PgResult pid = conn.exec("SELECT pg_backend_pid()");
        if (pid.status() != PGRES_TUPLES_OK) return fail("SELECT: " + pid.describe());
        if (pid.value(0, 0) != ins.value(0, 0))
          return fail(fmt::format("transaction {} moved from backend {} to {}", i, ins.value(0, 0), pid.value(0, 0)));
        if (PgResult r = conn.exec("COMMIT"); !r.ok()) return fail("COMMIT: " + r.describe());
      }
    });
  }
  for (auto& t : threads) t.join();
  running = false;
  monitor.join();
  for (const auto& f : failures) ADD_FAILURE() << f;

  PgConnection direct(cluster().superuser_conninfo(0));
  EXPECT_EQ(direct.value("SELECT count(*) FROM pool_t"), std::to_string(kClients * kTransactions));
  EXPECT_EQ(direct.value("SELECT count(DISTINCT (client, i)) FROM pool_t"), std::to_string(kClients * kTransactions));
  EXPECT_LE(std::stoi(direct.value("SELECT count(DISTINCT pid) FROM pool_t")), 2);
  EXPECT_EQ(direct.value("SELECT string_agg(DISTINCT port::text, ',') FROM pool_t"),
            std::to_string(cluster().primary_port(0)));
  EXPECT_LE(max_backends.load(), 2) << "more server connections than pool.size";
  EXPECT_GE(max_backends.load(), 1);
  EXPECT_LE(app_backends(0), 2);
  EXPECT_EQ(app_backends(1), 0) << "the proxy connected to shard s1 although every statement belongs to s0";

  PgConnection admin(proxy.conninfo("app", "secret", "shardline") + " sslmode=disable");
  ASSERT_TRUE(admin.ok()) << admin.error();
  const PgResult pools = admin.exec("SHOW POOLS");
  ASSERT_EQ(pools.status(), PGRES_TUPLES_OK) << pools.describe();
  bool found = false;
  for (int r = 0; r < pools.rows(); ++r) {
    if (pools.value(r, 0) != "s0" || pools.value(r, 1) != "primary") continue;
    found = true;
    for (int c = 0; c < pools.columns(); ++c) {
      if (pools.column_name(c) == "sv_total") {
        EXPECT_LE(std::stoi(pools.value(r, c)), 2);
      }
      if (pools.column_name(c) == "pool_size") {
        EXPECT_EQ(pools.value(r, c), "2");
      }
    }
  }
  EXPECT_TRUE(found);
  clients.front()->exec("DROP TABLE pool_t");
}

TEST(ProxyPooling, QueueTimeoutIs53300NamingThePool) {
  ProxyConfig cfg(cluster(), free_port());
  cfg.pool_size(1).query_wait_timeout_ms(500);
  ProxyProcess proxy(cfg.yaml());
  PgConnection holder(conninfo(proxy));
  ASSERT_TRUE(holder.ok()) << holder.error();
  ASSERT_TRUE(holder.exec("BEGIN").ok());
  const int held_pid = holder.backend_pid();
  PgConnection waiter(conninfo(proxy));
  ASSERT_TRUE(waiter.ok()) << waiter.error();

  const auto started = Clock::now();
  const PgResult r = waiter.exec("SELECT 'should wait'");
  const double waited = seconds_since(started);
  EXPECT_EQ(r.status(), PGRES_FATAL_ERROR) << r.describe();
  EXPECT_EQ(r.sqlstate(), "53300") << r.describe();
  EXPECT_NE(r.message().find("s0"), std::string::npos) << "the message does not name the pool: " << r.message();
  EXPECT_GE(waited, 0.45);
  EXPECT_LT(waited, 3.0);

  // The holder's transaction is unharmed, and once it commits the waiter gets the server.
  EXPECT_EQ(holder.backend_pid(), held_pid);
  ASSERT_TRUE(holder.exec("COMMIT").ok());
  EXPECT_EQ(PQtransactionStatus(waiter.get()), PQTRANS_IDLE);
  EXPECT_EQ(waiter.value("SELECT 'now it works'"), "now it works");
  EXPECT_EQ(waiter.backend_pid(), held_pid);
}

// ---- prepared statements -----------------------------------------------------------------------

TEST(ProxyPooling, PreparedStatementsFollowTheClientAcrossServers) {
  ProxyConfig cfg(cluster(), free_port());
  cfg.pool_size(2);
  ProxyProcess proxy(cfg.yaml());
  PgConnection x(conninfo(proxy));
  PgConnection y(conninfo(proxy));
  PgConnection w(conninfo(proxy));
  ASSERT_TRUE(x.ok() && y.ok() && w.ok()) << x.error() << y.error() << w.error();

  const PgResult prep = PgResult(PQprepare(y.get(), "double_it", "SELECT $1::int * 2, pg_backend_pid()", 0, nullptr));
  ASSERT_EQ(prep.status(), PGRES_COMMAND_OK) << prep.describe();
  const PgResult desc = PgResult(PQdescribePrepared(y.get(), "double_it"));
  ASSERT_EQ(desc.status(), PGRES_COMMAND_OK) << desc.describe();
  EXPECT_EQ(PQnparams(desc.get()), 1);
  EXPECT_EQ(PQparamtype(desc.get(), 0), 23u);  // int4
  EXPECT_EQ(PQnfields(desc.get()), 2);

  // x holds one of the two servers, so y's statement runs on the other one; then w holds
  // that one and x lets go of its own, so y's statement must run on the first server too.
  ASSERT_TRUE(x.exec("BEGIN").ok());
  const std::string px = std::to_string(x.backend_pid());
  PgResult r = y.exec_prepared("double_it", {"21"});
  ASSERT_EQ(r.status(), PGRES_TUPLES_OK) << r.describe();
  EXPECT_EQ(r.value(0, 0), "42");
  const std::string py = r.value(0, 1);
  EXPECT_NE(py, px) << "y ran on the server x holds in a transaction";
  ASSERT_TRUE(w.exec("BEGIN").ok());
  EXPECT_EQ(std::to_string(w.backend_pid()), py);
  ASSERT_TRUE(x.exec("COMMIT").ok());
  r = y.exec_prepared("double_it", {"50"});
  ASSERT_EQ(r.status(), PGRES_TUPLES_OK) << r.describe();
  EXPECT_EQ(r.value(0, 0), "100");
  EXPECT_EQ(r.value(0, 1), px) << "the prepared statement did not run on the other server";
  ASSERT_TRUE(w.exec("COMMIT").ok());

  // Same name, different statements in two clients: each gets its own.
  ASSERT_EQ(PgResult(PQprepare(x.get(), "mine", "SELECT 'x' || $1::text", 0, nullptr)).status(), PGRES_COMMAND_OK);
  ASSERT_EQ(PgResult(PQprepare(w.get(), "mine", "SELECT 'w' || $1::text", 0, nullptr)).status(), PGRES_COMMAND_OK);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(x.exec_prepared("mine", {std::to_string(i)}).value(0, 0), "x" + std::to_string(i));
    EXPECT_EQ(w.exec_prepared("mine", {std::to_string(i)}).value(0, 0), "w" + std::to_string(i));
  }

  // Several clients, two statements each, executed many times across transactions while
  // the others interleave on the same two servers.
  constexpr int kClients = 4;
  constexpr int kIterations = 30;
  std::vector<std::unique_ptr<PgConnection>> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.push_back(std::make_unique<PgConnection>(conninfo(proxy)));
    ASSERT_TRUE(clients.back()->ok()) << clients.back()->error();
    PGconn* conn = clients.back()->get();
    ASSERT_EQ(PgResult(PQprepare(conn, "mul", "SELECT $1::int * $2::int", 0, nullptr)).status(),
              PGRES_COMMAND_OK);
    ASSERT_EQ(PgResult(PQprepare(conn, "tag",
                                 fmt::format("SELECT 'client{}:' || $1::text, pg_backend_pid()", c).c_str(), 0, nullptr))
                  .status(),
              PGRES_COMMAND_OK);
  }
  std::mutex mu;
  std::vector<std::string> failures;
  std::set<std::string> pids_seen;
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      const PgConnection& conn = *clients[c];
      auto fail = [&](const std::string& what) {
        std::lock_guard lock(mu);
        failures.push_back(fmt::format("client {}: {}", c, what));
      };
      for (int i = 0; i < kIterations; ++i) {
        const bool in_tx = i % 2 == 0;
        if (in_tx && !conn.exec("BEGIN").ok()) return fail("BEGIN failed");
        const PgResult m = conn.exec_prepared("mul", {std::to_string(c + 1), std::to_string(i)});
        if (m.status() != PGRES_TUPLES_OK || m.value(0, 0) != std::to_string((c + 1) * i))
          return fail(fmt::format("mul({}, {}) = {}", c + 1, i, m.ok() ? m.value(0, 0) : m.describe()));
        const PgResult t = conn.exec_prepared("tag", {std::to_string(i)});
        if (t.status() != PGRES_TUPLES_OK || t.value(0, 0) != fmt::format("client{}:{}", c, i))
          return fail(fmt::format("tag({}) = {}", i, t.ok() ? t.value(0, 0) : t.describe()));
        {
          std::lock_guard lock(mu);
          pids_seen.insert(t.value(0, 1));
        }
        if (in_tx && !conn.exec("COMMIT").ok()) return fail("COMMIT failed");
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& f : failures) ADD_FAILURE() << f;
  EXPECT_LE(pids_seen.size(), 2u);

  // Errors of the protocol-level statement API, as PostgreSQL reports them.
  const PgResult dup = PgResult(PQprepare(y.get(), "double_it", "SELECT 1", 0, nullptr));
  EXPECT_EQ(dup.status(), PGRES_FATAL_ERROR);
  EXPECT_EQ(dup.sqlstate(), "42P05") << dup.describe();
  EXPECT_EQ(y.exec_prepared("double_it", {"4"}).value(0, 0), "8") << "the failed duplicate replaced the statement";
  const PgResult unknown = y.exec_prepared("never_prepared", {});
  EXPECT_EQ(unknown.status(), PGRES_FATAL_ERROR);
  EXPECT_EQ(unknown.sqlstate(), "26000") << unknown.describe();
  const PgResult unknown_desc = PgResult(PQdescribePrepared(y.get(), "never_prepared"));
  EXPECT_EQ(unknown_desc.sqlstate(), "26000") << unknown_desc.describe();
  EXPECT_EQ(y.value("SELECT 'usable after errors'"), "usable after errors");

  // DEALLOCATE of a statement made with PQprepare.
  const PgResult dealloc = y.exec("DEALLOCATE double_it");
  ASSERT_EQ(dealloc.status(), PGRES_COMMAND_OK) << dealloc.describe();
  const PgResult gone = y.exec_prepared("double_it", {"1"});
  EXPECT_EQ(gone.sqlstate(), "26000") << gone.describe();
  ASSERT_EQ(PgResult(PQprepare(y.get(), "double_it", "SELECT $1::int * 3", 0, nullptr)).status(), PGRES_COMMAND_OK);
  EXPECT_EQ(y.exec_prepared("double_it", {"5"}).value(0, 0), "15");
  const PgResult dealloc_all = y.exec("DEALLOCATE ALL");
  ASSERT_EQ(dealloc_all.status(), PGRES_COMMAND_OK) << dealloc_all.describe();
  EXPECT_EQ(y.exec_prepared("double_it", {"5"}).sqlstate(), "26000");
  // Other clients' statements of the same text survive y's DEALLOCATE ALL.
  EXPECT_EQ(x.exec_prepared("mine", {"z"}).value(0, 0), "xz");
}

/// A raw-protocol client of one endpoint for the Close test: queues frontend messages and sends
/// them in one write at until_ready(), the way drivers pipeline an extended-protocol batch.
class CloseClient {
 public:
  explicit CloseClient(const std::string& conninfo) : c_(conninfo) {}
  CloseClient& query(std::string_view sql) { return add(shardline::testing::raw::query(sql)); }
  CloseClient& parse(std::string_view name, std::string_view sql) { return add(shardline::testing::raw::parse(name, sql)); }
  CloseClient& bind(std::string_view portal, std::string_view stmt, const std::vector<std::optional<std::string>>& p = {}) {
    return add(shardline::testing::raw::bind(portal, stmt, p));
  }
  CloseClient& execute(std::string_view portal, std::int32_t max_rows = 0) {
    return add(shardline::testing::raw::execute(portal, max_rows));
  }
  CloseClient& close_statement(std::string_view name) { return add(shardline::testing::raw::close('S', name)); }
  CloseClient& close_portal(std::string_view name) { return add(shardline::testing::raw::close('P', name)); }
  CloseClient& sync() { return add(shardline::testing::raw::sync()); }
  std::vector<shardline::testing::RawMessage> until_ready() {
    std::string out;
    out.swap(queued_);
    return c_.round_trip(out);
  }

 private:
  CloseClient& add(const std::string& m) {
    queued_ += m;
    return *this;
  }
  shardline::testing::RawClient c_;
  std::string queued_;
};

/// The tags of the messages ("12C3Z"), leaving out the proxy's own shardline.* ParameterStatus.
std::string tags(const std::vector<shardline::testing::RawMessage>& messages) {
  std::string t;
  for (const auto& m : messages)
    if (!(m.tag == 'S' && m.parameter().first.starts_with("shardline."))) t.push_back(m.tag);
  return t;
}
std::string first_sqlstate(const std::vector<shardline::testing::RawMessage>& messages) {
  for (const auto& m : messages)
    if (m.tag == 'E') return m.sqlstate();
  return "";
}
/// The value of the first DataRow's first column, "" if none.
std::string first_value(const std::vector<shardline::testing::RawMessage>& messages) {
  for (const auto& m : messages)
    if (m.tag == 'D') return m.row().at(0).value_or("NULL");
  return "";
}

/// Close ('C') of statements and portals as two clients of one endpoint see it, through the
/// project's raw protocol client (libpq has no way to send Close before 17).
void expect_close_semantics(const std::string& conninfo) {
  CloseClient a(conninfo);
  CloseClient b(conninfo);
  // b's statement has the very text a is about to close.
  EXPECT_EQ(tags(b.parse("theirs", "SELECT $1::int + 1").sync().until_ready()), "1Z");
  EXPECT_EQ(tags(a.parse("to_close", "SELECT $1::int + 1").parse("kept", "SELECT 'kept'").sync().until_ready()),
            "11Z");
  auto r = a.bind("", "to_close", {"41"}).execute("").sync().until_ready();
  EXPECT_EQ(tags(r), "2DCZ");
  EXPECT_EQ(first_value(r), "42");

  // Close of the statement: CloseComplete, then the name is gone for a only.
  EXPECT_EQ(tags(a.close_statement("to_close").sync().until_ready()), "3Z");
  r = a.bind("", "to_close", {"1"}).execute("").sync().until_ready();
  EXPECT_EQ(tags(r), "EZ");
  EXPECT_EQ(first_sqlstate(r), "26000");
  for (const auto& m : r) {
    if (m.tag != 'E') continue;
    EXPECT_NE(m.message().find("to_close"), std::string::npos) << m.message();
  }
  // As in PostgreSQL, closing a name that does not exist (any more) is no error.
  EXPECT_EQ(tags(a.close_statement("to_close").close_statement("never_prepared").sync().until_ready()), "33Z");
  r = a.bind("", "kept").execute("").sync().until_ready();
  EXPECT_EQ(tags(r), "2DCZ");
  EXPECT_EQ(first_value(r), "kept");
  r = b.bind("", "theirs", {"1"}).execute("").sync().until_ready();
  EXPECT_EQ(tags(r), "2DCZ") << "another client's statement of the same text went with the Close";
  EXPECT_EQ(first_value(r), "2");
  // The closed name can be prepared again, with a new text.
  r = a.parse("to_close", "SELECT 'again'").bind("", "to_close").execute("").sync().until_ready();
  EXPECT_EQ(tags(r), "12DCZ");
  EXPECT_EQ(first_value(r), "again");

  // Close of a portal, part-way through its rows (portals outlive a Sync only in a transaction).
  EXPECT_EQ(tags(a.query("BEGIN").until_ready()), "CZ");
  r = a.parse("series", "SELECT generate_series(1, 5)").bind("rows", "series").execute("rows", 2).sync().until_ready();
  EXPECT_EQ(tags(r), "12DDsZ");
  EXPECT_EQ(tags(a.execute("rows", 2).sync().until_ready()), "DDsZ");
  EXPECT_EQ(tags(a.close_portal("rows").sync().until_ready()), "3Z");
  r = a.execute("rows", 1).sync().until_ready();
  EXPECT_EQ(tags(r), "EZ");
  EXPECT_EQ(first_sqlstate(r), "34000");  // invalid_cursor_name: the portal is gone
  EXPECT_EQ(tags(a.query("ROLLBACK").until_ready()), "CZ");
  // A portal closed before it ran never runs; the statement behind it stays.
  EXPECT_EQ(tags(a.query("BEGIN").until_ready()), "CZ");
  r = a.bind("early", "series").close_portal("early").execute("early").sync().until_ready();
  EXPECT_EQ(tags(r), "23EZ");
  EXPECT_EQ(first_sqlstate(r), "34000");
  EXPECT_EQ(tags(a.query("ROLLBACK").until_ready()), "CZ");
  r = a.bind("", "series").execute("").sync().until_ready();
  EXPECT_EQ(tags(r), "2DDDDDCZ");
  // b never noticed any of it.
  r = b.bind("", "theirs", {"7"}).execute("").sync().until_ready();
  EXPECT_EQ(first_value(r), "8");
}

TEST(ProxyPooling, ClosePreparedStatement) {
  {
    SCOPED_TRACE("PostgreSQL itself, the oracle");
    expect_close_semantics(cluster().conninfo(0));
  }
  // One server for both clients: their statements share it, and the same text is prepared once.
  ProxyProcess proxy(ProxyConfig(cluster(), free_port()).pool_size(1).yaml());
  SCOPED_TRACE("through the proxy");
  expect_close_semantics(proxy.conninfo());
}

// ---- session settings --------------------------------------------------------------------------

TEST(ProxyPooling, SetValuesDoNotLeakBetweenClients) {
  ProxyConfig cfg(cluster(), free_port());
  cfg.pool_size(1);
  ProxyProcess proxy(cfg.yaml());

  // The defaults, as a direct connection of the same role sees them.
  PgConnection direct(cluster().conninfo(0));
  ASSERT_TRUE(direct.ok()) << direct.error();
  const std::string default_path = direct.value("SHOW search_path");
  const std::string default_timeout = direct.value("SHOW statement_timeout");

  PgConnection a(conninfo(proxy, "application_name=client_a"));
  PgConnection b(conninfo(proxy));
  ASSERT_TRUE(a.ok()) << a.error();
  ASSERT_TRUE(b.ok()) << b.error();
  EXPECT_EQ(a.value("SHOW application_name"), "client_a");
  EXPECT_EQ(b.value("SHOW application_name"), "");

  ASSERT_TRUE(a.exec("SET application_name = 'a''s app'").ok());
  ASSERT_TRUE(a.exec("SET search_path = a_schema, public").ok());
  ASSERT_TRUE(a.exec("SET statement_timeout = '1234ms'").ok());
  EXPECT_STREQ(PQparameterStatus(a.get(), "application_name"), "a's app");

  auto expect_defaults = [&](const char* when) {
    SCOPED_TRACE(when);
    EXPECT_EQ(b.value("SHOW application_name"), "");
    EXPECT_EQ(b.value("SHOW search_path"), default_path);
    EXPECT_EQ(b.value("SHOW statement_timeout"), default_timeout);
    EXPECT_STREQ(PQparameterStatus(b.get(), "application_name"), "");
  };
  expect_defaults("after A's SETs");
  EXPECT_EQ(b.backend_pid(), a.backend_pid()) << "pool size 1: both clients must share one server";

  // A keeps its values in a later transaction on the same (shared) server.
  ASSERT_TRUE(a.exec("BEGIN").ok());
  EXPECT_EQ(a.value("SHOW application_name"), "a's app");
  EXPECT_EQ(a.value("SHOW search_path"), "a_schema, public");
  EXPECT_EQ(a.value("SHOW statement_timeout"), "1234ms");
  ASSERT_TRUE(a.exec("COMMIT").ok());

  // RESET one value; the others stay.
  ASSERT_TRUE(a.exec("RESET statement_timeout").ok());
  EXPECT_EQ(a.value("SHOW statement_timeout"), default_timeout);
  EXPECT_EQ(a.value("SHOW search_path"), "a_schema, public");

  // A SET inside a rolled-back transaction is reverted; one in a committed transaction stays.
  ASSERT_TRUE(a.exec("BEGIN").ok());
  ASSERT_TRUE(a.exec("SET search_path = rolled_back").ok());
  EXPECT_EQ(a.value("SHOW search_path"), "rolled_back");
  ASSERT_TRUE(a.exec("ROLLBACK").ok());
  EXPECT_EQ(a.value("SHOW search_path"), "a_schema, public");
  ASSERT_TRUE(a.exec("BEGIN").ok());
  ASSERT_TRUE(a.exec("SET statement_timeout = '777ms'").ok());
  ASSERT_TRUE(a.exec("COMMIT").ok());
  EXPECT_EQ(a.value("SHOW statement_timeout"), "777ms");
  // SET LOCAL ends with its transaction.
  ASSERT_TRUE(a.exec("BEGIN").ok());
  ASSERT_TRUE(a.exec("SET LOCAL statement_timeout = '555ms'").ok());
  EXPECT_EQ(a.value("SHOW statement_timeout"), "555ms");
  ASSERT_TRUE(a.exec("COMMIT").ok());
  EXPECT_EQ(a.value("SHOW statement_timeout"), "777ms");
  // An error in a transaction aborts it; its SET is reverted too.
  ASSERT_TRUE(a.exec("BEGIN").ok());
  ASSERT_TRUE(a.exec("SET search_path = aborted").ok());
  EXPECT_EQ(a.exec("SELECT 1/0").sqlstate(), "22012");
  ASSERT_TRUE(a.exec("ROLLBACK").ok());
  EXPECT_EQ(a.value("SHOW search_path"), "a_schema, public");
  expect_defaults("after A's transactions");

  // RESET ALL returns to the session defaults, which include the startup packet's values.
  ASSERT_TRUE(a.exec("RESET ALL").ok());
  EXPECT_EQ(a.value("SHOW application_name"), "client_a");
  EXPECT_EQ(a.value("SHOW search_path"), default_path);
  EXPECT_EQ(a.value("SHOW statement_timeout"), default_timeout);

  // DISCARD ALL does the same (and drops prepared statements).
  ASSERT_TRUE(a.exec("SET application_name = 'before discard'").ok());
  ASSERT_TRUE(a.exec("SET search_path = discard_me").ok());
  ASSERT_EQ(PgResult(PQprepare(a.get(), "discarded", "SELECT 1", 0, nullptr)).status(), PGRES_COMMAND_OK);
  const PgResult discard = a.exec("DISCARD ALL");
  ASSERT_EQ(discard.status(), PGRES_COMMAND_OK) << discard.describe();
  EXPECT_EQ(a.value("SHOW application_name"), "client_a");
  EXPECT_EQ(a.value("SHOW search_path"), default_path);
  EXPECT_EQ(a.exec_prepared("discarded", {}).sqlstate(), "26000");
  expect_defaults("after DISCARD ALL");

  // The statement_timeout B would inherit by a leak is observable: a 1.5 s sleep must work.
  ASSERT_TRUE(a.exec("SET statement_timeout = '100ms'").ok());
  EXPECT_EQ(a.exec("SELECT pg_sleep(0.5)").sqlstate(), "57014");
  const PgResult slow = b.exec("SELECT pg_sleep(0.3), 'b not limited'");
  ASSERT_EQ(slow.status(), PGRES_TUPLES_OK) << slow.describe();
}

TEST(ProxyPooling, SetThroughExtendedProtocolOrMultiStatementDoesNotLeak) {
  ProxyConfig cfg(cluster(), free_port());
  cfg.pool_size(1);
  ProxyProcess proxy(cfg.yaml());
  PgConnection direct(cluster().conninfo(0));
  ASSERT_TRUE(direct.ok()) << direct.error();
  const std::string default_path = direct.value("SHOW search_path");
  const std::string default_timeout = direct.value("SHOW statement_timeout");

  PgConnection a(conninfo(proxy));
  PgConnection b(conninfo(proxy));
  ASSERT_TRUE(a.ok() && b.ok()) << a.error() << b.error();

  // Drivers such as JDBC send SET through Parse/Bind/Execute.
  const PgResult ext = a.exec_params("SET statement_timeout = '4321ms'", {});
  ASSERT_EQ(ext.status(), PGRES_COMMAND_OK) << ext.describe();
  EXPECT_EQ(b.value("SHOW statement_timeout"), default_timeout) << "a SET sent with the extended protocol leaked";
  EXPECT_EQ(a.value("SHOW statement_timeout"), "4321ms") << "a SET sent with the extended protocol was lost";

  // A SET inside a multi-statement simple query.
  const PgResult multi = a.exec("SELECT 1; SET search_path = multi_schema, public; SELECT 2");
  ASSERT_EQ(multi.status(), PGRES_TUPLES_OK) << multi.describe();
  EXPECT_EQ(b.value("SHOW search_path"), default_path) << "a SET inside a multi-statement query leaked";
  EXPECT_EQ(a.value("SHOW search_path"), "multi_schema, public") << "a SET inside a multi-statement query was lost";
  EXPECT_EQ(b.backend_pid(), a.backend_pid());
}

// ---- COPY --------------------------------------------------------------------------------------

TEST(ProxyPooling, CopyInAndOutRoundTrip) {
  ProxyConfig cfg(cluster(), free_port());
  cfg.pool_size(2);
  ProxyProcess proxy(cfg.yaml());
  PgConnection c(conninfo(proxy));
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_TRUE(c.exec("DROP TABLE IF EXISTS copy_t").ok());
  ASSERT_TRUE(c.exec("CREATE TABLE copy_t (id int PRIMARY KEY, label text, note text)").ok());

  constexpr int kRows = 10000;
  std::vector<std::string> lines;
  for (int i = 1; i <= kRows; ++i)
    lines.push_back(fmt::format("{}\trow {} with tab\\there\t{}\n", i, i, i % 7 == 0 ? "\\N" : "n" + std::to_string(i)));
  PgResult start = c.exec("COPY copy_t FROM STDIN");
  ASSERT_EQ(start.status(), PGRES_COPY_IN) << start.describe();
  std::string chunk;
  for (const auto& l : lines) {
    chunk += l;
    if (chunk.size() > 7000) {  // chunks that cut rows in the middle
      ASSERT_EQ(PQputCopyData(c.get(), chunk.data(), static_cast<int>(chunk.size() / 2)), 1);
      ASSERT_EQ(PQputCopyData(c.get(), chunk.data() + chunk.size() / 2,
                              static_cast<int>(chunk.size() - chunk.size() / 2)), 1);
      chunk.clear();
    }
  }
  if (!chunk.empty()) {
    ASSERT_EQ(PQputCopyData(c.get(), chunk.data(), static_cast<int>(chunk.size())), 1);
  }
  ASSERT_EQ(PQputCopyEnd(c.get(), nullptr), 1);
  const std::vector<PgResult> done = drain(c);
  ASSERT_EQ(done.size(), 1u);
  ASSERT_EQ(done[0].status(), PGRES_COMMAND_OK) << done[0].describe();
  EXPECT_EQ(done[0].cmd_tuples(), std::to_string(kRows));

  PgConnection direct(cluster().superuser_conninfo(0));
  EXPECT_EQ(direct.value("SELECT count(*) FROM copy_t"), std::to_string(kRows));
  EXPECT_EQ(direct.value("SELECT sum(id) FROM copy_t"), std::to_string(kRows * (kRows + 1) / 2));
  EXPECT_EQ(direct.value("SELECT label FROM copy_t WHERE id = 5"), "row 5 with tab\there");
  EXPECT_EQ(direct.value("SELECT count(*) FROM copy_t WHERE note IS NULL"), std::to_string(kRows / 7));

  PgResult out = c.exec("COPY copy_t TO STDOUT");
  ASSERT_EQ(out.status(), PGRES_COPY_OUT) << out.describe();
  std::vector<std::string> got;
  std::string partial;
  for (;;) {
    char* buf = nullptr;
    const int n = PQgetCopyData(c.get(), &buf, 0);
    if (n < 0) {
      ASSERT_EQ(n, -1) << PQerrorMessage(c.get());
      break;
    }
    got.emplace_back(buf, static_cast<std::size_t>(n));
    PQfreemem(buf);
  }
  const std::vector<PgResult> out_done = drain(c);
  ASSERT_EQ(out_done.size(), 1u);
  EXPECT_EQ(out_done[0].status(), PGRES_COMMAND_OK) << out_done[0].describe();
  EXPECT_EQ(out_done[0].cmd_tuples(), std::to_string(kRows));
  std::sort(got.begin(), got.end());
  std::vector<std::string> want = lines;
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << "COPY TO STDOUT returned other rows than COPY FROM STDIN loaded";
  EXPECT_EQ(c.value("SELECT 'after copy'"), "after copy");
  c.exec("DROP TABLE copy_t");
}

TEST(ProxyPooling, CopyWithBadRowFailsAndLeavesNothing) {
  ProxyConfig cfg(cluster(), free_port());
  cfg.pool_size(1);
  ProxyProcess proxy(cfg.yaml());
  PgConnection c(conninfo(proxy));
  PgConnection other(conninfo(proxy));
  ASSERT_TRUE(c.ok() && other.ok()) << c.error() << other.error();
  ASSERT_TRUE(c.exec("DROP TABLE IF EXISTS copy_bad").ok());
  ASSERT_TRUE(c.exec("CREATE TABLE copy_bad (id int, label text)").ok());

  ASSERT_EQ(c.exec("COPY copy_bad FROM STDIN").status(), PGRES_COPY_IN);
  std::string data;
  for (int i = 1; i <= 3000; ++i) data += fmt::format("{}\tok\n", i);
  data += "not-a-number\tbad\n";
  for (int i = 3001; i <= 4000; ++i) data += fmt::format("{}\tok\n", i);
  // The server may report the error while data is still being sent; libpq then refuses
  // further data, which is fine: the result below is what counts.
  for (std::size_t at = 0; at < data.size(); at += 4096) {
    const std::size_t n = std::min<std::size_t>(4096, data.size() - at);
    if (PQputCopyData(c.get(), data.data() + at, static_cast<int>(n)) != 1) break;
  }
  PQputCopyEnd(c.get(), nullptr);
  const std::vector<PgResult> res = drain(c);
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].status(), PGRES_FATAL_ERROR) << res[0].describe();
  EXPECT_EQ(res[0].sqlstate(), "22P02") << res[0].describe();

  PgConnection direct(cluster().superuser_conninfo(0));
  EXPECT_EQ(direct.value("SELECT count(*) FROM copy_bad"), "0");
  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_IDLE);
  EXPECT_EQ(c.value("SELECT 'after failed copy'"), "after failed copy");
  // The (single) server is clean for the next client.
  EXPECT_EQ(other.value("SELECT 'other client'"), "other client");

  // A client-side abort (CopyFail) is the server's 57014, and nothing is kept either.
  ASSERT_EQ(c.exec("COPY copy_bad FROM STDIN").status(), PGRES_COPY_IN);
  const std::string rows = "1\tx\n2\ty\n";
  ASSERT_EQ(PQputCopyData(c.get(), rows.data(), static_cast<int>(rows.size())), 1);
  ASSERT_EQ(PQputCopyEnd(c.get(), "client gave up"), 1);
  const std::vector<PgResult> aborted = drain(c);
  ASSERT_EQ(aborted.size(), 1u);
  EXPECT_EQ(aborted[0].sqlstate(), "57014") << aborted[0].describe();
  EXPECT_NE(aborted[0].message().find("client gave up"), std::string::npos) << aborted[0].message();
  EXPECT_EQ(direct.value("SELECT count(*) FROM copy_bad"), "0");
  EXPECT_EQ(other.value("SELECT count(*) FROM copy_bad"), "0");
  c.exec("DROP TABLE copy_bad");
}

// ---- pipelining --------------------------------------------------------------------------------

TEST(ProxyPooling, PipelineWithErrorInTheMiddle) {
  ProxyConfig cfg(cluster(), free_port());
  cfg.pool_size(2);
  ProxyProcess proxy(cfg.yaml());
  PgConnection c(conninfo(proxy));
  ASSERT_TRUE(c.ok()) << c.error();

  ASSERT_EQ(PQenterPipelineMode(c.get()), 1);
  const char* one[] = {"1"};
  const char* zero[] = {"0"};
  const char* x[] = {"x"};
  ASSERT_EQ(PQsendQueryParams(c.get(), "SELECT $1::int + 0", 1, nullptr, one, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQsendQueryParams(c.get(), "SELECT 1 / $1::int", 1, nullptr, zero, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQsendQueryParams(c.get(), "SELECT 3", 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQpipelineSync(c.get()), 1);

  auto next = [&] { return PgResult(PQgetResult(c.get())); };
  PgResult r1 = next();
  ASSERT_EQ(r1.status(), PGRES_TUPLES_OK) << r1.describe();
  EXPECT_EQ(r1.value(0, 0), "1");
  EXPECT_FALSE(next());
  PgResult r2 = next();
  EXPECT_EQ(r2.status(), PGRES_FATAL_ERROR) << r2.describe();
  EXPECT_EQ(r2.sqlstate(), "22012") << r2.describe();
  EXPECT_FALSE(next());
  PgResult r3 = next();
  EXPECT_EQ(r3.status(), PGRES_PIPELINE_ABORTED) << r3.describe();
  EXPECT_FALSE(next());
  PgResult sync = next();
  EXPECT_EQ(sync.status(), PGRES_PIPELINE_SYNC) << sync.describe();

  // A second batch in the same pipeline works, inside a transaction across statements.
  ASSERT_EQ(PQsendQueryParams(c.get(), "SELECT $1::text || 'a'", 1, nullptr, x, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQsendQueryParams(c.get(), "SELECT inet_server_port()", 0, nullptr, nullptr, nullptr, nullptr, 0), 1);
  ASSERT_EQ(PQpipelineSync(c.get()), 1);
  PgResult a = next();
  ASSERT_EQ(a.status(), PGRES_TUPLES_OK) << a.describe();
  EXPECT_EQ(a.value(0, 0), "xa");
  EXPECT_FALSE(next());
  PgResult port = next();
  ASSERT_EQ(port.status(), PGRES_TUPLES_OK) << port.describe();
  EXPECT_EQ(port.value(0, 0), std::to_string(cluster().primary_port(0)));
  EXPECT_FALSE(next());
  EXPECT_EQ(next().status(), PGRES_PIPELINE_SYNC);
  ASSERT_EQ(PQexitPipelineMode(c.get()), 1);

  EXPECT_EQ(PQtransactionStatus(c.get()), PQTRANS_IDLE);
  EXPECT_EQ(c.value("SELECT 'works after pipeline'"), "works after pipeline");
}

// ---- session mode ------------------------------------------------------------------------------

TEST(ProxyPooling, SessionModeKeepsStateAndDeliversNotifications) {
  ProxyConfig cfg(cluster(), free_port());
  cfg.pool_mode(PoolMode::Session).pool_size(2);
  ProxyProcess proxy(cfg.yaml());
  PgConnection listener(conninfo(proxy));
  PgConnection notifier(conninfo(proxy));
  ASSERT_TRUE(listener.ok() && notifier.ok()) << listener.error() << notifier.error();

  const int pid = listener.backend_pid();
  ASSERT_TRUE(listener.exec("SET application_name = 'session_mode'").ok());
  ASSERT_TRUE(listener.exec("CREATE TEMP TABLE session_tmp AS SELECT 5 AS v").ok());
  ASSERT_TRUE(listener.exec("PREPARE sql_level AS SELECT v * 2 FROM session_tmp").ok());
  EXPECT_EQ(listener.value("SHOW application_name"), "session_mode");
  EXPECT_EQ(listener.value("EXECUTE sql_level"), "10");
  EXPECT_EQ(listener.backend_pid(), pid) << "session mode moved the client to another server";
  EXPECT_NE(notifier.backend_pid(), pid);
  EXPECT_EQ(notifier.value("SHOW application_name"), "");

  ASSERT_TRUE(listener.exec("LISTEN shardline_chan").ok());
  const int notifier_pid = notifier.backend_pid();
  ASSERT_TRUE(notifier.exec("NOTIFY shardline_chan, 'hello from the other session'").ok());

  PGnotify* n = nullptr;
  const auto deadline = Clock::now() + 5s;
  while (n == nullptr && Clock::now() < deadline) {
    PQconsumeInput(listener.get());
    n = PQnotifies(listener.get());
    if (n == nullptr) listener.wait_input(100ms);
  }
  ASSERT_NE(n, nullptr) << "no notification reached the listener";
  EXPECT_STREQ(n->relname, "shardline_chan");
  EXPECT_STREQ(n->extra, "hello from the other session");
  EXPECT_EQ(n->be_pid, notifier_pid);
  PQfreemem(n);
  EXPECT_EQ(listener.value("SELECT 'still listening'"), "still listening");
}

TEST(ProxyPooling, IdleServersCloseAfterServerIdleTimeout) {
  wait_no_app_backends();
  ProxyConfig cfg(cluster(), free_port());
  cfg.pool_size(3).server_idle_timeout_ms(300);
  ProxyProcess proxy(cfg.yaml());
  std::vector<std::unique_ptr<PgConnection>> clients;
  std::set<int> pids;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<PgConnection>(conninfo(proxy)));
    ASSERT_TRUE(clients.back()->ok()) << clients.back()->error();
    ASSERT_TRUE(clients.back()->exec("BEGIN").ok());
    pids.insert(clients.back()->backend_pid());
  }
  EXPECT_EQ(pids.size(), 3u);
  for (auto& c : clients) ASSERT_TRUE(c->exec("COMMIT").ok());
  EXPECT_EQ(app_backends(0), 3);

  const auto deadline = Clock::now() + 5s;
  while (app_backends(0) > 0 && Clock::now() < deadline) std::this_thread::sleep_for(50ms);
  EXPECT_EQ(app_backends(0), 0) << "idle server connections outlived server_idle_timeout_ms";
  // Clients do not notice: the next statement gets a fresh server.
  EXPECT_EQ(clients.front()->value("SELECT 'fresh server'"), "fresh server");
  EXPECT_EQ(pids.count(clients.front()->backend_pid()), 0u);
}

// ---- server down (stops a server: keep this last) ----------------------------------------------

TEST(ProxyPoolingZLast, HomePrimaryDownFailsFastWith08006ThenRecovers) {
  // server_login_retry off: the first request after the restart logs in at once (timeouts_test
  // covers the retry interval).
  ProxyProcess proxy(ProxyConfig(cluster(), free_port()).pool_options("server_login_retry_ms: 0").yaml());
  PgConnection before(conninfo(proxy));
  ASSERT_TRUE(before.ok()) << before.error();
  EXPECT_EQ(before.server_port(), cluster().primary_port(0));

  const ServerInfo* home = nullptr;
  for (const auto& s : cluster().servers())
    if (s.shard == "s0" && s.is_primary()) home = &s;
  ASSERT_NE(home, nullptr);
  cluster().stop_server(*home);

  // The client connected before the outage: its next statement fails fast, naming the shard.
  // Its first (and only) error is the proxy's 08006; libpq keeps a FATAL's SQLSTATE only in
  // the error text, so both places are consulted.
  auto started = Clock::now();
  const PgResult r = before.exec("SELECT 1");
  EXPECT_LT(seconds_since(started), 3.0);
  EXPECT_EQ(r.status(), PGRES_FATAL_ERROR);
  const std::vector<std::string> states = before.error_sqlstates();
  EXPECT_FALSE(states.empty()) << PQerrorMessage(before.get());
  EXPECT_EQ(states, std::vector<std::string>(states.size(), "08006"))
      << "the client got another error than the shard's 08006:\n" << PQerrorMessage(before.get());
  EXPECT_NE(std::string(PQerrorMessage(before.get())).find("s0"), std::string::npos) << PQerrorMessage(before.get());

  // A client connecting during the outage gets the same answer (at connect or first query).
  started = Clock::now();
  PgConnection during(conninfo(proxy));
  if (during.ok()) {
    const PgResult d = during.exec("SELECT 1");
    const std::vector<std::string> d_states = during.error_sqlstates();
    EXPECT_EQ(d.sqlstate().empty() && !d_states.empty() ? d_states.front() : d.sqlstate(), "08006")
        << PQerrorMessage(during.get());
    EXPECT_NE(std::string(PQerrorMessage(during.get())).find("s0"), std::string::npos) << PQerrorMessage(during.get());
  } else {
    EXPECT_EQ(during.connect_sqlstate(), "08006") << during.error();
    EXPECT_NE(during.error().find("s0"), std::string::npos) << during.error();
  }
  EXPECT_LT(seconds_since(started), 3.0);

  cluster().start_server(*home);
  PgConnection after(conninfo(proxy));
  ASSERT_TRUE(after.ok()) << after.error();
  EXPECT_EQ(after.value("SELECT 'back'"), "back");
  EXPECT_EQ(after.server_port(), cluster().primary_port(0));
  if (before.ok()) {
    EXPECT_EQ(before.value("SELECT 'old client back'"), "old client back");
  }
  if (during.ok()) {
    EXPECT_EQ(during.value("SELECT 'during client back'"), "during client back");
  }
}

}  // namespace
