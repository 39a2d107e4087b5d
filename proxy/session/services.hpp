#pragma once
// Everything the data plane shares between client sessions. One instance, owned by the
// ProxyServer, used only from the data-plane thread.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <functional>
#include <string>
#include <unordered_map>

#include "config/config.hpp"
#include "proxy/admin/metrics_registry.hpp"
#include "proxy/backend/cluster.hpp"
#include "proxy/control/replica_state.hpp"
#include "proxy/control/twopc_resolution.hpp"
#include "proxy/exec/twopc_commit.hpp"
#include "proxy/control/reshard_service.hpp"
#include "proxy/protocol/scram.hpp"
#include "proxy/session/commit_positions.hpp"
#include "proxy/session/prepared_statements.hpp"
#include "router/directory/directory_snapshot.hpp"
#include "router/planner/template_cache.hpp"
#include "router/sharding/sharding_schema.hpp"

namespace shardline::proxy::session {

class ClientSession;

/// A configured user with its SCRAM secret derived once (PBKDF2 is deliberately slow).
struct Credentials {
  config::User user;
  protocol::ScramSecret scram;
};

struct Services {
  Services(boost::asio::any_io_executor executor, std::shared_ptr<const config::Config> cfg);

  /// Rebuilds the credentials from a (re)loaded configuration.
  void load_credentials(const config::Config& cfg);

  /// One shared copy of each distinct ParameterStatus set clients were sent.
  std::shared_ptr<const std::vector<std::pair<std::string, std::string>>> intern_parameters(
      std::vector<std::pair<std::string, std::string>> params) {
    std::string key;
    for (const auto& [n, v] : params) key.append(n).push_back('\0'), key.append(v).push_back('\0');
    auto& slot = parameter_sets_[key];
    if (auto existing = slot.lock()) return existing;
    auto fresh = std::make_shared<const std::vector<std::pair<std::string, std::string>>>(std::move(params));
    slot = fresh;
    if (parameter_sets_.size() > 1024)
      for (auto it = parameter_sets_.begin(); it != parameter_sets_.end();)
        it = it->second.expired() ? parameter_sets_.erase(it) : std::next(it);
    return fresh;
  }

  boost::asio::any_io_executor ex;
  backend::Cluster cluster;
  /// Counters and the hot-tenant sketch: updated by sessions, read by the admin console and HTTP.
  admin::MetricsRegistry metrics;
  StatementRegistry statements;
  /// Routing state, replaced whole by the control plane (directory changes, learned key types).
  std::shared_ptr<const router::DirectorySnapshot> directory;
  std::shared_ptr<const router::ShardingSchema> schema;
  router::TemplateCache templates;
  /// Where every write this proxy acknowledged committed (global consistency). The shard set
  /// never changes without a restart.
  std::unique_ptr<CommitPositions> commits;
  /// Replica health and lag from the control plane's lag monitor (null until its first round).
  std::shared_ptr<const control::ReplicaSnapshot> replicas;
  void set_schema(std::shared_ptr<const router::ShardingSchema> s) {
    schema = std::move(s);
    templates.clear();
  }
  std::unordered_map<std::string, Credentials> credentials;
  std::unique_ptr<boost::asio::ssl::context> client_tls;  ///< null: SSLRequest answered 'N'
  /// Live sessions by their proxy-issued BackendKeyData pid (cancel requests, SHOW CLIENTS).
  std::unordered_map<std::int32_t, ClientSession*> sessions;
  std::int32_t next_session_pid = 1;
  bool stopping = false;          ///< SIGTERM: finish transactions, then close
  std::uint64_t total_clients = 0;
  int logging_in = 0;             ///< sessions in startup/authentication (pool.max_login_clients)
  std::unordered_map<std::string, std::weak_ptr<const std::vector<std::pair<std::string, std::string>>>> parameter_sets_;
  /// Startup-packet settings a server accepted -> the values it reports for them (lower-case
  /// name -> value), so equal startup packets cost one server round trip per proxy, not one
  /// per connection. Bounded: cleared when it grows past 1024 entries.
  std::unordered_map<std::string, std::map<std::string, std::string>> normalized_settings;
  /// Called by the admin console's RELOAD; set by the ProxyServer.
  std::function<std::string()> reload;
  /// Re-learns the sharded tables' key types from the shards (after DDL through the proxy);
  /// completes once the new schema is in place, so the DDL's reply follows it. Set by the
  /// ProxyServer (the libpq work runs on its control thread).
  std::function<boost::asio::awaitable<void>()> relearn_key_types;
  /// Runs a RESHARD admin command on the control plane (reshard_service.hpp); set by the
  /// ProxyServer once the catalog is up.
  std::function<boost::asio::awaitable<control::ReshardReply>(control::ReshardRequest)> reshard;
  /// The shards' database collation orders text by bytes (C, POSIX, C.UTF-8), so scatter merges
  /// may compare text keys: learned at the first scatter read, then kept.
  std::optional<bool> bytewise_collation;
  /// Two-phase commit of transactions on several shards (cross_shard_transactions: 2pc; null
  /// otherwise). Set by the ProxyServer, which names the instance.
  std::unique_ptr<exec::TwopcCoordinator> twopc;
  /// What the resolver's last round saw prepared on the shards (SHOW TRANSACTIONS).
  std::shared_ptr<const std::vector<control::InDoubt>> in_doubt;
};

}  // namespace shardline::proxy::session
