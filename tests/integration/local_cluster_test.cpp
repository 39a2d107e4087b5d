// LocalCluster and the integration fixture against real PostgreSQL servers: every server answers
// on its own port in its own role, replication streams, a work dir is reused or rebuilt as it
// should be, and the ProxyProcess plumbing reports what a child proxy did.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <pqxx/pqxx>
#include <string>
#include <thread>

#include "config/loader.hpp"
#include "tests/integration/support/cluster_fixture.hpp"

namespace {

namespace fs = std::filesystem;
using shardline::control::LocalCluster;
using shardline::control::LocalClusterOptions;
using shardline::control::ServerInfo;
using shardline::testing::ProxyProcess;
using shardline::testing::test_cluster;

LocalCluster& cluster() { return test_cluster({.shards = 2, .replicas = 1}); }

int shard_index(const ServerInfo& s) { return std::stoi(s.shard.substr(1)); }

/// Polls `query` (one value) on `conninfo` until it returns `expected` or `timeout` passes;
/// returns the last value seen.
std::string poll_value(const std::string& conninfo, const std::string& query,
                       const std::string& expected,
                       std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last;
  while (true) {
    try {
      pqxx::connection c(conninfo);
      pqxx::nontransaction tx(c);
      const auto r = tx.exec(query);
      last = r.empty() || r[0][0].is_null() ? "<none>" : r[0][0].c_str();
    } catch (const std::exception& e) {
      last = std::string("error: ") + e.what();
    }
    if (last == expected || std::chrono::steady_clock::now() > deadline) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string system_identifier(const LocalCluster& c, int shard) {
  pqxx::connection conn(c.superuser_conninfo(shard));
  pqxx::nontransaction tx(conn);
  return tx.exec1("SELECT system_identifier::text FROM pg_control_system()")[0].c_str();
}

/// A fresh directory under /tmp for tests that build clusters of their own.
struct TempDir {
  TempDir() {
    std::string tmpl = "/tmp/shardline-lc-test-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
    // mkdtemp makes it 0700; the servers' OS user (postgres, when run as root) must traverse it.
    fs::permissions(path, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                              fs::perms::others_read | fs::perms::others_exec);
  }
  ~TempDir() {
    std::error_code ec;
    LocalCluster::shutdown_dir(path);
    fs::remove_all(path, ec);
  }
  fs::path path;
};

TEST(LocalCluster, EveryServerAnswersOnItsPortInItsRole) {
  LocalCluster& c = cluster();
  ASSERT_EQ(c.servers().size(), 4u);
  const std::uint16_t base = c.options().base_port;
  EXPECT_EQ(c.primary_port(0), base);
  EXPECT_EQ(c.replica_port(0, 0), base + 1);
  EXPECT_EQ(c.primary_port(1), base + 10);
  EXPECT_EQ(c.replica_port(1, 0), base + 11);
  for (const ServerInfo& s : c.servers()) {
    SCOPED_TRACE(s.name());
    pqxx::connection conn(c.conninfo(shard_index(s), s.replica));
    pqxx::nontransaction tx(conn);
    const auto row = tx.exec1(
        "SELECT pg_is_in_recovery(), inet_server_port(), current_setting('wal_level'), "
        "current_user, current_database(), current_setting('max_prepared_transactions')::int");
    EXPECT_EQ(row[0].as<bool>(), !s.is_primary());
    EXPECT_EQ(row[1].as<int>(), s.port);
    EXPECT_EQ(row[2].as<std::string>(), "logical");
    EXPECT_EQ(row[3].as<std::string>(), "app");
    EXPECT_EQ(row[4].as<std::string>(), "app");
    EXPECT_GT(row[5].as<int>(), 0);
    EXPECT_TRUE(fs::exists(c.options().dir / (s.name() + ".log")));
  }
}

TEST(LocalCluster, AppUserAuthenticatesWithScramOnly) {
  LocalCluster& c = cluster();
  {
    pqxx::connection su(c.superuser_conninfo(0));
    pqxx::nontransaction tx(su);
    const auto row = tx.exec1(
        "SELECT rolpassword LIKE 'SCRAM-SHA-256$%', rolreplication, rolsuper FROM pg_authid "
        "WHERE rolname = 'app'");
    EXPECT_TRUE(row[0].as<bool>());
    EXPECT_TRUE(row[1].as<bool>());
    EXPECT_FALSE(row[2].as<bool>());
    EXPECT_EQ(tx.exec1("SELECT current_user, inet_server_port() IS NULL")[0].as<std::string>(),
              "postgres");
  }
  const std::string wrong = "host=127.0.0.1 port=" + std::to_string(c.primary_port(1)) +
                            " user=app password=wrong dbname=app";
  try {
    pqxx::connection conn(wrong);
    FAIL() << "a wrong password was accepted";
  } catch (const pqxx::broken_connection& e) {
    EXPECT_NE(std::string(e.what()).find("password authentication failed"), std::string::npos)
        << e.what();
  }
}

TEST(LocalCluster, WritesOnEachPrimaryReachItsReplicaOnly) {
  LocalCluster& c = cluster();
  for (int shard = 0; shard < 2; ++shard) {
    pqxx::connection conn(c.conninfo(shard));
    pqxx::work tx(conn);
    tx.exec0("DROP TABLE IF EXISTS lc_marker");
    tx.exec0("CREATE TABLE lc_marker (id int PRIMARY KEY, written_on text)");
    tx.exec0("INSERT INTO lc_marker VALUES (1, 's" + std::to_string(shard) + "')");
    tx.commit();
  }
  for (int shard = 0; shard < 2; ++shard) {
    SCOPED_TRACE("shard " + std::to_string(shard));
    EXPECT_EQ(poll_value(c.conninfo(shard, 0), "SELECT written_on FROM lc_marker WHERE id = 1",
                         "s" + std::to_string(shard)),
              "s" + std::to_string(shard));
    // The replica refuses writes: it really is a standby, not a second primary.
    pqxx::connection replica(c.conninfo(shard, 0));
    pqxx::work tx(replica);
    EXPECT_THROW(tx.exec0("INSERT INTO lc_marker VALUES (2, 'replica')"), pqxx::sql_error);
  }
  // Each primary streams to exactly one replica, which reports the cluster's own name.
  for (int shard = 0; shard < 2; ++shard) {
    pqxx::connection su(c.superuser_conninfo(shard));
    pqxx::nontransaction tx(su);
    const auto r = tx.exec("SELECT application_name, state FROM pg_stat_replication");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0][0].as<std::string>(), "s" + std::to_string(shard) + "r0");
    EXPECT_EQ(r[0][1].as<std::string>(), "streaming");
  }
}

TEST(LocalCluster, StoppedReplicaCatchesUpAfterRestart) {
  LocalCluster& c = cluster();
  const ServerInfo replica = c.servers().at(3);  // s1r0
  ASSERT_EQ(replica.name(), "s1r0");
  {
    pqxx::connection conn(c.conninfo(1));
    pqxx::work tx(conn);
    tx.exec0("CREATE TABLE IF NOT EXISTS lc_restart (n int)");
    tx.exec0("TRUNCATE lc_restart");
    tx.commit();
  }
  c.stop_server(replica);
  EXPECT_THROW(pqxx::connection(c.conninfo(1, 0)), pqxx::broken_connection);
  {
    pqxx::connection conn(c.conninfo(1));  // the primary keeps working alone
    pqxx::work tx(conn);
    tx.exec0("INSERT INTO lc_restart SELECT generate_series(1, 1000)");
    tx.commit();
  }
  c.start_server(replica);
  EXPECT_EQ(poll_value(c.conninfo(1, 0), "SELECT count(*) FROM lc_restart", "1000"), "1000");
  pqxx::connection conn(c.conninfo(1, 0));
  pqxx::nontransaction tx(conn);
  const auto row = tx.exec1("SELECT pg_is_in_recovery(), inet_server_port()");
  EXPECT_TRUE(row[0].as<bool>());
  EXPECT_EQ(row[1].as<int>(), replica.port);
}

TEST(LocalCluster, SecondClusterOnTheSameDirReusesIt) {
  LocalCluster& c = cluster();
  const std::string id0 = system_identifier(c, 0);
  const std::string id1 = system_identifier(c, 1);
  const ServerInfo replica = c.servers().at(1);  // s0r0
  c.stop_server(replica);
  {
    LocalCluster again(c.options());
    const auto t0 = std::chrono::steady_clock::now();
    again.start();  // starts only the stopped replica, rebuilds nothing
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - t0)
                        .count();
    std::printf("reusing the dir took %lld ms\n", static_cast<long long>(ms));
    EXPECT_EQ(system_identifier(again, 0), id0);
    EXPECT_EQ(system_identifier(again, 1), id1);
    EXPECT_EQ(poll_value(again.conninfo(0, 0), "SELECT inet_server_port()::text",
                         std::to_string(replica.port)),
              std::to_string(replica.port));
    again.start();  // idempotent
  }
  // `again` stopped the replica it started, and nothing else.
  EXPECT_THROW(pqxx::connection(c.conninfo(0, 0)), pqxx::broken_connection);
  EXPECT_EQ(poll_value(c.conninfo(0), "SELECT inet_server_port()::text",
                       std::to_string(c.primary_port(0))),
            std::to_string(c.primary_port(0)));
  c.start_server(replica);
  EXPECT_EQ(poll_value(c.conninfo(0, 0), "SELECT written_on FROM lc_marker WHERE id = 1", "s0"),
            "s0");
}

TEST(LocalCluster, MismatchedDirIsRebuiltAndForeignDirIsRefused) {
  TempDir tmp;
  LocalClusterOptions options;
  options.dir = tmp.path / "c";
  options.shards = 1;
  options.replicas = 0;
  options.base_port = shardline::testing::free_port_block(20);
  std::string first_id;
  {
    LocalCluster one(options);
    one.start();
    first_id = system_identifier(one, 0);
  }  // stopped
  options.base_port = static_cast<std::uint16_t>(options.base_port + 10);
  options.extra_conf = {"application_name = 'rebuilt'"};
  {
    LocalCluster two(options);
    two.start();
    EXPECT_NE(system_identifier(two, 0), first_id);
    pqxx::connection conn(two.conninfo(0));
    pqxx::nontransaction tx(conn);
    const auto row = tx.exec1("SELECT inet_server_port(), current_setting('application_name')");
    EXPECT_EQ(row[0].as<int>(), options.base_port);
    EXPECT_EQ(row[1].as<std::string>(), "rebuilt");
  }
  // A dir holding a server-like entry that LocalCluster did not make is never deleted.
  fs::create_directories(tmp.path / "foreign" / "s0");
  std::ofstream(tmp.path / "foreign" / "s0" / "precious.txt") << "keep me\n";
  LocalClusterOptions foreign = options;
  foreign.dir = tmp.path / "foreign";
  LocalCluster three(foreign);
  try {
    three.start();
    FAIL() << "start() took over a dir it did not create";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not made by LocalCluster"), std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(fs::exists(tmp.path / "foreign" / "s0" / "precious.txt"));
}

TEST(LocalCluster, TakenPortIsReportedAndTheDirIsKept) {
  TempDir tmp;
  LocalClusterOptions options;
  options.dir = tmp.path / "c";
  options.shards = 1;
  options.replicas = 0;
  options.base_port = shardline::testing::free_port_block(10);
  std::string id;
  {
    LocalCluster c(options);
    c.start();
    id = system_identifier(c, 0);
  }
  {
    // Someone else now listens on the primary's port.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(options.base_port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(fd, 1), 0);
    LocalCluster c(options);
    try {
      c.start();
      ADD_FAILURE() << "start() succeeded on a taken port";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("port " + std::to_string(options.base_port) +
                                           " of server s0 is in use"),
                std::string::npos)
          << e.what();
    }
    ::close(fd);
  }
  LocalCluster c(options);
  c.start();
  EXPECT_EQ(system_identifier(c, 0), id);  // the same data, not a rebuilt cluster
}

TEST(LocalCluster, BadOptionsAreRejectedWithTheirName) {
  auto message = [](LocalClusterOptions o) -> std::string {
    try {
      LocalCluster c(std::move(o));
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "accepted";
  };
  LocalClusterOptions o;
  o.dir = "/tmp/shardline-never-created";
  EXPECT_EQ(message(o), "accepted");
  o.shards = 0;
  EXPECT_NE(message(o).find("shards"), std::string::npos);
  o.shards = 2;
  o.replicas = 10;
  EXPECT_NE(message(o).find("replicas"), std::string::npos);
  o.replicas = 1;
  o.base_port = 65530;
  EXPECT_NE(message(o).find("65535"), std::string::npos);
  o.base_port = 15400;
  o.password = "";
  EXPECT_NE(message(o).find("password"), std::string::npos);
  o.password = "secret";
  o.extra_conf = {"a = 1\nb = 2"};
  EXPECT_NE(message(o).find("extra_conf"), std::string::npos);
  o.extra_conf = {};
  o.dir = "/tmp/" + std::string(120, 'd');
  EXPECT_NE(message(o).find("too long"), std::string::npos);
  EXPECT_FALSE(fs::exists("/tmp/shardline-never-created"));
}

TEST(LocalCluster, ConfigYamlLoadsAndDescribesTheCluster) {
  LocalCluster& c = cluster();
  const auto result = shardline::config::parse_config(c.config_yaml(16432), "generated.yaml");
  std::string problems;
  for (const auto& d : result.problems) problems += d.str() + "\n";
  ASSERT_TRUE(result.ok()) << problems << c.config_yaml(16432);
  const auto& cfg = *result.config;
  EXPECT_EQ(cfg.listen.port, 16432);
  EXPECT_EQ(cfg.admin.http_port, 0);
  ASSERT_EQ(cfg.users.size(), 1u);
  EXPECT_EQ(cfg.users[0].name, "app");
  EXPECT_EQ(cfg.backend.password, "secret");
  EXPECT_EQ(cfg.sharding.logical_shards, 1024);
  ASSERT_EQ(cfg.directory.size(), 2u);
  EXPECT_EQ(cfg.directory[0].first, 0);
  EXPECT_EQ(cfg.directory[0].last, 511);
  EXPECT_EQ(cfg.directory[1].first, 512);
  EXPECT_EQ(cfg.directory[1].last, 1023);
  ASSERT_EQ(cfg.shards.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(cfg.shards[i].name, "s" + std::to_string(i));
    EXPECT_EQ(cfg.shards[i].primary.port, c.primary_port(i));
    ASSERT_EQ(cfg.shards[i].replicas.size(), 1u);
    EXPECT_EQ(cfg.shards[i].replicas[0].port, c.replica_port(i, 0));
  }
}

TEST(LocalCluster, ConfigYamlSplitsLogicalShardsWithoutGaps) {
  LocalClusterOptions o;
  o.dir = "/tmp/shardline-never-created";
  o.shards = 3;
  o.replicas = 0;
  o.password = "p\"w'd";
  const auto result = shardline::config::parse_config(LocalCluster(o).config_yaml(1), "three");
  ASSERT_TRUE(result.ok());
  const auto& dir = result.config->directory;
  ASSERT_EQ(dir.size(), 3u);
  EXPECT_EQ(dir[0].first, 0);
  EXPECT_EQ(dir[1].first, dir[0].last + 1);
  EXPECT_EQ(dir[2].first, dir[1].last + 1);
  EXPECT_EQ(dir[2].last, 1023);
  EXPECT_EQ(result.config->users.at(0).password, "p\"w'd");
  EXPECT_TRUE(result.config->shards.at(2).replicas.empty());
}

/// A stand-in proxy (python3) that listens on the config's port: tests ProxyProcess itself,
/// which the real proxy's tests rely on.
fs::path write_fake_proxy(const fs::path& dir, bool fail) {
  const fs::path script = dir / "fake-proxy";
  std::ofstream out(script);
  out << "#!/usr/bin/env python3\n"
         "import re, socket, sys\n"
         "print('fake proxy args:', ' '.join(sys.argv[1:]), file=sys.stderr, flush=True)\n";
  if (fail) {
    out << "print('fatal: config rejected', file=sys.stderr)\nsys.exit(3)\n";
  } else {
    out << "port = int(re.search(r'port: (\\d+)', open(sys.argv[3]).read()).group(1))\n"
           "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
           "s.bind(('127.0.0.1', port)); s.listen()\n"
           "print('listening on', port, file=sys.stderr, flush=True)\n"
           "while True: s.accept()[0].close()\n";
  }
  out.close();
  fs::permissions(script, fs::perms::owner_all);
  return script;
}

TEST(ProxyProcess, WaitsForThePortAndStopsTheChild) {
  TempDir tmp;
  const std::uint16_t port = shardline::testing::free_port();
  ProxyProcess proxy("listen: {host: 127.0.0.1, port: " + std::to_string(port) + "}\n",
                     write_fake_proxy(tmp.path, false));
  EXPECT_EQ(proxy.port(), port);
  EXPECT_NE(proxy.log().find("fake proxy args: serve --config /tmp/shardline-proxy-"),
            std::string::npos)
      << proxy.log();
  EXPECT_NE(proxy.log().find("listening on " + std::to_string(port)), std::string::npos);
  EXPECT_NE(proxy.conninfo().find("port=" + std::to_string(port)), std::string::npos);
  EXPECT_EQ(proxy.wait_exit(std::chrono::milliseconds(50)), -1);  // still running
  proxy.signal(SIGTERM);
  EXPECT_EQ(proxy.wait_exit(std::chrono::seconds(10)), 128 + SIGTERM);
  EXPECT_THROW(proxy.signal(SIGTERM), std::logic_error);
}

TEST(ProxyProcess, ReportsAProxyThatDiesBeforeListening) {
  TempDir tmp;
  try {
    ProxyProcess proxy("listen: {port: " + std::to_string(shardline::testing::free_port()) + "}\n",
                       write_fake_proxy(tmp.path, true));
    FAIL() << "a proxy that exited was reported as started";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("exited with code 3"), std::string::npos) << what;
    EXPECT_NE(what.find("fatal: config rejected"), std::string::npos) << what;
  }
  EXPECT_THROW(ProxyProcess("listen: {port: 1}\n", tmp.path / "no-such-binary"),
               std::runtime_error);
}

}  // namespace
