#pragma once
// The data plane: accepts clients on the listen address, runs one session coroutine each, and
// handles SIGHUP (reload), SIGTERM (graceful: stop accepting, let transactions finish, exit)
// and SIGINT (fast exit).

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/thread_pool.hpp>

#include "config/config.hpp"
#include "proxy/admin/http_server.hpp"
#include "proxy/control/directory_watcher.hpp"
#include "proxy/control/lag_monitor.hpp"
#include "proxy/control/twopc_resolver.hpp"
#include "proxy/control/reshard_service.hpp"
#include "proxy/session/services.hpp"

namespace shardline::proxy::session {

class ProxyServer {
 public:
  ProxyServer(boost::asio::io_context& io, std::shared_ptr<const config::Config> cfg);
  /// Prepares the catalog (migrations, directory seeded from the YAML on first start) and
  /// learns key types; blocking, called before the data plane runs. Throws on failure.
  void bootstrap_catalog();
  /// Binds the listen address; throws std::runtime_error naming the address on failure.
  void start();
  ~ProxyServer();
  /// Re-reads the config file; returns "" on success or the problems found (old config kept).
  std::string reload();
  Services& services() { return services_; }
  /// The admin HTTP port actually bound (0 when admin.http_port is 0).
  std::uint16_t http_port() const { return http_ ? http_->port() : 0; }

 private:
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> relearn_key_types();
  static control::DirectoryWatcherOptions watcher_options();
  boost::asio::awaitable<control::ReshardReply> reshard(control::ReshardRequest request);
  /// Logs a warning when a tenant passes admin.hot_tenant_percent of its shard's queries.
  boost::asio::awaitable<void> hot_tenant_watch();
  void on_signal(int sig);
  void begin_shutdown(bool fast);

  boost::asio::io_context& io_;
  Services services_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer shutdown_timer_;
  std::function<void(boost::system::error_code)> shutdown_check_;
  /// Control plane: blocking libpq work (key types after DDL) off the data-plane thread.
  boost::asio::thread_pool control_{1};
  std::unique_ptr<control::DirectoryWatcher> watcher_;
  std::unique_ptr<control::LagMonitor> lag_monitor_;
  std::unique_ptr<control::TwopcResolver> resolver_;  ///< cross_shard_transactions: 2pc
  std::unique_ptr<control::ReshardService> reshard_;
  std::unique_ptr<admin::HttpServer> http_;
};

}  // namespace shardline::proxy::session
