#pragma once
// Statement in, Plan out: pure and synchronous (no sockets), so every rule is unit-tested with
// golden cases. The key of each statement comes from its cached RouteTemplate, the values of
// `$n` from the Bind message, and hints from the session or a comment.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "router/directory/directory_snapshot.hpp"
#include "router/plan/plan.hpp"
#include "router/planner/route_template.hpp"
#include "router/sharding/sharding_schema.hpp"

namespace shardline::router {

/// Where a bound value comes from: a Bind message, or a literal of a simple-protocol statement
/// that the shape cache replaced by $n (a number and a quoted string type differently).
enum class BindOrigin : std::uint8_t { Bind, NumberLiteral, StringLiteral };

/// The parameters of a Bind message: each value (nullopt = NULL) and its format (0 text, 1 binary).
struct BindValues {
  std::vector<std::optional<std::string_view>> values;
  std::vector<std::int16_t> formats;  ///< already expanded to one per value
  std::vector<BindOrigin> origins;    ///< one per value; empty: all from a Bind message
  /// Parameter type OIDs the client declared in Parse (0: unspecified, PostgreSQL infers it).
  /// Empty when not known: a value's type is then a guess (KeyDatum::set_uncertain).
  std::vector<std::uint32_t> types;
};

struct RouteContext {
  const DirectorySnapshot& directory;
  const ShardingSchema& schema;
  const std::optional<std::string>& session_tenant;  ///< SET shardline.tenant
  const BindValues* bind = nullptr;
  /// Fill Plan::reason (SHOW ROUTE, tests); off on the hot path, where it would only allocate.
  bool explain = false;
};

Plan route(const RouteTemplate& t, const RouteContext& ctx);

}  // namespace shardline::router
