#pragma once
// Turns a template's key values (constants, $n with their Bind values, literals the shape cache
// replaced by $n, hints) into KeyDatums the way PostgreSQL types and coerces them, and decides
// each one's KeyOutcome. The one place where "which shard does this value name" is decided:
// against a directory, so a tenant it pins is placed on the tenant's own id (place_tenant).

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
                                                                  const BindValues* bind,
                                                                  const DirectorySnapshot& dir, std::string* error);

/// The outcome of one value that belongs to no IN list or ARRAY (an INSERT row's key).
[[nodiscard]] std::optional<KeyOutcome> resolve_key(const KeyValue& value, std::optional<KeyType> key, KeyUse use,
                                                    const BindValues* bind, const DirectorySnapshot& dir,
                                                    std::string* error);

/// A tenant hint (`SET shardline.tenant`, `/* shardline: tenant=... */`), read as the key type.
[[nodiscard]] KeyOutcome resolve_hint(std::string_view hint, std::optional<KeyType> key, const DirectorySnapshot& dir);

/// A value read as `key` for `use` (a COPY field), placed like the others.
[[nodiscard]] KeyOutcome resolve_text(std::string_view text, KeyType key, KeyUse use, const DirectorySnapshot& dir);

/// Moves a Logical outcome whose canonical text names a tenant the directory pins (or holds)
/// onto that tenant's id; every other outcome stays as it is.
void place_tenant(KeyOutcome& o, const DirectorySnapshot& dir);

}  // namespace shardline::router
