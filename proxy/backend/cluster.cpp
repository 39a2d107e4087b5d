#include "proxy/backend/cluster.hpp"

#include <spdlog/spdlog.h>

namespace shardline::proxy::backend {

Cluster::Cluster(boost::asio::any_io_executor ex, std::shared_ptr<const config::Config> cfg)
    : ex_(ex), config_(std::move(cfg)), resumed_(ex), sweep_timer_(ex) {
  if (config_->backend.tls != config::BackendTlsMode::Disable) {
    // Like libpq's sslmode=require/prefer: encrypt, without verifying the server certificate.
    backend_tls_ = std::make_unique<boost::asio::ssl::context>(boost::asio::ssl::context::tls_client);
    backend_tls_->set_verify_mode(boost::asio::ssl::verify_none);
  }
  build_pools();
}

void Cluster::build_pools() {
  for (const auto& s : config_->shards) {
    ShardPools sp;
    sp.name = s.name;
    sp.primary = std::make_unique<Pool>(*this, s.name, -1, s.primary);
    for (std::size_t i = 0; i < s.replicas.size(); ++i)
      sp.replicas.push_back(std::make_unique<Pool>(*this, s.name, int(i), s.replicas[i]));
    shards_.push_back(std::move(sp));
  }
  home_ = std::max(0, shard_index(config_->sharding.home_shard.empty() ? config_->shards.front().name
                                                                       : config_->sharding.home_shard));
}

int Cluster::shard_index(const std::string& name) const {
  for (std::size_t i = 0; i < shards_.size(); ++i)
    if (shards_[i].name == name) return int(i);
  return -1;
}

std::vector<Pool*> Cluster::all_pools() {
  std::vector<Pool*> out;
  for (auto& s : shards_) {
    out.push_back(s.primary.get());
    for (auto& r : s.replicas) out.push_back(r.get());
  }
  return out;
}

void Cluster::apply_config(std::shared_ptr<const config::Config> cfg) {
  // Pools keep their identity (sessions hold references); shard topology changes need a
  // restart and are refused by the caller before we get here.
  config_ = std::move(cfg);
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    const auto& s = config_->shards[i];
    if (shards_[i].primary->endpoint().host != s.primary.host ||
        shards_[i].primary->endpoint().port != s.primary.port)
      spdlog::warn("RELOAD: endpoint change of shard {} needs a restart", s.name);
  }
  resumed_.notify();  // waiters re-read pool sizes
}

void Cluster::start_maintenance() {
  sweep_timer_.expires_after(std::chrono::seconds(1));
  sweep_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopping_) return;
    const auto now = Clock::now();
    for (auto* p : all_pools()) p->sweep(now);
    start_maintenance();
  });
}

}  // namespace shardline::proxy::backend
