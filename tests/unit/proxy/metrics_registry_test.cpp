// The registry's counters, histogram buckets and SQLSTATE table, and the session-side meter.
#include "proxy/admin/metrics_registry.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "proxy/admin/prometheus_text.hpp"
#include "proxy/admin/query_meter.hpp"

using namespace shardline::proxy::admin;

namespace {
shardline::config::Config two_shards() {
  shardline::config::Config c;
  c.shards.resize(2);
  c.shards[0].name = "s0";
  c.shards[0].replicas.resize(1);  // s0 has one replica, s1 none
  c.shards[1].name = "s1";
  return c;
}
}  // namespace

TEST(Histogram, BucketsAreCumulativeAndBoundsInclusive) {
  Histogram h;
  h.observe(100'000);        // exactly 0.0001 s: the first bucket (le is inclusive)
  h.observe(100'001);        // just above: the second
  h.observe(2'000'000'000);  // 2 s
  h.observe(60'000'000'000, 2);  // 60 s twice: only +Inf
  auto c = h.cumulative();
  EXPECT_EQ(c[0], 1u);
  EXPECT_EQ(c[1], 2u);
  EXPECT_EQ(c[Histogram::kBounds.size() - 1], 3u);  // le=5
  EXPECT_EQ(c.back(), 5u);
  EXPECT_EQ(h.count(), 5u);
  EXPECT_EQ(h.sum_ns(), 100'000u + 100'001u + 2'000'000'000u + 120'000'000'000u);
}

TEST(ErrorCounters, CountsBySqlstateFromSeveralThreads) {
  ErrorCounters e;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        e.count("22012");
        e.count("0A000");
      }
    });
  for (auto& t : threads) t.join();
  e.count("bad");  // not a SQLSTATE
  auto snap = e.snapshot();
  ASSERT_EQ(snap.size(), 3u);
  EXPECT_EQ(snap[0], (std::pair<std::string, std::uint64_t>{"0A000", 4000}));
  EXPECT_EQ(snap[1], (std::pair<std::string, std::uint64_t>{"22012", 4000}));
  EXPECT_EQ(snap[2], (std::pair<std::string, std::uint64_t>{"other", 1}));
}

TEST(MetricsRegistry, SlotsPerShardAndRole) {
  MetricsRegistry r(two_shards());
  r.pool(0, -1).queries.add(3);
  r.pool(0, 0).queries.add(2);
  r.pool(1, -1).queries.add(1);
  EXPECT_EQ(r.pool(0, -1).queries.value(), 3u);
  EXPECT_EQ(r.pool(0, 0).queries.value(), 2u);
  EXPECT_EQ(r.pool(1, -1).queries.value(), 1u);
}

TEST(QueryMeter, AttributesARequestToItsPoolAndTenant) {
  MetricsRegistry r(two_shards());
  QueryMeter m(r);
  shardline::router::Plan p;
  p.logical = {12};
  p.tenant = "42";
  m.routed(p, false);
  m.forwarded(0, 0);
  m.forwarded(0, 0);  // a pipelined second statement of the same request
  m.ready();
  m.ready();          // a ReadyForQuery with nothing forwarded: no-op
  EXPECT_EQ(r.pool(0, 0).queries.value(), 2u);
  EXPECT_EQ(r.pool(0, 0).duration.count(), 2u);
  auto top = r.tenants().top(10);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].tenant, "42");
  EXPECT_EQ(top[0].queries, 2u);
  EXPECT_EQ(top[0].logical, 12);
  EXPECT_DOUBLE_EQ(top[0].share, 1.0);
}

TEST(QueryMeter, DisabledRegistryCountsNothing) {
  auto cfg = two_shards();
  cfg.admin.metrics = false;
  MetricsRegistry r(cfg);
  QueryMeter m(r);
  m.forwarded(1, -1);
  m.ready();
  m.error("22012");
  EXPECT_EQ(r.pool(1, -1).queries.value(), 0u);
  EXPECT_TRUE(r.errors().snapshot().empty());
}

TEST(QueryMeter, BinaryKeysAsText) {
  using F = shardline::router::TenantFormat;
  std::string out;
  QueryMeter::binary_key_text(std::string("\xff\xff\xff\xfe", 4), F::BinaryInt, out);
  EXPECT_EQ(out, "-2");
  QueryMeter::binary_key_text(std::string("\xff\xfe", 2), F::BinaryInt, out);
  EXPECT_EQ(out, "-2");
  QueryMeter::binary_key_text(std::string("\x00\x00\x00\x00\x00\x00\x01\x00", 8), F::BinaryInt, out);
  EXPECT_EQ(out, "256");
  QueryMeter::binary_key_text(std::string("\x12\x34\x56\x78\x9a\xbc\xde\xf0\x12\x34\x56\x78\x9a\xbc\xde\xf0", 16),
                              F::BinaryUuid, out);
  EXPECT_EQ(out, "12345678-9abc-def0-1234-56789abcdef0");
  QueryMeter::binary_key_text("acme", F::BinaryText, out);
  EXPECT_EQ(out, "acme");
  QueryMeter::binary_key_text("42", F::Text, out);
  EXPECT_EQ(out, "42");
}

TEST(Prometheus, EscapesLabelValues) {
  EXPECT_EQ(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}
