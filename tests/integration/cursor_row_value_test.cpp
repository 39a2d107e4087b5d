// Cursors and row-value predicates through the proxy over two shards, as real drivers send them
// (psycopg 3 named cursors, SQLAlchemy's selectinload on a composite key): a DECLARE runs on its
// tenant's shard and FETCH/MOVE/CLOSE follow it there, `(tenant_id, id) IN ((t, 1), ...)` goes
// to t's shard. Which shard holds a tenant is read from the shards' own data (rows inserted
// through the proxy, then found by connecting to each shard directly); which server answered,
// from inet_server_port().

#include <libpq-fe.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "router/sharding/shard_key.hpp"
#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"

namespace {

using shardline::config::PoolMode;
using shardline::control::LocalCluster;
using shardline::testing::free_port;
using shardline::testing::PgConnection;
using shardline::testing::PgResult;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using shardline::testing::ShardedTableSpec;

constexpr int kShards = 2;
constexpr int kRowsPerTenant = 20;

LocalCluster& cluster() {
  shardline::testing::ClusterSpec spec;
  spec.shards = kShards;
  return shardline::testing::test_cluster(spec);
}

PgConnection connect_shard(int i) {
  PgConnection c(cluster().conninfo(i));
  if (!c.ok()) throw std::runtime_error(fmt::format("cannot connect to shard {}: {}", i, c.error()));
  return c;
}

using shardline::testing::must;

std::string setup_and_config(PoolMode mode) {
  static const bool created = [] {
    for (int s = 0; s < kShards; ++s) {
      PgConnection c = connect_shard(s);
      must(c, "DROP TABLE IF EXISTS cr_items");
      must(c, "CREATE TABLE cr_items (tenant_id bigint, id int, note text, PRIMARY KEY (tenant_id, id))");
    }
    return true;
  }();
  (void)created;
  ProxyConfig cfg(cluster(), free_port());
  cfg.pool_mode(mode);
  cfg.sharded_table(ShardedTableSpec{"cr_items", "", ""});
  return cfg.yaml();
}

ProxyProcess& proxy() {  // transaction pooling
  static ProxyProcess p(setup_and_config(PoolMode::Transaction));
  return p;
}

ProxyProcess& session_proxy() {
  static ProxyProcess p(setup_and_config(PoolMode::Session));
  return p;
}

PgConnection connect(const ProxyProcess& p) {
  PgConnection c(p.conninfo() + " sslmode=disable gssencmode=disable connect_timeout=5");
  if (!c.ok()) throw std::runtime_error("cannot connect to the proxy: " + c.error());
  return c;
}

/// The first tenant >= `from` the router's hash puts on `shard`: only a way to pick tenants on
/// both shards; where their rows really are is read from the shards below.
std::int64_t pick_tenant(int shard, std::int64_t from) {
  for (std::int64_t t = from;; ++t)
    if (shardline::router::logical_shard_of_int(t, 1024) * kShards / 1024 == shard) return t;
}

struct Tenants {
  std::int64_t t[kShards];
  int home[kShards];  ///< the shard holding t[i]'s rows, from the shards' data
};

/// Inserts kRowsPerTenant rows for a tenant on each shard through the proxy (once), and finds
/// on which shard each tenant's rows are by asking every shard directly.
const Tenants& tenants() {
  static const Tenants ts = [] {
    Tenants out{};
    PgConnection c = connect(proxy());
    for (int s = 0; s < kShards; ++s) {
      out.t[s] = pick_tenant(s, 1000 + 1000 * s);
      for (int id = 1; id <= kRowsPerTenant; ++id)
        must(c, fmt::format("INSERT INTO cr_items (tenant_id, id, note) VALUES ({}, {}, 'n{}')", out.t[s], id, id));
    }
    for (int i = 0; i < kShards; ++i) {
      out.home[i] = -1;
      for (int s = 0; s < kShards; ++s) {
        const auto n = std::stoi(connect_shard(s).value(fmt::format("SELECT count(*) FROM cr_items WHERE tenant_id = {}", out.t[i])));
        if (n == kRowsPerTenant) out.home[i] = s;
        else if (n != 0) throw std::runtime_error(fmt::format("tenant {} has {} rows on shard {}", out.t[i], n, s));
      }
      if (out.home[i] < 0) throw std::runtime_error(fmt::format("tenant {}'s rows are on no shard", out.t[i]));
    }
    if (out.home[0] == out.home[1]) throw std::runtime_error("both tenants live on one shard");
    return out;
  }();
  return ts;
}

int port_of(int shard) { return cluster().primary_port(shard); }

/// (id, port) of every row of a result whose columns are id, inet_server_port().
std::vector<std::pair<int, int>> id_ports(const PgResult& r) {
  if (r.status() != PGRES_TUPLES_OK) throw std::runtime_error(r.describe());
  std::vector<std::pair<int, int>> out;
  for (int i = 0; i < r.rows(); ++i) out.emplace_back(std::stoi(r.value(i, 0)), std::stoi(r.value(i, 1)));
  return out;
}

std::vector<std::pair<int, int>> expected(std::vector<int> ids, int shard) {
  std::vector<std::pair<int, int>> out;
  for (int id : ids) out.emplace_back(id, port_of(shard));
  return out;
}

// ---- row values -------------------------------------------------------------------------------

TEST(RowValues, CompositeKeyInListGoesToTheTenantsShard) {
  const Tenants& ts = tenants();
  PgConnection c = connect(proxy());
  for (int i = 0; i < kShards; ++i) {
    const std::int64_t t = ts.t[i];
    SCOPED_TRACE(fmt::format("tenant {} on shard {}", t, ts.home[i]));
    // SQLAlchemy's selectinload, ORDER BY included (refused if the statement scattered).
    EXPECT_EQ(id_ports(c.exec(fmt::format("SELECT id, inet_server_port() FROM cr_items WHERE (tenant_id, id) IN "
                                          "(({0}, 1), ({0}, 2), ({0}, 3)) ORDER BY id", t))),
              expected({1, 2, 3}, ts.home[i]));
    EXPECT_EQ(id_ports(c.exec_params("SELECT id, inet_server_port() FROM cr_items WHERE (tenant_id, id) IN "
                                     "(($1, $2), ($3, $4)) ORDER BY id",
                                     {std::to_string(t), "7", std::to_string(t), "4"})),
              expected({4, 7}, ts.home[i]));
    EXPECT_EQ(id_ports(c.exec(fmt::format("SELECT id, inet_server_port() FROM cr_items WHERE (id, tenant_id) = (5, {})", t))),
              expected({5}, ts.home[i]));
    EXPECT_EQ(id_ports(c.exec_params("SELECT id, inet_server_port() FROM cr_items WHERE ROW(tenant_id, id) = ROW($1, $2)",
                                     {std::to_string(t), "6"})),
              expected({6}, ts.home[i]));
  }
  // Two tenants on two shards: both shards answer, each with its own tenant's row.
  const PgResult both = c.exec(fmt::format(
      "SELECT id, inet_server_port() FROM cr_items WHERE (tenant_id, id) IN (({}, 8), ({}, 9))", ts.t[0], ts.t[1]));
  auto got = id_ports(both);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::pair<int, int>>{{8, port_of(ts.home[0])}, {9, port_of(ts.home[1])}}));
}

TEST(RowValues, CompositeKeyDeleteRemovesRowsOnTheTenantsShardOnly) {
  const Tenants& ts = tenants();
  PgConnection c = connect(proxy());
  const std::int64_t t = ts.t[1];
  must(c, fmt::format("INSERT INTO cr_items (tenant_id, id, note) VALUES ({0}, 901, 'd'), ({0}, 902, 'd')", t));
  // Inside a transaction, which a statement on several shards could not join.
  must(c, "BEGIN");
  const PgResult r = c.exec(fmt::format("DELETE FROM cr_items WHERE (tenant_id, id) IN (({0}, 901), ({0}, 902))", t));
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.cmd_tuples(), "2");
  EXPECT_EQ(std::stoi(c.value("SELECT inet_server_port()")), port_of(ts.home[1]));
  must(c, "COMMIT");
  for (int s = 0; s < kShards; ++s)
    EXPECT_EQ(connect_shard(s).value("SELECT count(*) FROM cr_items WHERE id > 900"), "0") << "shard " << s;
}

// ---- cursors ----------------------------------------------------------------------------------

TEST(Cursors, DeclareFetchMoveCloseRunOnTheTenantsShard) {
  const Tenants& ts = tenants();
  for (int i = 0; i < kShards; ++i) {
    const std::int64_t t = ts.t[i];
    SCOPED_TRACE(fmt::format("tenant {} on shard {}", t, ts.home[i]));
    PgConnection c = connect(proxy());
    must(c, "BEGIN");
    must(c, fmt::format("DECLARE c SCROLL CURSOR FOR SELECT id, inet_server_port() FROM cr_items WHERE tenant_id = {} "
                        "ORDER BY id", t));
    EXPECT_EQ(id_ports(c.exec("FETCH 3 FROM c")), expected({1, 2, 3}, ts.home[i]));
    must(c, "MOVE 2 IN c");
    EXPECT_EQ(id_ports(c.exec("FETCH NEXT FROM c")), expected({6}, ts.home[i]));
    EXPECT_EQ(id_ports(c.exec("FETCH ABSOLUTE 15 FROM c")), expected({15}, ts.home[i]));
    EXPECT_EQ(id_ports(c.exec("FETCH PRIOR FROM c")), expected({14}, ts.home[i]));
    must(c, "CLOSE c");
    EXPECT_EQ(std::stoi(c.value("SELECT inet_server_port()")), port_of(ts.home[i])) << "the transaction moved";
    // Extended protocol, the tenant as a parameter (psycopg 3 named cursors).
    const PgResult d = c.exec_params(
        "DECLARE \"named\" CURSOR FOR SELECT id, inet_server_port() FROM cr_items WHERE tenant_id = $1 ORDER BY id",
        {std::to_string(t)});
    ASSERT_TRUE(d.ok()) << d.describe();
    std::vector<int> all(kRowsPerTenant);
    for (int k = 0; k < kRowsPerTenant; ++k) all[std::size_t(k)] = k + 1;
    EXPECT_EQ(id_ports(c.exec("FETCH ALL FROM \"named\"")), expected(all, ts.home[i]));
    must(c, "COMMIT");
  }
}

TEST(Cursors, ACursorOverSeveralShardsIsRefused) {
  PgConnection c = connect(proxy());
  must(c, "BEGIN");
  const PgResult r = c.exec("DECLARE c CURSOR FOR SELECT id FROM cr_items");
  EXPECT_EQ(r.sqlstate(), "0A000") << r.describe();
  EXPECT_NE(r.message().find("DECLARE CURSOR over several shards is not supported"), std::string::npos) << r.message();
  must(c, "ROLLBACK");
  EXPECT_EQ(c.value("SELECT 1"), "1");
}

TEST(Cursors, WithHoldIsRefusedInTransactionPoolingAndWorksInSessionPooling) {
  const Tenants& ts = tenants();
  const std::int64_t t = ts.t[1];
  const std::string declare = fmt::format(
      "DECLARE h CURSOR WITH HOLD FOR SELECT id, inet_server_port() FROM cr_items WHERE tenant_id = {} ORDER BY id", t);
  {
    PgConnection c = connect(proxy());
    must(c, "BEGIN");
    const PgResult r = c.exec(declare);
    EXPECT_EQ(r.sqlstate(), "0A000") << r.describe();
    EXPECT_NE(r.message().find("WITH HOLD is not supported with pool.mode: transaction"), std::string::npos) << r.message();
    must(c, "ROLLBACK");
    const PgResult outside = c.exec(declare);  // autocommit: the same answer
    EXPECT_EQ(outside.sqlstate(), "0A000") << outside.describe();
  }
  // Session pooling: the client keeps its server, so the cursor outlives the transaction. (The
  // session stays on the shard of its first statement: here the tenant's.)
  PgConnection c = connect(session_proxy());
  EXPECT_EQ(c.value(fmt::format("SELECT count(*) FROM cr_items WHERE tenant_id = {}", t)), std::to_string(kRowsPerTenant));
  must(c, "BEGIN");
  must(c, declare);
  must(c, "COMMIT");
  std::vector<int> all(kRowsPerTenant);
  for (int k = 0; k < kRowsPerTenant; ++k) all[std::size_t(k)] = k + 1;
  EXPECT_EQ(id_ports(c.exec("FETCH ALL FROM h")), expected(all, ts.home[1]));
  must(c, "CLOSE h");
  EXPECT_EQ(c.exec("FETCH ALL FROM h").sqlstate(), "34000") << "CLOSE did not reach the cursor's server";
}

}  // namespace
