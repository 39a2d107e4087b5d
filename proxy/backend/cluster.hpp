#pragma once
// Every pool of every shard: the primary and each replica of each physical shard. Owns the
// data plane's view of the configuration, PAUSE/RESUME, and the parameter set that new clients
// are shown at startup (taken from a real backend, so clients see the server's version).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "proxy/backend/async_event.hpp"
#include "proxy/backend/pool.hpp"

namespace shardline::proxy::backend {

class Cluster {
 public:
  Cluster(boost::asio::any_io_executor ex, std::shared_ptr<const config::Config> cfg);

  const config::Config& config() const { return *config_; }
  std::shared_ptr<const config::Config> config_ptr() const { return config_; }
  /// Applies a reloaded configuration: users, pool sizes and timeouts take effect at once;
  /// changed shard endpoints close the idle connections of the affected pools.
  void apply_config(std::shared_ptr<const config::Config> cfg);

  int shard_count() const { return int(shards_.size()); }
  int shard_index(const std::string& name) const;
  int home_shard() const { return home_; }
  Pool& primary(int shard) { return *shards_[std::size_t(shard)].primary; }
  std::vector<std::unique_ptr<Pool>>& replicas(int shard) { return shards_[std::size_t(shard)].replicas; }
  std::vector<Pool*> all_pools();

  boost::asio::ssl::context* backend_tls() { return backend_tls_.get(); }

  bool paused() const { return paused_; }
  void pause() { paused_ = true; }
  void resume() {
    paused_ = false;
    resumed_.notify();
  }
  AsyncEvent& resumed_event() { return resumed_; }
  bool stopping() const { return stopping_; }
  void set_stopping() {
    stopping_ = true;
    for (auto* p : all_pools()) p->close_idle();
  }

  void remember_server_parameters(const std::vector<std::pair<std::string, std::string>>& params) {
    if (!server_parameters_) server_parameters_ = params;
  }
  const std::optional<std::vector<std::pair<std::string, std::string>>>& server_parameters() const {
    return server_parameters_;
  }

  /// Starts the periodic idle sweep.
  void start_maintenance();

 private:
  struct ShardPools {
    std::string name;
    std::unique_ptr<Pool> primary;
    std::vector<std::unique_ptr<Pool>> replicas;
  };
  void build_pools();

  boost::asio::any_io_executor ex_;
  std::shared_ptr<const config::Config> config_;
  std::vector<ShardPools> shards_;
  int home_ = 0;
  std::unique_ptr<boost::asio::ssl::context> backend_tls_;
  bool paused_ = false;
  bool stopping_ = false;
  AsyncEvent resumed_;
  std::optional<std::vector<std::pair<std::string, std::string>>> server_parameters_;
  boost::asio::steady_timer sweep_timer_;
};

}  // namespace shardline::proxy::backend
