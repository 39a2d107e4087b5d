#pragma once
// The sample schema and data `shardline demo` loads through the proxy, and the walkthrough it
// prints: tenants, orders and order_items sharded by tenant_id (sharding.auto_tables), plans a
// reference table, rows for kDemoTenants tenants. Deterministic, so a test can check what landed.

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace shardline::proxy::cli {

inline constexpr int kDemoTenants = 1000;
inline constexpr int kDemoPlans = 3;
/// The `sharding:` entries the demo's config adds (LocalCluster::config_yaml).
inline constexpr const char* kDemoShardingFields = "auto_tables: true, reference_tables: [plans]";

/// Row counts of the sample (what a complete load holds, summed over the shards).
struct DemoSampleCounts {
  std::int64_t plans = 0;
  std::int64_t tenants = 0;
  std::int64_t orders = 0;
  std::int64_t order_items = 0;
  friend bool operator==(const DemoSampleCounts&, const DemoSampleCounts&) = default;
};
DemoSampleCounts demo_sample_counts();

/// Creates and fills the sample through the proxy at `conninfo` (libpq), unless a complete
/// sample is already there (a second `make demo`); a partial one is dropped and loaded again.
/// Returns true when it loaded. Throws std::runtime_error naming the statement and the error.
bool load_demo_sample(const std::string& conninfo);

/// One step of the walkthrough: what it shows and the shell command that shows it.
struct WalkthroughStep {
  std::string title;
  std::string command;
};

/// The walkthrough for a proxy on 127.0.0.1:`port` (app database and admin console), the shards'
/// primaries of `cfg` (direct connections) and the dashboard on `http_port` (0: none).
std::vector<WalkthroughStep> demo_walkthrough(const config::Config& cfg, std::uint16_t http_port);

}  // namespace shardline::proxy::cli
