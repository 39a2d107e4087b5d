// shardline: a transparent sharding proxy for PostgreSQL. Subcommands per SPEC.md section 2.

#include <CLI/CLI.hpp>
#include <iostream>

#include "proxy/cli/commands.hpp"
#include "proxy/cli/reshard_cli.hpp"

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

  ReshardCliOptions reshard_opts;
  auto* reshard = app.add_subcommand("reshard", "online reshard through a running proxy's admin console");
  reshard->require_subcommand(1);
  auto add_target = [&](CLI::App* c) {
    c->add_option("--admin", reshard_opts.admin_url, "admin console URL (postgresql://USER:PASSWORD@HOST:PORT/shardline)");
    c->add_option("--config,-c", reshard_opts.config_path, "configuration file: the admin console of its proxy");
  };
  auto* r_move = reshard->add_subcommand("move", "move a logical shard to another shard");
  r_move->add_option("--logical", reshard_opts.logical, "logical shard")->required()->check(CLI::NonNegativeNumber);
  r_move->add_option("--to", reshard_opts.target, "target shard")->required();
  add_target(r_move);
  auto* r_isolate = reshard->add_subcommand("isolate", "move one tenant to a shard and pin it there");
  r_isolate->add_option("--tenant", reshard_opts.tenant, "tenant key")->required();
  r_isolate->add_option("--to", reshard_opts.target, "target shard")->required();
  add_target(r_isolate);
  auto* r_status = reshard->add_subcommand("status", "list reshard jobs (SHOW RESHARDS)");
  add_target(r_status);
  auto* r_abort = reshard->add_subcommand("abort", "abort the running job (before its directory flip)");
  add_target(r_abort);

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
  if (*reshard) {
    for (auto* c : reshard->get_subcommands()) reshard_opts.action = c->get_name();
    return run_reshard_cli(reshard_opts);
  }
  if (*demo) {
    demo_opts.sample = !no_sample;
    return run_demo(demo_opts);
  }
  return 1;
}
