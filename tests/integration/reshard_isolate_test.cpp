// Hot tenant isolation end to end (SPEC.md section 8, issue 11): RESHARD ISOLATE TENANT while
// 8 clients write through two proxies sharing the catalog and readers re-read acknowledged
// rows; afterwards the pin routes the tenant to its new shard in both proxies for simple
// Query, extended-protocol binds (text and binary), hints and COPY, the rest of its logical
// shard stays where the hash says, and a move of that logical shard there and back leaves the
// pinned tenant alone. Also: pins of every key type route values written in any form
// PostgreSQL reads as the pinned value, and the canonical text agrees with PostgreSQL's own.

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "proxy/control/reshard_sql.hpp"
#include "router/sharding/shard_key.hpp"
#include "router/sharding/tenant_key.hpp"
#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"
#include "tests/integration/support/reshard_harness.hpp"

namespace {

using namespace std::chrono_literals;
using namespace shardline::testing;
using shardline::router::KeyType;
using Clock = std::chrono::steady_clock;

class ReshardIsolateTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { test_cluster(); }
  void SetUp() override {
    for (int s = 0; s < 2; ++s) {
      auto c = superuser(s);
      must(c, "DROP TABLE IF EXISTS items, pin_int4, pin_text, pin_uuid");
      must(c, "DROP SCHEMA IF EXISTS shardline CASCADE");
    }
  }
  static std::string config(std::uint16_t port) {
    ProxyConfig cfg(test_cluster(), port);
    cfg.sharded_table({"items", "", ""});
    cfg.sharded_table({"pin_int4", "k", ""});
    cfg.sharded_table({"pin_text", "k", ""});
    cfg.sharded_table({"pin_uuid", "k", ""});
    return cfg.yaml();
  }
  static std::string admin(const ProxyProcess& p) { return p.conninfo("app", "secret", "shardline"); }
  /// Rows of items on shard `s` for tenant `t`.
  static std::string rows_on(int s, std::int64_t t) {
    return superuser(s).value("SELECT count(*) FROM items WHERE tenant_id = " + std::to_string(t));
  }
};

/// The shard index the hash (the bootstrap directory: 0-511 on s0) gives logical shard `l`.
int hashed_shard(int l) { return l < kModulus / 2 ? 0 : 1; }

/// SHOW DIRECTORY's row for `tenant` as "shard/state", "" if it lists none.
std::string pin_row(const std::string& admin, const std::string& tenant) {
  PgConnection c(admin);
  auto r = c.exec("SHOW DIRECTORY");
  for (int i = 0; r.ok() && i < r.rows(); ++i)
    if (r.value(i, 4) == tenant) return r.value(i, 2) + "/" + r.value(i, 5);
  return "";
}

/// Waits until `admin`'s proxy lists `tenant` pinned to `shard`.
bool wait_pin(const std::string& admin, const std::string& tenant, const std::string& shard) {
  for (const auto deadline = Clock::now() + 10s; Clock::now() < deadline; std::this_thread::sleep_for(20ms))
    if (pin_row(admin, tenant) == shard + "/pinned") return true;
  return false;
}

/// Everything that must route the pinned tenant `t` to s1 through `proxy`, observed on the
/// shards: each statement inserts a row with its own id, which must land on s1 only.
void check_pin_routes(const ProxyProcess& proxy, std::int64_t t, std::int64_t neighbour, std::int64_t base) {
  const std::string ts = std::to_string(t);
  PgConnection c(proxy.conninfo());
  ASSERT_TRUE(c.ok()) << c.error();
  // Simple Query with the key in a form the key type's input function reads as t.
  must(c, fmt::format("INSERT INTO items VALUES ('  +{}', {}, 'simple')", ts, base + 1));
  // Extended protocol, text Bind.
  auto r = c.exec_params("INSERT INTO items VALUES ($1, $2, 'bind')", {ts, std::to_string(base + 2)});
  ASSERT_TRUE(r.ok()) << r.describe();
  // Extended protocol, binary int8 Bind.
  std::array<char, 8> key{};
  for (int i = 0; i < 8; ++i) key[std::size_t(i)] = char((std::uint64_t(t) >> (56 - 8 * i)) & 0xff);
  const std::string id = std::to_string(base + 3);
  const Oid types[2] = {20, 20};
  const char* values[2] = {key.data(), id.c_str()};
  const int lengths[2] = {8, int(id.size())};
  const int formats[2] = {1, 0};
  PgResult b(PQexecParams(c.get(), "INSERT INTO items VALUES ($1, $2, 'binary')", 2, types, values, lengths, formats, 0));
  ASSERT_TRUE(b.ok()) << b.describe();
  // Hints: a comment, and the session setting (a statement without the key).
  EXPECT_EQ(c.server_port(), test_cluster().primary_port(0)) << "no hint: the home shard";
  EXPECT_EQ(std::stoi(c.value("/* shardline: tenant=" + ts + " */ SELECT inet_server_port()")),
            test_cluster().primary_port(1));
  must(c, "SET shardline.tenant = '" + ts + "'");
  EXPECT_EQ(c.value(fmt::format("SELECT count(*) FROM items WHERE v = 'binary' AND id = {}", base + 3)), "1")
      << "the tenant hint reads from the pin";
  must(c, "RESET shardline.tenant");
  // COPY: the pinned tenant's rows to s1, its logical shard neighbour's to the hash's shard.
  const std::string data = fmt::format("{0}\t{1}\tcopy\n{2}\t{1}\tcopy\n", ts, base + 4, neighbour);
  auto copy = copy_from_stdin(c, "COPY items (tenant_id, id, v) FROM STDIN", data);
  ASSERT_TRUE(copy.ok()) << copy.describe();
  for (int k = 1; k <= 4; ++k) {
    const std::string where = fmt::format("tenant_id = {} AND id = {}", ts, base + k);
    EXPECT_EQ(superuser(1).value("SELECT count(*) FROM items WHERE " + where), "1") << "statement " << k;
    EXPECT_EQ(superuser(0).value("SELECT count(*) FROM items WHERE " + where), "0") << "statement " << k;
  }
  EXPECT_EQ(superuser(0).value(fmt::format("SELECT count(*) FROM items WHERE tenant_id = {} AND id = {}", neighbour,
                                           base + 4)),
            "1")
      << "the neighbour follows the hash";
  // Reads through the proxy see exactly the tenant's rows on s1.
  EXPECT_EQ(c.value("SELECT count(*) FROM items WHERE tenant_id = " + ts), superuser(1).value(
                "SELECT count(*) FROM items WHERE tenant_id = " + ts));
}

TEST_F(ReshardIsolateTest, IsolateUnderTrafficOfTwoProxiesThenThePinRoutesEverywhere) {
  ProxyProcess a(config(free_port()));
  {
    PgConnection c(a.conninfo());
    must(c, "CREATE TABLE items (tenant_id bigint, id bigint, v text, PRIMARY KEY (tenant_id, id))");
  }
  ProxyProcess b(config(free_port()));  // learns the table's key type at its start
  const int L = logical_on_s0();
  const std::vector<std::int64_t> tenants = tenants_for(L);
  const std::int64_t hot = tenants[0], neighbour = tenants[1];  // both in logical shard L, on s0
  Traffic traffic({a.conninfo(), b.conninfo()}, tenants);
  traffic.start(8, 2);
  std::this_thread::sleep_for(1s);

  const auto t0 = Clock::now();
  const std::string job = start_isolate(admin(a), "  " + std::to_string(hot), "s1");
  EXPECT_EQ(wait_phase(admin(a), job, {"done", "failed", "aborted"}), "done") << job_row(admin(a), job)["error"];
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  auto row = job_row(admin(b), job);
  EXPECT_EQ(row["kind"], "isolate");
  EXPECT_EQ(row["tenant"], std::to_string(hot)) << "stored in its canonical form";
  EXPECT_EQ(row["source"], "s0");
  EXPECT_GT(std::stoll(row["rows_total"]), 0);
  std::printf("isolate %s of tenant %lld: %s rows copied of %s in %.1f s\n", job.c_str(), (long long)hot,
              row["rows_copied"].c_str(), row["rows_total"].c_str(), seconds);
  EXPECT_TRUE(wait_pin(admin(a), std::to_string(hot), "s1"));
  EXPECT_TRUE(wait_pin(admin(b), std::to_string(hot), "s1")) << "the second proxy follows the catalog";
  std::this_thread::sleep_for(500ms);
  traffic.stop();
  std::printf("%zu acknowledged writes (%d refused), %d reads\n", traffic.acked_count(), traffic.errors(),
              traffic.reads());
  EXPECT_GT(traffic.acked_count(), 200u);
  check_invariants(traffic, "tenant_id = " + std::to_string(hot), 1, "tenant " + std::to_string(hot));
  EXPECT_NE(rows_on(0, neighbour), "0") << "the rest of logical shard L stays on s0";
  EXPECT_EQ(rows_on(1, neighbour), "0");

  if (HasFailure() || std::getenv("RESHARD_TEST_LOG"))
    for (const ProxyProcess* p : {&a, &b}) std::fprintf(stderr, "---- proxy log ----\n%s\n", p->log().c_str());
  check_pin_routes(a, hot, neighbour, 9000000001);
  check_pin_routes(b, hot, neighbour, 9100000001);

  // A move of L to the pin's shard and back leaves the pinned tenant where its pin says.
  const std::string hot_rows = rows_on(1, hot);
  for (const char* target : {"s1", "s0"}) {
    const std::string m = start_move(admin(b), L, target);
    EXPECT_EQ(wait_phase(admin(b), m, {"done", "failed", "aborted"}), "done") << job_row(admin(b), m)["error"];
  }
  EXPECT_EQ(rows_on(1, hot), hot_rows);
  EXPECT_EQ(rows_on(0, hot), "0");
  EXPECT_EQ(rows_on(1, neighbour), "0");
  PgConnection c(b.conninfo());
  EXPECT_EQ(c.value("SELECT count(*) FROM items WHERE tenant_id = " + std::to_string(hot)), hot_rows);
  auto r = c.exec_params("INSERT INTO items VALUES ($1, 9200000001, 'after moves')", {std::to_string(hot)});
  EXPECT_TRUE(r.ok()) << r.describe() << ": the pinned tenant's writes on its shard pass the fence";
  EXPECT_EQ(rows_on(1, hot), std::to_string(std::stoll(hot_rows) + 1));
}

TEST_F(ReshardIsolateTest, RefusesBadTenants) {
  ProxyProcess p(config(free_port()));
  {
    PgConnection c(p.conninfo());
    must(c, "CREATE TABLE items (tenant_id bigint, id bigint, v text, PRIMARY KEY (tenant_id, id))");
  }
  PgConnection c(admin(p));
  auto r = c.exec("RESHARD ISOLATE TENANT 'abc' TO s1");
  EXPECT_EQ(r.sqlstate(), "22P02") << r.describe();
  r = c.exec("RESHARD ISOLATE TENANT '99999999999999999999' TO s1");
  EXPECT_EQ(r.sqlstate(), "22003") << r.describe();
  r = c.exec("RESHARD ISOLATE TENANT '1' TO s9");
  EXPECT_EQ(r.sqlstate(), "22023") << r.describe();
  const int owner = hashed_shard(shardline::router::logical_shard_of_int(1, kModulus));
  r = c.exec("RESHARD ISOLATE TENANT '1' TO s" + std::to_string(owner));
  EXPECT_EQ(r.sqlstate(), "22023") << r.describe();
  EXPECT_NE(r.describe().find("already on shard"), std::string::npos) << r.describe();
  r = c.exec("RESHARD ISOLATE TENANT 1 TO s1");
  EXPECT_EQ(r.sqlstate(), "42601") << r.describe();
  // The CLI drives the same command to the end.
  PgConnection app(p.conninfo());
  for (int id = 1; id <= 50; ++id) must(app, fmt::format("INSERT INTO items VALUES (1, {0}, 'x'), (2, {0}, 'y')", id));
  const std::string cmd = shardline_binary().string() + " reshard isolate --tenant 1 --to s" +
                          std::to_string(1 - owner) + " --config " + p.config_path().string() + " 2>&1";
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  char buf[4096];
  while (std::size_t got = std::fread(buf, 1, sizeof buf, f)) out.append(buf, got);
  const int st = ::pclose(f);
  EXPECT_EQ(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0) << out;
  EXPECT_NE(out.find(" done "), std::string::npos) << out;
  EXPECT_EQ(superuser(1 - owner).value("SELECT count(*) FROM items WHERE tenant_id = 1"), "50");
  EXPECT_EQ(superuser(owner).value("SELECT count(*) FROM items WHERE tenant_id = 1"), "0");
  EXPECT_EQ(app.value("SELECT count(*) FROM items WHERE tenant_id = 1"), "50");
  EXPECT_EQ(app.value("SELECT count(*) FROM items"), "100");
  // For the README's walkthrough.
  std::printf("$ shardline reshard isolate --tenant 1 --to s%d --config ...\n%s", 1 - owner, out.c_str());
  ASSERT_TRUE(wait_pin(admin(p), "1", "s" + std::to_string(1 - owner)));
  auto dir = c.exec("SHOW DIRECTORY");
  for (int i = 0; dir.ok() && i < dir.rows(); ++i) {
    std::string line;
    for (int k = 0; k < dir.columns(); ++k) line += (k ? " | " : "") + dir.value(i, k);
    std::printf("%s\n", line.c_str());
  }
}

/// PostgreSQL's output text of `text` read as `type`: the oracle for canonical_key_of_text.
std::string pg_canonical(const PgConnection& c, const std::string& text, const std::string& type) {
  return c.exec_params("SELECT $1::" + type + "::text", {text}).value(0, 0);
}

TEST_F(ReshardIsolateTest, PinsOfEveryKeyTypeRouteEveryFormOfTheKey) {
  ProxyProcess a(config(free_port()));
  {
    PgConnection c(a.conninfo());
    must(c, "CREATE TABLE pin_int4 (k integer PRIMARY KEY, v text)");
    must(c, "CREATE TABLE pin_text (k text PRIMARY KEY, v text)");
    must(c, "CREATE TABLE pin_uuid (k uuid PRIMARY KEY, v text)");
  }
  struct Case {
    std::string table, type;
    KeyType key;
    std::vector<std::string> forms;  ///< the same value written differently; [0] is canonical
  };
  const std::vector<Case> cases = {
      {"pin_int4", "integer", KeyType::Integer, {"-2147483648", " -2147483648 "}},
      {"pin_int4", "integer", KeyType::Integer, {"2147483647", "+2147483647"}},
      {"pin_int4", "integer", KeyType::Integer, {"-7", "-007"}},
      {"pin_text", "text", KeyType::Text, {"Zürich-東京 ✓", "Zürich-東京 ✓"}},
      {"pin_text", "text", KeyType::Text, {"-0", "-0"}},
      {"pin_uuid", "uuid", KeyType::Uuid,
       {"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "{A0EEBC99-9C0B4EF8-BB6D6BB9-BD380A11}"}},
  };
  auto cat = superuser(0);
  for (const auto& k : cases) {
    for (const auto& form : k.forms)
      EXPECT_EQ(shardline::router::canonical_key_of_text(k.key, form, nullptr, nullptr), pg_canonical(cat, form, k.type))
          << k.type << " '" << form << "'";
    // Pin the value to the shard its hash does not name.
    const int hashed = hashed_shard(*shardline::router::logical_shard_of_text(k.key, k.forms[0], kModulus, nullptr));
    must(cat, "INSERT INTO shardline.pins (tenant, shard) VALUES (" + shardline::control::sql_literal(k.forms[0]) +
                  ", 's" + std::to_string(1 - hashed) + "')");
  }
  // A second proxy started after the pins, and the first one following the notification.
  ProxyProcess b(config(free_port()));
  int n = 0;
  for (const auto& k : cases) {
    const int hashed = hashed_shard(*shardline::router::logical_shard_of_text(k.key, k.forms[0], kModulus, nullptr));
    for (const ProxyProcess* p : {&a, &b})
      ASSERT_TRUE(wait_pin(admin(*p), k.forms[0], "s" + std::to_string(1 - hashed))) << k.forms[0];
    for (const ProxyProcess* p : {&a, &b}) {
      PgConnection c(p->conninfo());
      const std::string form = k.forms[std::size_t(n++ % 2)];
      auto r = c.exec_params("INSERT INTO " + k.table + " VALUES ($1, 'x') ON CONFLICT (k) DO UPDATE SET v = 'again'",
                             {form});
      ASSERT_TRUE(r.ok()) << r.describe();
      EXPECT_EQ(c.value("SELECT count(*) FROM " + k.table + " WHERE k = " + shardline::control::sql_literal(form)), "1")
          << k.type << " '" << form << "' through proxy " << (p == &a ? "a" : "b");
    }
    const std::string where = " WHERE k = " + shardline::control::sql_literal(k.forms[0]) + "::" + k.type;
    EXPECT_EQ(superuser(1 - hashed).value("SELECT count(*) FROM " + k.table + where), "1") << k.type << " " << k.forms[0];
    EXPECT_EQ(superuser(hashed).value("SELECT count(*) FROM " + k.table + where), "0") << k.type << " " << k.forms[0];
  }
}

}  // namespace
