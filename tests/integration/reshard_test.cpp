// Online reshard end to end (SPEC.md section 8, issue 11) against real PostgreSQL through the
// real proxy: RESHARD MOVE of a logical shard s0 -> s1 -> s0 while 8 clients write to tenants of
// every logical shard and readers re-read acknowledged rows; then the proxy SIGKILLed in each
// phase and restarted. Invariants every time: every acknowledged write present exactly once
// across the shards, no row of the moved logical shard left on the shard that does not own it,
// no replication slot, publication or subscription left, readers never missed an acked row.
// Also: the row filter expression equals satisfies_hash_partition for every key type.

#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "proxy/control/reshard_sql.hpp"
#include "router/sharding/shard_key.hpp"
#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"

namespace {

using namespace std::chrono_literals;
using shardline::testing::free_port;
using shardline::testing::must;
using shardline::testing::PgConnection;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using shardline::testing::test_cluster;
using Clock = std::chrono::steady_clock;

constexpr int kModulus = 1024;

PgConnection superuser(int shard) {
  PgConnection c(test_cluster().superuser_conninfo(shard));
  if (!c.ok()) throw std::runtime_error(c.error());
  return c;
}

/// Writers and readers through the proxy; every acknowledged INSERT is logged.
class Traffic {
 public:
  Traffic(std::vector<std::string> proxies, std::vector<std::int64_t> tenants)
      : proxies_(std::move(proxies)), tenants_(std::move(tenants)) {}
  ~Traffic() { stop(); }

  void start(int writers, int readers) {
    for (int w = 0; w < writers; ++w) threads_.emplace_back([this, w] { write_loop(w); });
    for (int r = 0; r < readers; ++r) threads_.emplace_back([this, r] { read_loop(r); });
  }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  std::vector<std::pair<std::int64_t, std::int64_t>> acked() {
    std::lock_guard lk(mu_);
    return acked_;
  }
  std::size_t acked_count() {
    std::lock_guard lk(mu_);
    return acked_.size();
  }
  int misses() const { return misses_.load(); }
  int reads() const { return reads_.load(); }
  int errors() const { return errors_.load(); }

 private:
  void write_loop(int w) {
    std::unique_ptr<PgConnection> c;
    std::int64_t seq = 0;
    while (!stop_) {
      if (!c || !c->ok()) {
        c = std::make_unique<PgConnection>(proxies_[std::size_t(w) % proxies_.size()], 2s);
        if (!c->ok()) {
          std::this_thread::sleep_for(50ms);
          continue;
        }
      }
      const std::int64_t tenant = tenants_[std::size_t(seq + w) % tenants_.size()];
      const std::int64_t id = std::int64_t(w) * 1000000000 + seq++;
      auto r = c->exec_params("INSERT INTO items (tenant_id, id, v) VALUES ($1, $2, 'x')",
                              {std::to_string(tenant), std::to_string(id)});
      if (r.ok()) {
        std::lock_guard lk(mu_);
        acked_.emplace_back(tenant, id);
      } else {
        ++errors_;
        if (errors_ <= 5) std::fprintf(stderr, "%lld write refused: tenant %lld: %s\n", (long long)std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count() % 100000, (long long)tenant, r.describe().c_str());
        if (PQstatus(c->get()) != CONNECTION_OK) c.reset();
      }
      std::this_thread::sleep_for(2ms);
    }
  }
  void read_loop(int r) {
    std::mt19937_64 rng(std::uint64_t(r) + 7);
    std::unique_ptr<PgConnection> c;
    while (!stop_) {
      std::pair<std::int64_t, std::int64_t> row;
      {
        std::lock_guard lk(mu_);
        if (acked_.empty()) {
          row = {-1, -1};
        } else {
          row = acked_[rng() % acked_.size()];
        }
      }
      if (row.first < 0) {
        std::this_thread::sleep_for(5ms);
        continue;
      }
      if (!c || !c->ok()) {
        c = std::make_unique<PgConnection>(proxies_[std::size_t(r) % proxies_.size()], 2s);
        if (!c->ok()) {
          std::this_thread::sleep_for(50ms);
          continue;
        }
      }
      auto res = c->exec_params("SELECT count(*) FROM items WHERE tenant_id = $1 AND id = $2",
                                {std::to_string(row.first), std::to_string(row.second)});
      if (res.ok()) {
        ++reads_;
        if (res.value(0, 0) != "1") {
          ++misses_;
          std::fprintf(stderr, "%lld read miss: tenant %lld id %lld (logical %d) -> %s\n",
                       (long long)std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch()).count() % 100000,
                       (long long)row.first, (long long)row.second,
                       shardline::router::logical_shard_of_int(row.first, kModulus), res.value(0, 0).c_str());
        }
      } else if (PQstatus(c->get()) != CONNECTION_OK) {
        c.reset();
      }
      std::this_thread::sleep_for(3ms);
    }
  }

  std::vector<std::string> proxies_;
  std::vector<std::int64_t> tenants_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::vector<std::pair<std::int64_t, std::int64_t>> acked_;
  std::atomic<int> misses_{0};
  std::atomic<int> reads_{0};
  std::atomic<int> errors_{0};
};

shardline::control::ReshardTable items_table() { return {"public", "items", "tenant_id", "bigint"}; }

/// The SHOW RESHARDS row of job `id`: column name -> value (empty map if absent).
std::map<std::string, std::string> job_row(const std::string& admin, const std::string& id) {
  PgConnection c(admin, 5s);
  if (!c.ok()) return {};
  auto r = c.exec("SHOW RESHARDS");
  std::map<std::string, std::string> out;
  for (int i = 0; r.ok() && i < r.rows(); ++i) {
    if (r.value(i, 0) != id) continue;
    for (int k = 0; k < r.columns(); ++k) out[PQfname(r.get(), k)] = r.value(i, k);
  }
  return out;
}

std::string start_move(const std::string& admin, int logical, const std::string& target) {
  PgConnection c(admin);
  EXPECT_TRUE(c.ok()) << c.error();
  auto r = c.exec("RESHARD MOVE " + std::to_string(logical) + " TO " + target);
  if (!r.ok()) throw std::runtime_error("RESHARD MOVE: " + r.describe());
  return r.value(0, 0);
}

/// Waits until job `id` reaches a terminal phase (or `phase`); returns the phase reached.
std::string wait_phase(const std::string& admin, const std::string& id, const std::set<std::string>& phases,
                       std::chrono::seconds timeout = 60s) {
  const auto deadline = Clock::now() + timeout;
  std::string last;
  while (Clock::now() < deadline) {
    auto row = job_row(admin, id);
    last = row.count("phase") ? row["phase"] : "";
    if (phases.count(last)) return last;
    std::this_thread::sleep_for(20ms);
  }
  return "timeout (last phase " + last + ")";
}

/// The invariants after a job ends, with `owner` the shard index owning `logical`.
void check_invariants(Traffic& traffic, int logical, int owner) {
  std::multiset<std::pair<std::int64_t, std::int64_t>> stored;
  for (int s = 0; s < 2; ++s) {
    auto c = superuser(s);
    auto r = c.exec("SELECT tenant_id, id FROM items");
    ASSERT_TRUE(r.ok()) << r.describe();
    for (int i = 0; i < r.rows(); ++i) stored.emplace(std::stoll(r.value(i, 0)), std::stoll(r.value(i, 1)));
    EXPECT_EQ(c.value("SELECT count(*) FROM pg_replication_slots"), "0") << "shard " << s;
    EXPECT_EQ(c.value("SELECT count(*) FROM pg_publication"), "0") << "shard " << s;
    EXPECT_EQ(c.value("SELECT count(*) FROM pg_subscription"), "0") << "shard " << s;
    if (s != owner)
      EXPECT_EQ(c.value("SELECT count(*) FROM items WHERE " +
                        shardline::control::logical_filter_sql(items_table(), kModulus, logical)),
                "0")
          << "rows of logical shard " << logical << " left on shard s" << s;
  }
  const auto acked = traffic.acked();
  int wrong = 0;
  for (const auto& a : acked)
    if (stored.count(a) != 1) ++wrong;
  EXPECT_EQ(wrong, 0) << "acknowledged writes missing or duplicated, of " << acked.size();
  EXPECT_EQ(traffic.misses(), 0) << "readers missed acknowledged rows in " << traffic.reads() << " reads";
}

/// Tenants spread over many logical shards, 4 of them in `logical`.
std::vector<std::int64_t> tenants_for(int logical) {
  std::vector<std::int64_t> out;
  for (std::int64_t t = 1; out.size() < 4; ++t)
    if (shardline::router::logical_shard_of_int(t, kModulus) == logical) out.push_back(t);
  for (std::int64_t t = 1; t <= 60; ++t) out.push_back(t);
  return out;
}

/// A logical shard of s0 (0-511) that tenant keys 1.. reach early.
int logical_on_s0() {
  for (std::int64_t t = 1;; ++t)
    if (int l = shardline::router::logical_shard_of_int(t, kModulus); l < 512) return l;
}

class ReshardTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    test_cluster();
  }
  void SetUp() override {
    for (int s = 0; s < 2; ++s) {
      auto c = superuser(s);
      must(c, "DROP TABLE IF EXISTS items");
      must(c, "DROP SCHEMA IF EXISTS shardline CASCADE");
    }
  }
  std::string config(std::uint16_t port) {
    ProxyConfig cfg(test_cluster(), port);
    cfg.sharded_table({"items", "", ""});
    return cfg.yaml();
  }
  static void create_items(const ProxyProcess& p) {
    PgConnection c(p.conninfo());
    must(c, "CREATE TABLE items (tenant_id bigint, id bigint, v text, PRIMARY KEY (tenant_id, id))");
  }
  static std::string admin(const ProxyProcess& p) { return p.conninfo("app", "secret", "shardline"); }
};

TEST_F(ReshardTest, RowFilterEqualsSatisfiesHashPartition) {
  auto c = superuser(0);
  struct Case { std::string type, values; };
  const std::vector<Case> cases = {
      {"smallint", "SELECT g::smallint FROM generate_series(-32768, 32767) g"},
      {"integer", "SELECT (g * 65537)::integer FROM generate_series(-30000, 30000) g"},
      {"bigint", "SELECT (g * 4294967311)::bigint FROM generate_series(-30000, 30000) g"},
      {"text", "SELECT md5(g::text) || repeat('x', g % 40) FROM generate_series(1, 30000) g"},
      {"uuid", "SELECT md5(g::text)::uuid FROM generate_series(1, 30000) g"},
  };
  for (const auto& k : cases) {
    must(c, "DROP TABLE IF EXISTS hp; CREATE TABLE hp (k " + k.type + ") PARTITION BY HASH (k)");
    const std::string expr = shardline::control::logical_shard_sql("v.k", k.type, kModulus);
    const auto bad = c.value("SELECT count(*) FROM (" + k.values + ") v(k) WHERE NOT satisfies_hash_partition("
                             "'hp'::regclass, 1024, (" + expr + ")::int, v.k)");
    EXPECT_EQ(bad, "0") << k.type;
  }
  must(c, "DROP TABLE hp");
}

TEST_F(ReshardTest, MoveThereAndBackUnderTraffic) {
  ProxyProcess proxy(config(free_port()));
  create_items(proxy);
  const int L = logical_on_s0();
  Traffic traffic({proxy.conninfo()}, tenants_for(L));
  traffic.start(8, 2);
  std::this_thread::sleep_for(1s);

  const std::string a = start_move(admin(proxy), L, "s1");
  EXPECT_EQ(wait_phase(admin(proxy), a, {"done", "failed", "aborted"}), "done") << job_row(admin(proxy), a)["error"];
  auto done = job_row(admin(proxy), a);
  EXPECT_GT(std::stoll(done["rows_total"]), 0);
  EXPECT_GE(std::stoll(done["rows_copied"]), std::stoll(done["rows_total"]));
  std::printf("move %s: %s rows copied of %s, started %s, finished %s\n", a.c_str(), done["rows_copied"].c_str(),
              done["rows_total"].c_str(), done["started_at"].c_str(), done["finished_at"].c_str());
  std::this_thread::sleep_for(500ms);
  {
    auto s0 = superuser(0);
    EXPECT_EQ(s0.value("SELECT count(*) FROM items WHERE " +
                       shardline::control::logical_filter_sql(items_table(), kModulus, L)),
              "0");
  }
  const std::string b = start_move(admin(proxy), L, "s0");
  EXPECT_EQ(wait_phase(admin(proxy), b, {"done", "failed", "aborted"}), "done") << job_row(admin(proxy), b)["error"];
  std::this_thread::sleep_for(500ms);
  traffic.stop();
  EXPECT_GT(traffic.acked_count(), 200u);
  std::printf("%zu acknowledged writes (%d refused), %d reads\n", traffic.acked_count(), traffic.errors(),
              traffic.reads());
  check_invariants(traffic, L, 0);
  if (std::getenv("RESHARD_TEST_LOG")) std::fprintf(stderr, "%s\n", proxy.log().c_str());
}

TEST_F(ReshardTest, RefusesBadRequests) {
  ProxyProcess proxy(config(free_port()));
  create_items(proxy);
  PgConnection c(admin(proxy));
  auto r = c.exec("RESHARD MOVE 5 TO s9");
  EXPECT_EQ(r.sqlstate(), "22023") << r.describe();
  r = c.exec("RESHARD MOVE 5000 TO s1");
  EXPECT_EQ(r.sqlstate(), "22023") << r.describe();
  r = c.exec("RESHARD MOVE 600 TO s1");  // already there
  EXPECT_EQ(r.sqlstate(), "22023") << r.describe();
  r = c.exec("RESHARD MOVE x TO s1");
  EXPECT_EQ(r.sqlstate(), "42601") << r.describe();
  r = c.exec("RESHARD ABORT");
  EXPECT_EQ(r.sqlstate(), "55000") << r.describe();
}

}  // namespace
