#pragma once
// The subcommands of the `shardline` binary (SPEC.md section 2). Each returns the process exit
// code: 0 success, 1 user error (bad config or arguments), 2 runtime failure.

#include <cstdint>
#include <string>

namespace shardline::proxy::cli {

int run_serve(const std::string& config_path);
int run_check(const std::string& config_path);
/// Applies DIR's NNNN_name.sql migrations to every shard (or, with `dry_run`, lists them).
int run_migrate(const std::string& config_path, const std::string& dir, bool dry_run);

struct DemoOptions {
  std::string dir = "demo-data";
  int shards = 2;
  int replicas = 1;
  std::uint16_t port = 6432;
  std::uint16_t base_port = 15400;
  /// admin.http_port of the demo's proxy: /metrics, the JSON API and the dashboard (0: off).
  std::uint16_t http_port = 9930;
  /// Load the sample schema through the proxy and print the walkthrough; without it the demo is
  /// a bare cluster whose proxy shards no table (what test and benchmark harnesses start).
  bool sample = true;
};
int run_demo(const DemoOptions& options);

}  // namespace shardline::proxy::cli
