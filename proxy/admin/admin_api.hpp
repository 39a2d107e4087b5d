#pragma once
// The JSON API under /api/: each endpoint is the admin console's SHOW table of the same name
// as an array of objects (one per row, keyed by column), so the console and the API agree.

#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "proxy/admin/admin_tables.hpp"

namespace shardline::proxy::admin {

/// Rows as objects; a `numeric` column is a JSON number (null when empty), others strings.
nlohmann::json table_json(const Table& t);

/// The table behind /api/<name> (shards, directory, replicas, tenants, reshards, pools, stats,
/// clients, servers), or nullopt for an unknown name.
std::optional<Table> api_table(session::Services& services, std::string_view name);

}  // namespace shardline::proxy::admin
