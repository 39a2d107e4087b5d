#include "proxy/session/proxy_server.hpp"

#include <unistd.h>

#include <cstdlib>
#include <random>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "config/loader.hpp"
#include "proxy/control/catalog.hpp"
#include "proxy/control/table_learner.hpp"
#include "proxy/protocol/message_writer.hpp"
#include "proxy/session/client_session.hpp"

namespace shardline::proxy::session {

namespace asio = boost::asio;

ProxyServer::ProxyServer(asio::io_context& io, std::shared_ptr<const config::Config> cfg)
    : io_(io),
      services_(io.get_executor(), cfg),
      acceptor_(io),
      signals_(io, SIGTERM, SIGINT, SIGHUP),
      shutdown_timer_(io) {
  services_.reload = [this] { return reload(); };
  services_.relearn_key_types = [this] { return relearn_key_types(); };
}

asio::awaitable<control::ReshardReply> ProxyServer::reshard(control::ReshardRequest request) {
  // Blocking catalog and shard work: on the control thread, awaited like relearn_key_types.
  auto reply = std::make_shared<control::ReshardReply>();
  auto done = std::make_shared<asio::steady_timer>(io_, asio::steady_timer::time_point::max());
  asio::post(control_, [this, request, reply, done] {
    *reply = reshard_->submit(request);
    asio::post(io_, [done] { done->cancel(); });
  });
  (void)co_await done->async_wait(asio::as_tuple(asio::use_awaitable));
  co_return *reply;
}

asio::awaitable<void> ProxyServer::relearn_key_types() {
  // The libpq calls block: they run on the control thread; this coroutine waits on a timer
  // that the result's delivery (back on the data-plane thread) cancels.
  auto cfg = services_.cluster.config_ptr();
  auto done = std::make_shared<asio::steady_timer>(io_, asio::steady_timer::time_point::max());
  asio::post(control_, [this, cfg, done] {
    std::optional<router::LearnedTables> learned;
    try {
      learned = control::learn_tables(*cfg);
    } catch (const std::exception& e) {
      spdlog::warn("learning key types after DDL: {}", e.what());
    }
    asio::post(io_, [this, cfg, done, learned] {
      if (learned) services_.set_schema(router::ShardingSchema::from_config(*cfg, *learned));
      done->cancel();
    });
  });
  (void)co_await done->async_wait(asio::as_tuple(asio::use_awaitable));
}

ProxyServer::~ProxyServer() {
  if (resolver_) resolver_->stop();
  if (lag_monitor_) lag_monitor_->stop();
  if (watcher_) watcher_->stop();
  control_.join();
  reshard_.reset();
}

control::DirectoryWatcherOptions ProxyServer::watcher_options() {
  control::DirectoryWatcherOptions o;
  // Names this proxy in shardline.proxy_epochs (a reshard cutover waits for every live proxy).
  std::random_device rd;
  o.proxy_id = fmt::format("{:08x}{:08x}-{}", rd(), rd(), ::getpid());
  return o;
}

void ProxyServer::bootstrap_catalog() {
  auto cfg = services_.cluster.config_ptr();
  control::Catalog catalog(control::Catalog::default_conninfo(*cfg));
  catalog.migrate();
  auto dir = catalog.load_or_seed(*cfg);
  services_.directory = dir;
  try {
    services_.set_schema(router::ShardingSchema::from_config(*cfg, control::learn_tables(*cfg)));
  } catch (const std::exception& e) {
    spdlog::warn("key types: {} (tables not created yet are learned after their DDL)", e.what());
  }
  spdlog::info("directory epoch {} loaded from the catalog at {}", dir->epoch(), catalog.where());
  if (cfg->sharding.cross_shard_transactions == config::CrossShardTransactions::TwoPhaseCommit) {
    // The first resolver round runs now: this instance's heartbeat exists before its first
    // commit, and what a crash left prepared is resolved before clients come.
    const std::string owner = control::twopc_instance_name(*cfg);
    resolver_ = std::make_unique<control::TwopcResolver>(*cfg, owner, [this](auto seen) {
      asio::post(io_, [this, seen] { services_.in_doubt = seen; });
    });
    resolver_->round();
    services_.twopc = std::make_unique<exec::TwopcCoordinator>(owner, services_.cluster.primary(0),
                                                               cfg->pool.query_wait_timeout_ms);
    spdlog::info("two-phase commit on: gids shardline:{}:<n>", owner);
  }
  watcher_ = std::make_unique<control::DirectoryWatcher>(
      catalog.conninfo(), *cfg, dir->epoch(),
      [this](std::shared_ptr<const router::DirectorySnapshot> snap) {
        asio::post(io_, [this, snap] {
          if (!services_.directory || snap->epoch() > services_.directory->epoch()) {
            spdlog::info("directory changed: epoch {}", snap->epoch());
            // Rows that moved onto a shard reached its primary by replication from another
            // shard: no write this proxy acknowledged there covers them, so its replicas serve
            // reads again only once a primary sample taken after the flip shows them caught up.
            if (services_.directory && services_.commits)
              for (int s : snap->shards_gaining_from(*services_.directory))
                if (s < services_.commits->shards()) services_.commits->shard(s).commit_unknown(WriteMarks::Clock::now());
            services_.directory = snap;
          }
        });
      },
      watcher_options());
  control::ReshardOptions options;
  if (const char* d = std::getenv("SHARDLINE_TEST_RESHARD_PHASE_DELAY_MS"))
    options.phase_delay = std::chrono::milliseconds(std::atoi(d));
  reshard_ = std::make_unique<control::ReshardService>(
      cfg, control::Catalog::default_conninfo(*cfg),
      [this](std::vector<control::ReshardStatus> jobs) {
        services_.metrics.publish_reshards(std::make_shared<const std::vector<control::ReshardStatus>>(std::move(jobs)));
      },
      options);
  services_.reshard = [this](control::ReshardRequest r) { return reshard(std::move(r)); };
}

void ProxyServer::start() {
  const auto& cfg = services_.cluster.config();
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(cfg.listen.host == "localhost" ? "127.0.0.1" : cfg.listen.host, ec);
  if (ec) throw std::runtime_error(fmt::format("listen.host \"{}\" is not an IP address", cfg.listen.host));
  tcp::endpoint ep(addr, cfg.listen.port);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(ep, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot listen on {}:{}: {}", cfg.listen.host, cfg.listen.port, ec.message()));
  acceptor_.listen(asio::socket_base::max_listen_connections);
  spdlog::info("shardline listening on {}:{} ({} shards, pool {} x {})", cfg.listen.host, cfg.listen.port,
               cfg.shards.size(), cfg.pool.mode == config::PoolMode::Transaction ? "transaction" : "session",
               cfg.pool.size);
  services_.cluster.start_maintenance();
  if (resolver_) resolver_->start();
  bool any_replica = false;
  for (const auto& sh : cfg.shards) any_replica = any_replica || !sh.replicas.empty();
  if (any_replica) {
    // Replica health and lag, polled off this thread; each round's snapshot replaces the last.
    lag_monitor_ = std::make_unique<control::LagMonitor>(cfg, [this](std::shared_ptr<const control::ReplicaSnapshot> snap) {
      asio::post(io_, [this, snap] { services_.replicas = snap; });
    });
    lag_monitor_->start();
  }
  if (cfg.admin.http_port != 0) {
    http_ = std::make_unique<admin::HttpServer>(services_);
    http_->start(cfg.listen.host, cfg.admin.http_port);
  }
  signals_.async_wait([this](boost::system::error_code e, int sig) {
    if (!e) on_signal(sig);
  });
  asio::co_spawn(io_, accept_loop(), asio::detached);
  asio::co_spawn(io_, hot_tenant_watch(), asio::detached);
  asio::co_spawn(io_, run_timeout_janitor(services_), asio::detached);
}

asio::awaitable<void> ProxyServer::hot_tenant_watch() {
  asio::steady_timer timer(io_);
  while (!services_.stopping) {
    timer.expires_after(std::chrono::seconds(5));
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    const auto& a = services_.cluster.config().admin;
    if (a.hot_tenant_percent <= 0 || !services_.metrics.enabled()) continue;
    for (const auto& t : services_.metrics.tenants().newly_hot(a.hot_tenant_percent / 100.0,
                                                               std::uint64_t(a.hot_tenant_min_queries))) {
      const auto& shard = services_.cluster.config().shards[std::size_t(t.shard)].name;
      spdlog::warn("hot tenant {} (logical shard {}): {:.1f}% of shard {}'s {} queries (over {}%)", t.tenant, t.logical,
                   t.share * 100, shard, services_.metrics.tenants().shard_total(t.shard), a.hot_tenant_percent);
    }
  }
}

asio::awaitable<void> ProxyServer::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      spdlog::warn("accept failed: {}", ec.message());
      if (ec == asio::error::no_descriptors) {
        asio::steady_timer t(io_, std::chrono::milliseconds(100));  // EMFILE: back off, do not spin
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      }
      continue;
    }
    if (int(services_.sessions.size()) >= services_.cluster.config().pool.max_client_conn) {
      std::string out;
      protocol::MessageWriter(out).error(protocol::SqlError::fatal(
          protocol::sqlstate::kTooManyConnections,
          fmt::format("too many client connections: max_client_conn is {}",
                      services_.cluster.config().pool.max_client_conn)));
      boost::system::error_code ignored;
      asio::write(socket, asio::buffer(out), ignored);
      continue;
    }
    asio::co_spawn(io_, run_session(std::move(socket), services_), asio::detached);
  }
}

std::string ProxyServer::reload() {
  const auto& old = services_.cluster.config();
  auto loaded = config::load_config_file(old.path);
  if (!loaded.ok()) {
    std::string all;
    for (const auto& p : loaded.problems) all += (all.empty() ? "" : "; ") + p.str();
    spdlog::error("reload of {} refused, keeping the running configuration: {}", old.path, all);
    return all;
  }
  auto fresh = std::make_shared<const config::Config>(std::move(*loaded.config));
  if (fresh->shards.size() != old.shards.size()) return "the set of shards changed: restart the proxy";
  for (std::size_t i = 0; i < fresh->shards.size(); ++i)
    if (fresh->shards[i].name != old.shards[i].name ||
        fresh->shards[i].replicas.size() != old.shards[i].replicas.size())
      return "the set of shards changed: restart the proxy";
  services_.load_credentials(*fresh);
  services_.cluster.apply_config(fresh);
  spdlog::info("configuration reloaded from {}", fresh->path);
  return "";
}

void ProxyServer::on_signal(int sig) {
  if (sig == SIGHUP) {
    reload();
  } else {
    begin_shutdown(sig == SIGINT || services_.stopping);
  }
  signals_.async_wait([this](boost::system::error_code e, int s) {
    if (!e) on_signal(s);
  });
}

void ProxyServer::begin_shutdown(bool fast) {
  boost::system::error_code ec;
  acceptor_.close(ec);
  if (http_) http_->stop();
  if (fast) {
    spdlog::info("shutting down now");
    io_.stop();
    return;
  }
  spdlog::info("SIGTERM: no new clients; waiting for {} session(s) to finish their transactions",
               services_.sessions.size());
  services_.stopping = true;
  services_.cluster.set_stopping();
  for (auto& [pid, s] : services_.sessions) s->shutdown_when_idle();
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(services_.cluster.config().shutdown_timeout_ms);
  // Poll until every session is gone or the timeout passes.
  shutdown_check_ = [this, deadline](boost::system::error_code e) {
    if (e) return;
    if (services_.sessions.empty() || std::chrono::steady_clock::now() >= deadline) {
      if (!services_.sessions.empty())
        spdlog::warn("shutdown timeout: closing {} session(s) still in a transaction", services_.sessions.size());
      io_.stop();
      return;
    }
    shutdown_timer_.expires_after(std::chrono::milliseconds(20));
    shutdown_timer_.async_wait(shutdown_check_);
  };
  shutdown_timer_.expires_after(std::chrono::milliseconds(1));
  shutdown_timer_.async_wait(shutdown_check_);
}

}  // namespace shardline::proxy::session
