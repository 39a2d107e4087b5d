#include "proxy/cli/commands.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "config/loader.hpp"
#include "proxy/cli/demo_sample.hpp"
#include "proxy/control/local_cluster.hpp"
#include "proxy/control/migrator.hpp"
#include "proxy/session/proxy_server.hpp"

namespace shardline::proxy::cli {

namespace {

void setup_logging(config::LogLevel level) {
  auto logger = spdlog::stderr_color_mt("shardline");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  switch (level) {
    case config::LogLevel::Debug: spdlog::set_level(spdlog::level::debug); break;
    case config::LogLevel::Info: spdlog::set_level(spdlog::level::info); break;
    case config::LogLevel::Warn: spdlog::set_level(spdlog::level::warn); break;
    case config::LogLevel::Error: spdlog::set_level(spdlog::level::err); break;
  }
}

/// Loads and validates; prints every problem as FILE:LINE:COL: message.
std::shared_ptr<const config::Config> load_or_report(const std::string& path) {
  auto r = config::load_config_file(path);
  for (const auto& p : r.problems) std::cerr << p.str() << "\n";
  if (!r.ok()) return nullptr;
  return std::make_shared<const config::Config>(std::move(*r.config));
}

int serve(std::shared_ptr<const config::Config> cfg) {
  boost::asio::io_context io(1);
  session::ProxyServer server(io, cfg);
  try {
    server.bootstrap_catalog();
    server.start();
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 2;
  }
  io.run();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int run_check(const std::string& config_path) {
  auto cfg = load_or_report(config_path);
  if (!cfg) return 1;
  std::cout << config_path << ": OK (" << cfg->shards.size() << " shards, " << cfg->users.size()
            << " users, " << cfg->sharding.logical_shards << " logical shards)\n";
  return 0;
}

int run_migrate(const std::string& config_path, const std::string& dir, bool dry_run) {
  auto cfg = load_or_report(config_path);
  if (!cfg) return 1;
  control::MigrateError error;
  auto files = control::read_app_migrations(dir, error);
  if (error.exit_code == 0) error = control::apply_app_migrations(*cfg, files, dry_run, std::cout);
  if (error.exit_code != 0) std::cerr << "shardline migrate: " << error.message << "\n";
  return error.exit_code;
}

int run_serve(const std::string& config_path) {
  auto cfg = load_or_report(config_path);
  if (!cfg) return 1;
  setup_logging(cfg->log_level);
  return serve(cfg);
}

int run_demo(const DemoOptions& o) {
  setup_logging(config::LogLevel::Info);
  control::LocalClusterOptions lo;
  lo.dir = std::filesystem::absolute(o.dir);
  lo.shards = o.shards;
  lo.replicas = o.replicas;
  lo.base_port = o.base_port;
  std::optional<control::LocalCluster> cluster;
  try {
    cluster.emplace(lo);
    spdlog::info("starting {} primaries with {} replica(s) each under {}", o.shards, o.replicas, lo.dir.string());
    cluster->start();
  } catch (const std::exception& e) {
    spdlog::error("demo cluster: {}", e.what());
    return 2;
  }
  const auto config_path = lo.dir / "shardline.yaml";
  {
    std::ofstream f(config_path);
    f << cluster->config_yaml(o.port, o.http_port, o.sample ? kDemoShardingFields : "");
  }
  auto cfg = load_or_report(config_path.string());
  if (!cfg) return 2;

  boost::asio::io_context io(1);
  std::optional<session::ProxyServer> server;
  try {
    server.emplace(io, cfg);
    server->bootstrap_catalog();
    server->start();
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 2;
  }
  // The sample is loaded through the proxy itself (DDL to every shard, COPY rows routed by
  // tenant), from a client thread while the data plane runs on this one.
  std::atomic<bool> failed{false};
  std::thread loader([&] {
    const auto& u = cfg->users.front();
    const std::string conninfo = fmt::format("host=127.0.0.1 port={} user='{}' password='{}' dbname='{}'", o.port,
                                             u.name, u.password, u.database.empty() ? lo.database : u.database);
    try {
      std::ostringstream out;
      out << "\nshardline demo is up: " << o.shards << " shards x " << o.replicas << " replica(s), config "
          << config_path.string() << "\n";
      if (o.sample) {
        const bool loaded = load_demo_sample(conninfo);
        const auto n = demo_sample_counts();
        out << "  sample " << (loaded ? "loaded" : "already there") << ": " << n.tenants << " tenants, " << n.orders
            << " orders, " << n.order_items << " order_items sharded by tenant_id (sharding.auto_tables); plans ("
            << n.plans << " rows) is a reference table, a copy on every shard\n";
      }
      out << "  connect:  psql \"host=127.0.0.1 port=" << o.port << " user=" << lo.user << " password=" << lo.password
          << " dbname=" << lo.database << "\"\n"
          << "  admin:    psql \"host=127.0.0.1 port=" << o.port << " user=" << lo.user << " password=" << lo.password
          << " dbname=shardline\" -c 'SHOW POOLS'\n";
      if (o.sample) {
        out << "\nWalkthrough (paste any line):\n";
        for (const auto& step : demo_walkthrough(*cfg, o.http_port))
          out << "  # " << step.title << "\n  " << step.command << "\n";
      } else if (o.http_port != 0) {
        out << "  dashboard: http://127.0.0.1:" << o.http_port << "/\n";
      }
      out << "\nCtrl-C stops the proxy and every PostgreSQL server it started.\n\n";
      std::cout << out.str() << std::flush;
    } catch (const std::exception& e) {
      spdlog::error("loading the demo's sample schema through the proxy: {}", e.what());
      failed = true;
      ::raise(SIGINT);  // the proxy's own handler stops it; the cluster is stopped below
    }
  });
  io.run();
  loader.join();
  spdlog::info("stopped");
  server.reset();
  cluster->stop();
  return failed ? 2 : 0;
}

}  // namespace shardline::proxy::cli
