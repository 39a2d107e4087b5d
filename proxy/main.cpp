// shardline: a transparent sharding proxy for PostgreSQL. Subcommands per SPEC.md section 2.

#include <CLI/CLI.hpp>
#include <iostream>

#include "proxy/cli/commands.hpp"

int main(int argc, char** argv) {
  using namespace shardline::proxy::cli;
  CLI::App app{"shardline: a transparent sharding proxy for PostgreSQL"};
  app.require_subcommand(1);

  std::string config_path;
  auto* serve = app.add_subcommand("serve", "run the proxy");
  serve->add_option("--config,-c", config_path, "configuration file (YAML)")->required();

  auto* check = app.add_subcommand("check", "validate a configuration file");
  check->add_option("--config,-c", config_path, "configuration file (YAML)")->required();

  std::string migrate_dir;
  bool dry_run = false;
  auto* migrate = app.add_subcommand("migrate", "apply versioned migrations (NNNN_name.sql) to every shard");
  migrate->add_option("--config,-c", config_path, "configuration file (YAML)")->required();
  migrate->add_option("dir", migrate_dir, "directory of NNNN_name.sql files")->required();
  migrate->add_flag("--dry-run", dry_run, "print what would be applied, change nothing");

  DemoOptions demo_opts;
  auto* demo = app.add_subcommand("demo", "start a local sharded cluster and the proxy in the foreground");
  demo->add_option("--dir", demo_opts.dir, "work directory for the PostgreSQL servers");
  demo->add_option("--shards", demo_opts.shards, "number of primaries")->check(CLI::Range(1, 64));
  demo->add_option("--replicas", demo_opts.replicas, "streaming replicas per primary")->check(CLI::Range(0, 9));
  demo->add_option("--port", demo_opts.port, "proxy port");
  demo->add_option("--base-port", demo_opts.base_port, "first PostgreSQL port");
  demo->add_option("--http-port", demo_opts.http_port, "admin HTTP port: dashboard, /metrics, JSON API (0: off)");
  bool no_sample = false;
  demo->add_flag("--no-sample", no_sample,
                 "no sample schema, no walkthrough, no auto_tables: a bare cluster whose proxy shards no table");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 1;
  }
  if (*serve) return run_serve(config_path);
  if (*check) return run_check(config_path);
  if (*migrate) return run_migrate(config_path, migrate_dir, dry_run);
  if (*demo) {
    demo_opts.sample = !no_sample;
    return run_demo(demo_opts);
  }
  return 1;
}
