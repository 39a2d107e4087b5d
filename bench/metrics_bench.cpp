// What the metrics cost a query on the proxy's hot path: the QueryMeter calls a session makes
// per statement (routed, forwarded, ready), with the registry on and off. Compared in the
// report with the proxy's CPU per pgbench -S transaction.

#include <benchmark/benchmark.h>

#include <string>

#include "proxy/admin/query_meter.hpp"

namespace {

using shardline::proxy::admin::MetricsRegistry;
using shardline::proxy::admin::QueryMeter;

shardline::config::Config one_shard(bool metrics) {
  shardline::config::Config c;
  c.shards.resize(1);
  c.shards[0].name = "s0";
  c.admin.metrics = metrics;
  return c;
}

void run(benchmark::State& state, bool metrics, bool tenants = true) {
  MetricsRegistry registry(one_shard(metrics));
  QueryMeter meter(registry);
  // 100,000 tenants (pgbench -s 10's aids) cycling through a 1000-entry sketch: mostly misses,
  // the sketch's worst case.
  std::vector<std::string> keys;
  for (int i = 0; i < 100000; ++i) keys.push_back(std::to_string(i * 7919 % 1000003));
  shardline::router::Plan plan;
  plan.kind = shardline::router::RouteKind::Single;
  if (tenants) plan.logical = {5};
  std::size_t i = 0;
  for (auto _ : state) {
    plan.tenant = keys[i++ % keys.size()];
    meter.routed(plan, false);
    meter.forwarded(0, -1);
    meter.ready();
  }
  benchmark::DoNotOptimize(registry.pool(0, -1).queries.value());
}

void BM_MetricsPerQuery(benchmark::State& state) { run(state, true); }
BENCHMARK(BM_MetricsPerQuery);
void BM_MetricsPerQueryNoTenant(benchmark::State& state) { run(state, true, false); }
BENCHMARK(BM_MetricsPerQueryNoTenant);
void BM_MetricsPerQueryOff(benchmark::State& state) { run(state, false); }
BENCHMARK(BM_MetricsPerQueryOff);

}  // namespace
