#include "tests/integration/support/reshard_harness.hpp"

#include <gtest/gtest.h>

#include "tests/integration/support/cluster_fixture.hpp"

namespace shardline::testing {

using Clock = std::chrono::steady_clock;

PgConnection superuser(int shard) {
  PgConnection c(test_cluster().superuser_conninfo(shard));
  if (!c.ok()) throw std::runtime_error(c.error());
  return c;
}

control::ReshardTable items_table() { return {"public", "items", "tenant_id", "bigint"}; }

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

std::string start_isolate(const std::string& admin, const std::string& tenant, const std::string& target) {
  PgConnection c(admin);
  EXPECT_TRUE(c.ok()) << c.error();
  auto r = c.exec("RESHARD ISOLATE TENANT " + control::sql_literal(tenant) + " TO " + target);
  if (!r.ok()) throw std::runtime_error("RESHARD ISOLATE TENANT: " + r.describe());
  return r.value(0, 0);
}

/// Waits until job `id` reaches a terminal phase (or `phase`); returns the phase reached.
std::string wait_phase(const std::string& admin, const std::string& id, const std::set<std::string>& phases,
                       std::chrono::seconds timeout) {
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
  check_invariants(traffic, control::logical_filter_sql(items_table(), kModulus, logical), owner,
                   "logical shard " + std::to_string(logical));
}

void check_invariants(Traffic& traffic, const std::string& moved, int owner, const std::string& what) {
  const auto acked = traffic.acked();  // before reading the shards: writers may still run
  std::multiset<std::pair<std::int64_t, std::int64_t>> stored;
  for (int s = 0; s < 2; ++s) {
    auto c = superuser(s);
    auto r = c.exec("SELECT tenant_id, id FROM items");
    ASSERT_TRUE(r.ok()) << r.describe();
    for (int i = 0; i < r.rows(); ++i) stored.emplace(std::stoll(r.value(i, 0)), std::stoll(r.value(i, 1)));
    EXPECT_EQ(c.value("SELECT count(*) FROM pg_replication_slots"), "0") << "shard " << s;
    EXPECT_EQ(c.value("SELECT count(*) FROM pg_publication"), "0") << "shard " << s;
    EXPECT_EQ(c.value("SELECT count(*) FROM pg_subscription"), "0") << "shard " << s;
    if (s != owner) {
      EXPECT_EQ(c.value("SELECT count(*) FROM items WHERE " + moved), "0") << "rows of " << what << " left on shard s" << s;
    }
  }
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
    if (router::logical_shard_of_int(t, kModulus) == logical) out.push_back(t);
  for (std::int64_t t = 1; t <= 60; ++t) out.push_back(t);
  return out;
}

int logical_on_s0() {
  for (std::int64_t t = 1;; ++t)
    if (int l = router::logical_shard_of_int(t, kModulus); l < 512) return l;
}


}  // namespace shardline::testing
