#pragma once
// The admin console's SHOW results as tables, built from the services and the metrics
// registry. The console prints them as result sets and the HTTP API serves the same tables as
// JSON (admin_api.hpp), so the two always agree.

#include <string>
#include <vector>

#include "proxy/session/services.hpp"

namespace shardline::proxy::admin {

/// A result set in text form. `numeric` names the columns the JSON API serves as numbers.
struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> numeric;
};

Table show_pools(session::Services& s);
Table show_clients(session::Services& s);
Table show_servers(session::Services& s);
/// Per (shard, role): transactions and bytes from the pools, queries and their time from the
/// metrics registry.
Table show_stats(session::Services& s);
Table show_config(session::Services& s);
Table show_directory(session::Services& s);
Table show_replicas(session::Services& s);
/// Each shard: its primary, its replicas, its share of the directory and its primary's pool use.
Table show_shards(session::Services& s);
/// The hottest tenants (SPEC section 9): tenant, shard, logical, queries, total_ms, share.
Table show_tenants(session::Services& s, std::size_t limit = 100);
/// Reshard jobs as their runner published them (SPEC section 8 columns).
Table show_reshards(session::Services& s);

}  // namespace shardline::proxy::admin
