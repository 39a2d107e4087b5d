#pragma once
// Turns a template's key values (constants, $n with their Bind values, literals the shape cache
// replaced by $n, hints) into KeyDatums the way PostgreSQL types and coerces them, and decides
// each one's KeyOutcome. The one place where "which shard does this value name" is decided.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "router/planner/route_template.hpp"
#include "router/planner/router.hpp"
#include "router/sharding/key_datum.hpp"

namespace shardline::router {

/// The outcome of each of `values`, in order. nullopt (with `error` set) when a parameter has
/// no bound value. `key` unset: the key type is not known yet and is guessed from each value.
[[nodiscard]] std::optional<std::vector<KeyOutcome>> resolve_keys(const std::vector<KeyValue>& values,
                                                                  std::optional<KeyType> key, KeyUse use,
                                                                  const BindValues* bind, int modulus,
                                                                  std::string* error);

/// The outcome of one value that belongs to no IN list or ARRAY (an INSERT row's key).
[[nodiscard]] std::optional<KeyOutcome> resolve_key(const KeyValue& value, std::optional<KeyType> key, KeyUse use,
                                                    const BindValues* bind, int modulus, std::string* error);

/// A tenant hint (`SET shardline.tenant`, `/* shardline: tenant=... */`), read as the key type.
[[nodiscard]] KeyOutcome resolve_hint(std::string_view hint, std::optional<KeyType> key, int modulus);

}  // namespace shardline::router
