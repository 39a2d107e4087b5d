// Parser + router CPU per statement (the sharding issue's micro benchmarks): what the proxy pays
// on its data-plane thread before a statement reaches a shard. `make bench` (bench/run.sh) runs
// this as part of micro_bench and reports the cache-hit figure against the goal of <= 5 us.
//
// The statement texts are pgbench's own (-S), against a config that shards the pgbench tables
// over two shards the way bench/run.sh's routed scenarios do, so these numbers explain the
// routed pgbench figures of the same run.

#include <benchmark/benchmark.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/loader.hpp"
#include "router/directory/directory_snapshot.hpp"
#include "router/planner/route_template.hpp"
#include "router/planner/router.hpp"
#include "router/planner/template_cache.hpp"
#include "router/sharding/key_type.hpp"
#include "router/sharding/shard_key.hpp"
#include "router/sharding/sharding_schema.hpp"

namespace shardline::router {
namespace {

/// The key types are given, not learned, so that the router hashes exactly as it does once the
/// proxy has read them from the shards' catalogs (pgbench's ids are integer columns).
constexpr const char* kConfig = R"(
listen: {host: 127.0.0.1, port: 6432}
users: [{name: app, password: secret, database: app}]
backend: {user: app, password: secret, database: app}
sharding:
  logical_shards: 1024
  key: tenant_id
  tables:
    pgbench_accounts: {key: aid, type: integer}
    pgbench_history: {key: aid, type: integer}
    pgbench_branches: {key: bid, type: integer}
    pgbench_tellers: {key: tid, type: integer}
directory:
  - {logical: 0-511, shard: s0}
  - {logical: 512-1023, shard: s1}
shards:
  s0: {primary: {host: 127.0.0.1, port: 15400}}
  s1: {primary: {host: 127.0.0.1, port: 15410}}
)";

/// pgbench -S in the extended and prepared modes: the key is a Bind parameter.
constexpr std::string_view kExtendedSelect = "SELECT abalance FROM pgbench_accounts WHERE aid = $1;";
/// Distinct values cycled through, so that the hash and the shard differ from call to call.
constexpr std::size_t kKeyCount = 4096;
constexpr int kLogicalShards = 1024;

struct RoutingFixture {
  RoutingFixture() {
    auto r = config::parse_config(kConfig, "router_bench.yaml");
    if (!r.ok()) {
      std::string why;
      for (const auto& p : r.problems) why += p.str() + "\n";
      throw std::runtime_error("router_bench: the embedded config is invalid:\n" + why);
    }
    cfg = *r.config;
    schema = ShardingSchema::from_config(cfg);
    directory = DirectorySnapshot::from_config(cfg);
    for (std::size_t i = 0; i < kKeyCount; ++i) {
      // pgbench -s 10 draws aid from [1, 1000000]; a multiplicative walk spreads them over it.
      aids.push_back(std::to_string(1 + (i * 2654435761ULL) % 1000000));
      tenants.push_back("tenant-" + std::to_string(100000 + i * 7919));
    }
  }
  config::Config cfg;
  std::shared_ptr<const ShardingSchema> schema;
  std::shared_ptr<const DirectorySnapshot> directory;
  std::vector<std::string> aids;     ///< integer keys as PostgreSQL text
  std::vector<std::string> tenants;  ///< text keys
  const std::optional<std::string> no_session_tenant;
};

const RoutingFixture& fixture() {
  static const RoutingFixture f;
  return f;
}

/// A benchmark that routes somewhere else than intended would measure the wrong path (a
/// scatter, a refusal): every routed plan is checked, and a wrong one fails the benchmark.
bool is_single_shard(const Plan& plan, benchmark::State& state) {
  if (plan.kind == RouteKind::Single && plan.shards.size() == 1) return true;
  state.SkipWithError("the statement was not routed to a single shard");
  return false;
}

/// Writes `SELECT abalance FROM pgbench_accounts WHERE aid = <aid> AND <r> = <r>` into `buf`,
/// the text pgbench -M simple sends for bench/run.sh's distinct-literal script: every text is
/// new, so the proxy's template cache misses. Formatting costs a few ns next to a parse.
std::string_view distinct_select(std::array<char, 160>& buf, std::string_view aid, std::uint64_t r) {
  char* p = buf.data();
  auto put = [&p](std::string_view s) {
    for (char c : s) *p++ = c;
  };
  char num[24];
  auto rn = std::to_chars(num, num + sizeof num, r);
  std::string_view rs(num, std::size_t(rn.ptr - num));
  put("SELECT abalance FROM pgbench_accounts WHERE aid = ");
  put(aid);
  put(" AND ");
  put(rs);
  put(" = ");
  put(rs);
  return {buf.data(), std::size_t(p - buf.data())};
}

/// Cache hit (pgbench -S -M extended/prepared through the routed proxy): the template of a
/// warm text is looked up, then routed with the key from a text-format Bind parameter.
void BM_CacheHitExtended(benchmark::State& state) {
  const auto& f = fixture();
  TemplateCache cache;
  (void)cache.get(kExtendedSelect, *f.schema);  // warm
  BindValues bind;
  bind.values.resize(1);
  bind.formats.assign(1, 0);
  RouteContext ctx{*f.directory, *f.schema, f.no_session_tenant, &bind};
  std::size_t i = 0;
  for (auto _ : state) {
    auto t = cache.get(kExtendedSelect, *f.schema);
    bind.values[0] = std::string_view(f.aids[i++ % kKeyCount]);
    Plan plan = route(*t, ctx);
    if (!is_single_shard(plan, state)) break;
    benchmark::DoNotOptimize(plan);
  }
  if (cache.misses() != 1) state.SkipWithError("the warm statement missed the template cache");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CacheHitExtended);

/// Cache hit with the key as a literal (pgbench -S -M simple repeating a text it sent before).
void BM_CacheHitSimple(benchmark::State& state) {
  const auto& f = fixture();
  TemplateCache cache;
  std::vector<std::string> texts;
  for (std::size_t i = 0; i < 64; ++i)
    texts.push_back("SELECT abalance FROM pgbench_accounts WHERE aid = " + f.aids[i] + ";");
  for (const auto& s : texts) (void)cache.get(s, *f.schema);  // warm
  RouteContext ctx{*f.directory, *f.schema, f.no_session_tenant};
  std::size_t i = 0;
  for (auto _ : state) {
    auto t = cache.get(texts[i++ % texts.size()], *f.schema);
    Plan plan = route(*t, ctx);
    if (!is_single_shard(plan, state)) break;
    benchmark::DoNotOptimize(plan);
  }
  if (cache.misses() != texts.size()) state.SkipWithError("a warm statement missed the template cache");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CacheHitSimple);

/// Cache miss: a text never seen before is parsed (libpg_query) and analyzed into a template,
/// then routed; the key is a literal.
void BM_CacheMissBuildAndRoute(benchmark::State& state) {
  const auto& f = fixture();
  RouteContext ctx{*f.directory, *f.schema, f.no_session_tenant};
  std::array<char, 160> buf;
  std::uint64_t n = 0;
  for (auto _ : state) {
    std::string_view sql = distinct_select(buf, f.aids[n % kKeyCount], 1000003 + n);
    ++n;
    auto t = build_route_template(sql, *f.schema);
    Plan plan = route(*t, ctx);
    if (!is_single_shard(plan, state)) break;
    benchmark::DoNotOptimize(plan);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CacheMissBuildAndRoute);

/// Cache miss as the proxy pays it: TemplateCache::get also stores the new template and, once
/// full, evicts the least recently used one (the default 10,000 entries, pre-filled).
void BM_CacheMissThroughCache(benchmark::State& state) {
  const auto& f = fixture();
  TemplateCache cache;
  std::array<char, 160> buf;
  std::uint64_t n = 0;
  for (; n < 10000; ++n) (void)cache.get(distinct_select(buf, f.aids[n % kKeyCount], 1000003 + n), *f.schema);
  RouteContext ctx{*f.directory, *f.schema, f.no_session_tenant};
  const auto misses_before = cache.misses();
  for (auto _ : state) {
    std::string_view sql = distinct_select(buf, f.aids[n % kKeyCount], 1000003 + n);
    ++n;
    auto t = cache.get(sql, *f.schema);
    Plan plan = route(*t, ctx);
    if (!is_single_shard(plan, state)) break;
    benchmark::DoNotOptimize(plan);
  }
  if (cache.misses() - misses_before != std::uint64_t(state.iterations()))
    state.SkipWithError("a distinct text hit the template cache");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CacheMissThroughCache);

/// The hash alone: a key's PostgreSQL text to its logical shard (parse, hashint8extended,
/// hash_combine64, modulus).
void BM_HashBigintText(benchmark::State& state) {
  const auto& f = fixture();
  std::size_t i = 0;
  for (auto _ : state) {
    auto shard = logical_shard_of_text(KeyType::BigInt, f.aids[i++ % kKeyCount], kLogicalShards, nullptr);
    if (!shard) {
      state.SkipWithError("a bigint key was rejected");
      break;
    }
    benchmark::DoNotOptimize(shard);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HashBigintText);

/// The hash of a text key (lookup3 over its bytes), e.g. `tenant-100000` (13-18 bytes).
void BM_HashTextKey(benchmark::State& state) {
  const auto& f = fixture();
  std::size_t i = 0;
  for (auto _ : state) {
    auto shard = logical_shard_of_text(KeyType::Text, f.tenants[i++ % kKeyCount], kLogicalShards, nullptr);
    if (!shard) {
      state.SkipWithError("a text key was rejected");
      break;
    }
    benchmark::DoNotOptimize(shard);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HashTextKey);

}  // namespace
}  // namespace shardline::router
