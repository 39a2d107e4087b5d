// TLS from the proxy to its shards (backend.tls): required and refused when the server has no
// TLS, used when it has, and seen by PostgreSQL itself in pg_stat_ssl.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"

namespace {

namespace fs = std::filesystem;
using shardline::control::LocalCluster;
using shardline::testing::PgConnection;
using shardline::testing::ProxyProcess;

LocalCluster& cluster() {
  shardline::testing::ClusterSpec spec;
  spec.shards = 1;
  spec.replicas = 0;
  return shardline::testing::test_cluster(spec);
}

/// The cluster's own config with `backend.tls` set.
std::string config_with_backend_tls(const std::string& mode, std::uint16_t port) {
  std::string yaml = cluster().config_yaml(port);
  auto at = yaml.find("backend: {");
  EXPECT_NE(at, std::string::npos);
  auto end = yaml.find('}', at);
  EXPECT_NE(end, std::string::npos);
  yaml.insert(end, ", tls: " + mode);
  return yaml;
}

std::string conninfo(const ProxyProcess& p) { return p.conninfo() + " sslmode=disable connect_timeout=5"; }

/// Turns TLS on for the shard's primary with a fresh self-signed certificate.
void enable_server_tls() {
  const fs::path dir = cluster().options().dir / "backend-tls";
  fs::create_directories(dir);
  const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -keyout '" +
                          (dir / "server.key").string() + "' -out '" + (dir / "server.crt").string() +
                          "' >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  fs::permissions(dir / "server.key", fs::perms::owner_read | fs::perms::owner_write);
  if (::geteuid() == 0) {
    ASSERT_EQ(std::system(("chown -R postgres:postgres '" + dir.string() + "'").c_str()), 0);
  }
  PgConnection su(cluster().superuser_conninfo(0));
  ASSERT_TRUE(su.ok()) << su.error();
  su.exec("ALTER SYSTEM SET ssl_cert_file = '" + (dir / "server.crt").string() + "'");
  su.exec("ALTER SYSTEM SET ssl_key_file = '" + (dir / "server.key").string() + "'");
  su.exec("ALTER SYSTEM SET ssl = on");
  su.exec("SELECT pg_reload_conf()");
  for (int i = 0; i < 50 && su.value("SHOW ssl") != "on"; ++i) usleep(100 * 1000);
  ASSERT_EQ(su.value("SHOW ssl"), "on");
}

void disable_server_tls() {
  PgConnection su(cluster().superuser_conninfo(0));
  su.exec("ALTER SYSTEM RESET ssl");
  su.exec("ALTER SYSTEM RESET ssl_cert_file");
  su.exec("ALTER SYSTEM RESET ssl_key_file");
  su.exec("SELECT pg_reload_conf()");
}

TEST(BackendTls, RequireRefusesToStartWhenTheShardHasNoTls) {
  // backend.tls: require covers the control plane's catalog connection too, so the proxy stops
  // at start with the reason instead of serving over plain TCP.
  disable_server_tls();
  try {
    ProxyProcess proxy(config_with_backend_tls("require", shardline::testing::free_port()));
    ADD_FAILURE() << "the proxy started although its shard has no TLS and backend.tls is require";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("SSL was required"), std::string::npos) << e.what();
  }
}

TEST(BackendTls, RequireAndPreferEncryptTheServerConnection) {
  enable_server_tls();
  for (const char* mode : {"require", "prefer"}) {
    ProxyProcess proxy(config_with_backend_tls(mode, shardline::testing::free_port()));
    PgConnection c(conninfo(proxy));
    ASSERT_TRUE(c.ok()) << mode << ": " << c.error();
    // PostgreSQL's own view of the proxy's connection.
    EXPECT_EQ(c.value("SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), "true") << mode;
    EXPECT_EQ(c.value("SELECT 6 * 7"), "42");
  }
  {
    ProxyProcess plain(config_with_backend_tls("disable", shardline::testing::free_port()));
    PgConnection c(conninfo(plain));
    ASSERT_TRUE(c.ok()) << c.error();
    EXPECT_EQ(c.value("SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), "false");
  }
  disable_server_tls();
}

}  // namespace
