// Space-Saving top-K: exact while keys fit, bounded error and bounded memory beyond.
#include "proxy/admin/space_saving.hpp"

#include <gtest/gtest.h>
#include <malloc.h>

#include <map>
#include <random>

#include "proxy/admin/tenant_tracker.hpp"

using shardline::proxy::admin::SpaceSaving;
using shardline::proxy::admin::TenantTracker;

TEST(SpaceSaving, ExactWhileEveryKeyFits) {
  SpaceSaving s(10);
  for (int i = 0; i < 5; ++i)
    for (int j = 0; j <= i; ++j) s.add("t" + std::to_string(i), 1, 2, i);
  auto top = s.top(10);
  ASSERT_EQ(top.size(), 5u);
  EXPECT_EQ(top[0].key, "t4");
  EXPECT_EQ(top[0].count, 5u);
  EXPECT_EQ(top[0].weight, 10u);
  EXPECT_EQ(top[0].error, 0u);
  EXPECT_EQ(top[0].tag, 4);
  EXPECT_EQ(top[4].key, "t0");
  EXPECT_EQ(s.total(), 15u);
}

TEST(SpaceSaving, HeavyHittersSurviveAndCountsBoundTheTruth) {
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  SpaceSaving s(50);
  std::map<std::string, std::uint64_t> truth;
  // A Zipf-like stream over 5000 keys, plus one key with 30% of the traffic.
  std::uniform_real_distribution<double> u(0, 1);
  for (int i = 0; i < 200000; ++i) {
    std::string key = u(rng) < 0.3 ? "hot" : "k" + std::to_string(int(std::pow(5000.0, u(rng))));
    ++truth[key];
    s.add(key, 1, 0, 0);
  }
  auto top = s.top(50);
  ASSERT_FALSE(top.empty());
  EXPECT_EQ(top[0].key, "hot");
  for (const auto& e : top) {
    const auto t = truth[e.key];
    EXPECT_LE(t, e.count) << e.key;            // never undercounts
    EXPECT_LE(e.count - e.error, t) << e.key;  // count - error is a lower bound
  }
  // Every key above total/capacity is monitored.
  for (const auto& [k, n] : truth) {
    if (n > s.total() / s.capacity()) {
      EXPECT_TRUE(std::any_of(top.begin(), top.end(), [&](const auto& e) { return e.key == k; })) << k;
    }
  }
}

TEST(TenantTracker, HotTenantShareWithinFivePoints) {
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  TenantTracker t(100, 2);
  std::uniform_real_distribution<double> u(0, 1);
  std::uniform_int_distribution<int> other(1, 100000);
  std::uint64_t hot = 0, shard0 = 0;
  for (int i = 0; i < 100000; ++i) {
    if (u(rng) < 0.6) {
      t.record(0, "hot", 7, 1, 1000);
      ++hot;
    } else {
      t.record(0, std::to_string(other(rng)), 9, 1, 1000);
    }
    ++shard0;
    t.record(1, std::to_string(other(rng)), 600, 1, 1000);  // another shard's traffic
  }
  auto top = t.top(5);
  ASSERT_FALSE(top.empty());
  EXPECT_EQ(top[0].tenant, "hot");
  EXPECT_EQ(top[0].shard, 0);
  EXPECT_EQ(top[0].logical, 7);
  EXPECT_NEAR(top[0].share, double(hot) / double(shard0), 0.05);
  EXPECT_EQ(t.shard_total(0), shard0);
  // The log line fires once per crossing.
  EXPECT_EQ(t.newly_hot(0.5, 1000).size(), 1u);
  EXPECT_TRUE(t.newly_hot(0.5, 1000).empty());
}

TEST(TenantTracker, MemoryStaysBoundedForAMillionDistinctTenants) {
  // Measured with the allocator itself: heap in use after 1M distinct tenants minus before.
  TenantTracker t(1000, 1);
  for (int i = 0; i < 2000; ++i) t.record(0, "warmup-tenant-" + std::to_string(i), i % 1024, 1, 1);
  const auto before = mallinfo2().uordblks;
  for (int i = 0; i < 1000000; ++i) t.record(0, "tenant-" + std::to_string(i), i % 1024, 1, 1);
  const auto after = mallinfo2().uordblks;
  const long long grown = (long long)after - (long long)before;
  std::printf("heap growth over 1M distinct tenants with capacity 1000: %lld bytes\n", grown);
  EXPECT_LT(grown, 256 * 1024);  // strings of 1000 monitored keys at most; no growth per tenant
  EXPECT_EQ(t.top(5000).size(), 1000u);
  EXPECT_EQ(t.shard_total(0), 1002000u);
}
