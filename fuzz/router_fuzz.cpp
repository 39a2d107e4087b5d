// Fuzz target: any bytes as a query string, through what the proxy does with a client's SQL
// before any server sees it: the literal normalizer, the route template (PostgreSQL's grammar,
// the key and merge analysis) and route() with values bound from the input. None of it may
// crash, hang or throw; every outcome is a plan (possibly a refusal with a SQLSTATE).
//
// Input layout: the SQL, then optionally "\0" and bind values separated by "\0" (a value "\1"
// stands for NULL), so the fuzzer explores keys of every shape as parameters too.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/loader.hpp"
#include "router/parser/literal_normalizer.hpp"
#include "router/planner/router.hpp"

namespace {

using namespace shardline;

constexpr const char* kConfig = R"(
listen: {host: 127.0.0.1, port: 6432}
users: [{name: app, password: secret, database: app}]
backend: {user: app, password: secret, database: app}
sharding:
  logical_shards: 1024
  key: tenant_id
  tables:
    orders: {type: bigint}
    items: {type: bigint}
    events: {key: account_id, type: text}
    ints: {type: integer}
    smalls: {type: smallint}
    devices: {key: device_id, type: uuid}
  reference_tables: [plans]
directory:
  - {logical: 0-511, shard: s0}
  - {logical: 512-1023, shard: s1}
shards:
  s0: {primary: {host: 127.0.0.1, port: 15400}}
  s1: {primary: {host: 127.0.0.1, port: 15410}}
)";

struct Setup {
  Setup() {
    auto r = config::parse_config(kConfig, "fuzz.yaml");
    if (!r.ok()) throw std::runtime_error("router_fuzz: bad built-in config");
    schema = router::ShardingSchema::from_config(*r.config);
    dir = router::DirectorySnapshot::from_config(*r.config);
  }
  std::shared_ptr<const router::ShardingSchema> schema;
  std::shared_ptr<const router::DirectorySnapshot> dir;
};

void route_once(const Setup& s, const router::RouteTemplate& t, const router::BindValues* bind) {
  const std::optional<std::string> no_tenant;
  router::RouteContext ctx{*s.dir, *s.schema, no_tenant, bind, true};
  const router::Plan p = router::route(t, ctx);
  (void)p.explain(s.dir->shard_names());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Setup setup;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = in.find('\0');
  const std::string_view sql = in.substr(0, nul);

  router::BindValues bind;
  if (nul != std::string_view::npos) {
    std::string_view rest = in.substr(nul + 1);
    while (bind.values.size() < 64) {
      const std::size_t end = rest.find('\0');
      const std::string_view v = rest.substr(0, end);
      bind.values.push_back(v == "\1" ? std::nullopt : std::optional<std::string_view>(v));
      bind.formats.push_back(v.size() == 4 || v.size() == 8 || v.size() == 16 ? 1 : 0);
      if (end == std::string_view::npos) break;
      rest = rest.substr(end + 1);
    }
  }

  const auto t = router::build_route_template(sql, *setup.schema);
  route_once(setup, *t, bind.values.empty() ? nullptr : &bind);

  router::NormalizedQuery n;
  if (router::normalize_literals(sql, n)) {
    const auto shape = router::build_route_template(n.text, *setup.schema);
    router::BindValues lit;
    for (std::size_t i = 0; i < n.literals.size(); ++i) {
      lit.values.emplace_back(n.literals[i]);
      lit.formats.push_back(0);
      lit.origins.push_back(n.quoted[i] ? router::BindOrigin::StringLiteral : router::BindOrigin::NumberLiteral);
    }
    route_once(setup, *shape, &lit);
  }
  return 0;
}
