// The proxy's process lifecycle against real PostgreSQL (SPEC section 9): SIGHUP reloads a valid
// config and keeps the old one when the new file is broken; SIGTERM stops accepting, lets an
// open transaction commit, tells idle clients 57P01, and exits with code 0.

#include <signal.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"

namespace {

using namespace std::chrono_literals;
using shardline::control::LocalCluster;
using shardline::testing::free_port;
using shardline::testing::PgConnection;
using shardline::testing::PgResult;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using Clock = std::chrono::steady_clock;

LocalCluster& cluster() {
  shardline::testing::ClusterSpec spec;
  spec.shards = 1;
  spec.replicas = 0;
  return shardline::testing::test_cluster(spec);
}

std::string conninfo(const ProxyProcess& proxy, const std::string& db = "app") {
  return proxy.conninfo("app", "secret", db) + " sslmode=disable gssencmode=disable connect_timeout=5";
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

/// SHOW CONFIG's value for `key` on the admin console, "" if the row is missing.
std::string show_config(const ProxyProcess& proxy, const std::string& key) {
  PgConnection admin(conninfo(proxy, "shardline"));
  if (!admin.ok()) throw std::runtime_error("admin console: " + admin.error());
  const PgResult r = admin.exec("SHOW CONFIG");
  if (r.status() != PGRES_TUPLES_OK) throw std::runtime_error("SHOW CONFIG: " + r.describe());
  for (int i = 0; i < r.rows(); ++i)
    if (r.value(i, 0) == key) return r.value(i, 1);
  return "";
}

/// SHOW POOLS' pool_size for s0's primary.
std::string shown_pool_size(const ProxyProcess& proxy) {
  PgConnection admin(conninfo(proxy, "shardline"));
  const PgResult r = admin.exec("SHOW POOLS");
  if (r.status() != PGRES_TUPLES_OK) throw std::runtime_error("SHOW POOLS: " + r.describe());
  int col = -1;
  for (int c = 0; c < r.columns(); ++c)
    if (r.column_name(c) == "pool_size") col = c;
  for (int i = 0; i < r.rows() && col >= 0; ++i)
    if (r.value(i, 0) == "s0" && r.value(i, 1) == "primary") return r.value(i, col);
  return "";
}

TEST(ProxyLifecycle, SighupKeepsOldConfigWhenBrokenAndAppliesValidChange) {
  ProxyConfig cfg(cluster(), free_port());
  cfg.pool_size(3);
  ProxyProcess proxy(cfg.yaml());
  PgConnection client(conninfo(proxy));
  ASSERT_TRUE(client.ok()) << client.error();
  ASSERT_EQ(show_config(proxy, "pool.size"), "3");

  // Broken: a YAML syntax error and, in a second round, a config that parses but is invalid.
  for (const std::string& broken : {std::string("pool: {size: 7\nlisten: [unclosed\n"),
                                   cfg.yaml() + "no_such_section: true\n"}) {
    write_file(proxy.config_path(), broken);
    proxy.signal(SIGHUP);
    std::this_thread::sleep_for(300ms);
    ASSERT_EQ(proxy.wait_exit(0ms), -1) << "the proxy exited on a broken reload";
    EXPECT_EQ(client.value("SELECT 'still serving'"), "still serving");
    PgConnection fresh(conninfo(proxy));
    ASSERT_TRUE(fresh.ok()) << fresh.error();
    EXPECT_EQ(fresh.server_port(), cluster().primary_port(0));
    EXPECT_EQ(show_config(proxy, "pool.size"), "3");
    EXPECT_EQ(shown_pool_size(proxy), "3");
  }

  // Valid: the new pool size shows up and is enforced by the pool.
  ProxyConfig changed(cluster(), proxy.port());
  changed.pool_size(7).query_wait_timeout_ms(4000);
  write_file(proxy.config_path(), changed.yaml());
  proxy.signal(SIGHUP);
  const auto deadline = Clock::now() + 5s;
  while (show_config(proxy, "pool.size") != "7" && Clock::now() < deadline) std::this_thread::sleep_for(50ms);
  EXPECT_EQ(show_config(proxy, "pool.size"), "7");
  EXPECT_EQ(show_config(proxy, "pool.query_wait_timeout_ms"), "4000");
  EXPECT_EQ(shown_pool_size(proxy), "7");
  EXPECT_EQ(client.value("SELECT 'after reload'"), "after reload");
}

TEST(ProxyLifecycle, SigtermLetsOpenTransactionCommitThenExitsZero) {
  ProxyConfig cfg(cluster(), free_port());
  cfg.shutdown_timeout_ms(15000);
  ProxyProcess proxy(cfg.yaml());
  PgConnection busy(conninfo(proxy));
  PgConnection idle(conninfo(proxy));
  ASSERT_TRUE(busy.ok()) << busy.error();
  ASSERT_TRUE(idle.ok()) << idle.error();
  ASSERT_TRUE(busy.exec("DROP TABLE IF EXISTS shutdown_t").ok());
  ASSERT_TRUE(busy.exec("CREATE TABLE shutdown_t (v text)").ok());
  EXPECT_EQ(idle.value("SELECT 'idle client ready'"), "idle client ready");

  ASSERT_TRUE(busy.exec("BEGIN").ok());
  ASSERT_TRUE(busy.exec("INSERT INTO shutdown_t VALUES ('before sigterm')").ok());
  proxy.signal(SIGTERM);

  // The idle client is told at once: 57P01, then the connection closes.
  bool told = false;
  const auto deadline = Clock::now() + 5s;
  while (!told && Clock::now() < deadline) {
    idle.wait_input(100ms);
    for (const auto& s : idle.async_sqlstates()) told = told || s == "57P01";
  }
  EXPECT_TRUE(told) << "the idle client did not get 57P01 after SIGTERM (it got: "
                    << ::testing::PrintToString(idle.async_sqlstates()) << ", connection "
                    << (PQstatus(idle.get()) == CONNECTION_OK ? "open" : "closed") << ")";
  const PgResult idle_query = idle.exec("SELECT 1");
  EXPECT_NE(idle_query.status(), PGRES_TUPLES_OK)
      << "an idle client could still run queries during shutdown: " << idle_query.describe();
  if (!told) ADD_FAILURE() << "what the idle client's next query got instead: " << PQerrorMessage(idle.get());
  EXPECT_NE(PQstatus(idle.get()), CONNECTION_OK) << "the idle client's connection stayed open";

  // New connections are refused (the listener is closed).
  const auto refuse_deadline = Clock::now() + 3s;
  bool refused = false;
  while (!refused && Clock::now() < refuse_deadline) {
    PgConnection late(conninfo(proxy), 2s);
    refused = !late.ok();
    if (!refused) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(refused) << "the proxy still accepted new clients after SIGTERM";

  // The open transaction goes on and commits.
  ASSERT_EQ(proxy.wait_exit(0ms), -1) << "the proxy exited with a transaction still open";
  const PgResult more = busy.exec("INSERT INTO shutdown_t VALUES ('after sigterm')");
  EXPECT_TRUE(more.ok()) << more.describe();
  const PgResult commit = busy.exec("COMMIT");
  EXPECT_EQ(commit.status(), PGRES_COMMAND_OK) << commit.describe();

  EXPECT_EQ(proxy.wait_exit(10s), 0) << "the proxy did not exit cleanly once the transaction ended";
  PgConnection direct(cluster().superuser_conninfo(0));
  EXPECT_EQ(direct.value("SELECT string_agg(v, ',' ORDER BY v) FROM shutdown_t"), "after sigterm,before sigterm");
  direct.exec("DROP TABLE shutdown_t");
}

}  // namespace
