#pragma once
// Builds the shardline YAML for a LocalCluster with the knobs integration tests turn (pool mode
// and size, timeouts, users and their auth methods, admin users, TLS, log level, sharded and
// reference tables, cross-shard policy), so each test states only what it changes and the rest
// stays a valid, complete config (SPEC section 3).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "proxy/control/local_cluster.hpp"

namespace shardline::testing {

/// One client-facing user of the proxy. `password` may be empty only for AuthMethod::Trust;
/// `database` empty means any database.
struct ProxyUser {
  std::string name;
  std::string password;
  std::string database = "app";
  config::AuthMethod auth = config::AuthMethod::ScramSha256;
};

/// One entry of `sharding.tables`. Empty `key` means the default key (tenant_id); empty `type`
/// lets the proxy learn the key's type from the shards.
struct ShardedTableSpec {
  std::string name;
  std::string key;
  std::string type;
};

/// The `replicas:` section (SPEC section 7); unset fields keep the proxy's defaults.
struct ReplicaSettings {
  // The `{}` lets tests name only some fields without -Wmissing-field-initializers.
  std::optional<std::int64_t> max_lag_bytes{};
  std::optional<int> max_lag_ms{};
  std::optional<int> poll_interval_ms{};
  std::optional<config::Consistency> default_consistency{};
  std::optional<int> read_after_wait_ms{};
  std::optional<bool> track_commit_lsn{};
};

/// Starts as the cluster's own config: one SCRAM user `app`/`secret` on database `app` (also the
/// backend login), `app` on the admin console, transaction pooling of 20, the home shard `s0`.
/// Setters validate their argument (std::invalid_argument naming it) and return *this.
class ProxyConfig {
 public:
  ProxyConfig(const control::LocalCluster& cluster, std::uint16_t listen_port);

  ProxyConfig& pool_mode(config::PoolMode mode);
  ProxyConfig& pool_size(int size);
  ProxyConfig& query_wait_timeout_ms(int ms);
  ProxyConfig& server_idle_timeout_ms(int ms);
  ProxyConfig& client_login_timeout_ms(int ms);
  ProxyConfig& max_login_clients(int n);
  /// Adds a user (a second user of the same name is refused: the proxy would refuse it too).
  ProxyConfig& add_user(ProxyUser user);
  /// Replaces the list of users allowed on the admin database `shardline`.
  ProxyConfig& admin_users(std::vector<std::string> names);
  ProxyConfig& tls(std::filesystem::path cert_file, std::filesystem::path key_file);
  ProxyConfig& log_level(config::LogLevel level);
  ProxyConfig& shutdown_timeout_ms(int ms);
  /// Adds a sharded table (a second table of the same name is refused, as the proxy would).
  ProxyConfig& sharded_table(ShardedTableSpec table);
  /// Replaces the list of reference tables (full copy on every shard).
  ProxyConfig& reference_tables(std::vector<std::string> names);
  ProxyConfig& cross_shard(config::CrossShard policy);
  ProxyConfig& cross_shard_transactions(config::CrossShardTransactions policy);
  /// sharding.auto_tables: every table that has tenant_id on every shard is sharded by it.
  ProxyConfig& auto_tables(bool on);
  /// Replica eligibility limits, lag poll interval and default read consistency.
  ProxyConfig& replicas(ReplicaSettings settings);
  /// admin.http_port (0, the default, turns the HTTP endpoint off).
  ProxyConfig& http_port(std::uint16_t port);
  /// More `admin:` fields, as YAML flow-map entries (e.g. "http_auth: basic, metrics: false").
  ProxyConfig& admin_options(std::string fields);
  /// More `pool:` fields, as YAML flow-map entries (e.g. "query_timeout_ms: 500").
  ProxyConfig& pool_options(std::string fields);
  /// Points shard `shard`'s primary at another port of 127.0.0.1 (a server that misbehaves).
  ProxyConfig& primary_port(int shard, std::uint16_t port);

  std::uint16_t port() const { return port_; }
  /// The complete YAML document.
  std::string yaml() const;

 private:
  const control::LocalCluster& cluster_;
  std::uint16_t port_;
  config::PoolMode pool_mode_ = config::PoolMode::Transaction;
  int pool_size_ = 20;
  std::optional<int> query_wait_timeout_ms_;
  std::optional<int> server_idle_timeout_ms_;
  std::optional<int> client_login_timeout_ms_;
  std::optional<int> max_login_clients_;
  std::vector<ProxyUser> users_;
  std::vector<std::string> admin_users_;
  std::filesystem::path tls_cert_;
  std::filesystem::path tls_key_;
  std::optional<config::LogLevel> log_level_;
  std::optional<int> shutdown_timeout_ms_;
  std::vector<ShardedTableSpec> sharded_tables_;
  std::vector<std::string> reference_tables_;
  std::optional<config::CrossShard> cross_shard_;
  std::optional<config::CrossShardTransactions> cross_shard_transactions_;
  bool auto_tables_ = false;
  ReplicaSettings replicas_;
  std::uint16_t http_port_ = 0;
  std::string admin_options_;
  std::string pool_options_;
  std::vector<std::pair<int, std::uint16_t>> primary_ports_;
};

}  // namespace shardline::testing
