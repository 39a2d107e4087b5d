#include "tests/integration/support/proxy_config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace shardline::testing {

namespace {

/// The hash modulus every test config uses; LocalCluster::config_yaml uses the same.
constexpr int kLogicalShards = 1024;

/// A YAML double-quoted scalar, so names and paths with ':' '#' or spaces stay one string.
std::string quoted(const std::string& v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

const char* auth_name(config::AuthMethod m) {
  switch (m) {
    case config::AuthMethod::ScramSha256: return "scram-sha-256";
    case config::AuthMethod::Md5: return "md5";
    case config::AuthMethod::Trust: return "trust";
  }
  throw std::invalid_argument("ProxyConfig: unknown auth method");
}

const char* level_name(config::LogLevel l) {
  switch (l) {
    case config::LogLevel::Debug: return "debug";
    case config::LogLevel::Info: return "info";
    case config::LogLevel::Warn: return "warn";
    case config::LogLevel::Error: return "error";
  }
  throw std::invalid_argument("ProxyConfig: unknown log level");
}

void require_positive(const char* what, int v) {
  if (v < 1) throw std::invalid_argument(fmt::format("ProxyConfig::{}: must be >= 1, got {}", what, v));
}

}  // namespace

ProxyConfig::ProxyConfig(const control::LocalCluster& cluster, std::uint16_t listen_port)
    : cluster_(cluster), port_(listen_port) {
  if (listen_port == 0) throw std::invalid_argument("ProxyConfig: listen port must not be 0");
  const auto& o = cluster.options();
  users_.push_back({o.user, o.password, o.database, config::AuthMethod::ScramSha256});
  admin_users_.push_back(o.user);
}

ProxyConfig& ProxyConfig::pool_mode(config::PoolMode mode) {
  pool_mode_ = mode;
  return *this;
}

ProxyConfig& ProxyConfig::pool_size(int size) {
  require_positive("pool_size", size);
  pool_size_ = size;
  return *this;
}

ProxyConfig& ProxyConfig::query_wait_timeout_ms(int ms) {
  require_positive("query_wait_timeout_ms", ms);
  query_wait_timeout_ms_ = ms;
  return *this;
}

ProxyConfig& ProxyConfig::client_login_timeout_ms(int ms) {
  require_positive("client_login_timeout_ms", ms);
  client_login_timeout_ms_ = ms;
  return *this;
}

ProxyConfig& ProxyConfig::max_login_clients(int n) {
  require_positive("max_login_clients", n);
  max_login_clients_ = n;
  return *this;
}

ProxyConfig& ProxyConfig::server_idle_timeout_ms(int ms) {
  require_positive("server_idle_timeout_ms", ms);
  server_idle_timeout_ms_ = ms;
  return *this;
}

ProxyConfig& ProxyConfig::add_user(ProxyUser user) {
  if (user.name.empty()) throw std::invalid_argument("ProxyConfig::add_user: empty user name");
  if (user.password.empty() && user.auth != config::AuthMethod::Trust)
    throw std::invalid_argument(fmt::format(
        "ProxyConfig::add_user: user '{}' needs a password (only trust users may omit it)", user.name));
  const bool taken = std::any_of(users_.begin(), users_.end(),
                                 [&](const ProxyUser& u) { return u.name == user.name; });
  if (taken)
    throw std::invalid_argument(fmt::format("ProxyConfig::add_user: user '{}' is already defined", user.name));
  users_.push_back(std::move(user));
  return *this;
}

ProxyConfig& ProxyConfig::admin_users(std::vector<std::string> names) {
  for (const auto& n : names) {
    const bool known = std::any_of(users_.begin(), users_.end(), [&](const ProxyUser& u) { return u.name == n; });
    if (!known)
      throw std::invalid_argument(fmt::format(
          "ProxyConfig::admin_users: '{}' is not a user of this config (add_user it first)", n));
  }
  admin_users_ = std::move(names);
  return *this;
}

ProxyConfig& ProxyConfig::tls(std::filesystem::path cert_file, std::filesystem::path key_file) {
  if (cert_file.empty() || key_file.empty())
    throw std::invalid_argument("ProxyConfig::tls: both the certificate and the key file are required");
  tls_cert_ = std::move(cert_file);
  tls_key_ = std::move(key_file);
  return *this;
}

ProxyConfig& ProxyConfig::log_level(config::LogLevel level) {
  log_level_ = level;
  return *this;
}

ProxyConfig& ProxyConfig::shutdown_timeout_ms(int ms) {
  if (ms < 0) throw std::invalid_argument(fmt::format("ProxyConfig::shutdown_timeout_ms: must be >= 0, got {}", ms));
  shutdown_timeout_ms_ = ms;
  return *this;
}

ProxyConfig& ProxyConfig::sharded_table(ShardedTableSpec table) {
  if (table.name.empty()) throw std::invalid_argument("ProxyConfig::sharded_table: empty table name");
  const auto same = [&](const std::string& n) { return n == table.name; };
  if (std::any_of(sharded_tables_.begin(), sharded_tables_.end(),
                  [&](const ShardedTableSpec& t) { return same(t.name); }))
    throw std::invalid_argument(
        fmt::format("ProxyConfig::sharded_table: table '{}' is already sharded", table.name));
  if (std::any_of(reference_tables_.begin(), reference_tables_.end(), same))
    throw std::invalid_argument(
        fmt::format("ProxyConfig::sharded_table: table '{}' is already a reference table", table.name));
  sharded_tables_.push_back(std::move(table));
  return *this;
}

ProxyConfig& ProxyConfig::auto_tables(bool on) {
  auto_tables_ = on;
  return *this;
}

ProxyConfig& ProxyConfig::reference_tables(std::vector<std::string> names) {
  for (const auto& n : names) {
    if (n.empty()) throw std::invalid_argument("ProxyConfig::reference_tables: empty table name");
    if (std::count(names.begin(), names.end(), n) > 1)
      throw std::invalid_argument(fmt::format("ProxyConfig::reference_tables: '{}' is listed twice", n));
    if (std::any_of(sharded_tables_.begin(), sharded_tables_.end(),
                    [&](const ShardedTableSpec& t) { return t.name == n; }))
      throw std::invalid_argument(
          fmt::format("ProxyConfig::reference_tables: '{}' is already a sharded table", n));
  }
  reference_tables_ = std::move(names);
  return *this;
}

ProxyConfig& ProxyConfig::cross_shard_transactions(config::CrossShardTransactions policy) {
  cross_shard_transactions_ = policy;
  return *this;
}

ProxyConfig& ProxyConfig::cross_shard(config::CrossShard policy) {
  cross_shard_ = policy;
  return *this;
}

ProxyConfig& ProxyConfig::replicas(ReplicaSettings settings) {
  if (settings.max_lag_bytes && *settings.max_lag_bytes < 0)
    throw std::invalid_argument(
        fmt::format("ProxyConfig::replicas: max_lag_bytes must be >= 0, got {}", *settings.max_lag_bytes));
  if (settings.max_lag_ms && *settings.max_lag_ms < 0)
    throw std::invalid_argument(
        fmt::format("ProxyConfig::replicas: max_lag_ms must be >= 0, got {}", *settings.max_lag_ms));
  if (settings.poll_interval_ms) require_positive("replicas.poll_interval_ms", *settings.poll_interval_ms);
  replicas_ = settings;
  return *this;
}

ProxyConfig& ProxyConfig::http_port(std::uint16_t port) {
  http_port_ = port;
  return *this;
}

ProxyConfig& ProxyConfig::pool_options(std::string fields) {
  pool_options_ = std::move(fields);
  return *this;
}

ProxyConfig& ProxyConfig::primary_port(int shard, std::uint16_t port) {
  if (shard < 0 || shard >= cluster_.options().shards)
    throw std::invalid_argument(fmt::format("primary_port: no shard {}", shard));
  primary_ports_.emplace_back(shard, port);
  return *this;
}

ProxyConfig& ProxyConfig::admin_options(std::string fields) {
  admin_options_ = std::move(fields);
  return *this;
}

std::string ProxyConfig::yaml() const {
  const auto& o = cluster_.options();
  std::string y;
  y += fmt::format("listen: {{host: 127.0.0.1, port: {}}}\n", port_);
  if (!tls_cert_.empty())
    y += fmt::format("tls: {{cert: {}, key: {}}}\n", quoted(tls_cert_.string()), quoted(tls_key_.string()));
  std::string admins;
  for (const auto& a : admin_users_) admins += (admins.empty() ? "" : ", ") + quoted(a);
  y += fmt::format("admin: {{http_port: {}, users: [{}]{}{}}}\n", http_port_, admins,
                   admin_options_.empty() ? "" : ", ", admin_options_);
  y += "users:\n";
  for (const auto& u : users_) {
    y += fmt::format("  - {{name: {}", quoted(u.name));
    if (!u.password.empty()) y += fmt::format(", password: {}", quoted(u.password));
    if (!u.database.empty()) y += fmt::format(", database: {}", quoted(u.database));
    y += fmt::format(", auth: {}}}\n", auth_name(u.auth));
  }
  y += fmt::format("backend: {{user: {}, password: {}, database: {}}}\n", quoted(o.user),
                   quoted(o.password), quoted(o.database));
  y += fmt::format("control: {{user: {}, password: {}}}\n", control::LocalCluster::kControlRole, quoted(o.password));
  y += fmt::format("pool: {{mode: {}, size: {}",
                   pool_mode_ == config::PoolMode::Transaction ? "transaction" : "session", pool_size_);
  if (query_wait_timeout_ms_) y += fmt::format(", query_wait_timeout_ms: {}", *query_wait_timeout_ms_);
  if (server_idle_timeout_ms_) y += fmt::format(", server_idle_timeout_ms: {}", *server_idle_timeout_ms_);
  if (client_login_timeout_ms_) y += fmt::format(", client_login_timeout_ms: {}", *client_login_timeout_ms_);
  if (max_login_clients_) y += fmt::format(", max_login_clients: {}", *max_login_clients_);
  if (!pool_options_.empty()) y += ", " + pool_options_;
  y += "}\n";
  y += fmt::format("sharding:\n  logical_shards: {}\n  key: tenant_id\n  home_shard: s0\n", kLogicalShards);
  if (cross_shard_)
    y += fmt::format("  cross_shard: {}\n", *cross_shard_ == config::CrossShard::Allow ? "allow" : "deny");
  if (cross_shard_transactions_)
    y += fmt::format("  cross_shard_transactions: {}\n",
                     *cross_shard_transactions_ == config::CrossShardTransactions::TwoPhaseCommit ? "2pc" : "deny");
  if (auto_tables_) y += "  auto_tables: true\n";
  if (!sharded_tables_.empty()) {
    y += "  tables:\n";
    for (const auto& t : sharded_tables_) {
      std::string fields;
      if (!t.key.empty()) fields += "key: " + quoted(t.key);
      if (!t.type.empty()) fields += (fields.empty() ? "" : ", ") + std::string("type: ") + quoted(t.type);
      y += fmt::format("    {}: {{{}}}\n", quoted(t.name), fields);
    }
  }
  if (!reference_tables_.empty()) {
    std::string refs;
    for (const auto& r : reference_tables_) refs += (refs.empty() ? "" : ", ") + quoted(r);
    y += fmt::format("  reference_tables: [{}]\n", refs);
  }
  y += "directory:\n";
  for (int i = 0; i < o.shards; ++i) {
    const int first = i * kLogicalShards / o.shards;
    const int last = (i + 1) * kLogicalShards / o.shards - 1;
    y += fmt::format("  - {{logical: {}-{}, shard: s{}}}\n", first, last, i);
  }
  y += "shards:\n";
  for (int i = 0; i < o.shards; ++i) {
    std::string replicas;
    for (int r = 0; r < o.replicas; ++r)
      replicas += fmt::format("{}{{host: 127.0.0.1, port: {}}}", r == 0 ? "" : ", ", cluster_.replica_port(i, r));
    std::uint16_t primary = cluster_.primary_port(i);
    for (const auto& [shard, port] : primary_ports_)
      if (shard == i) primary = port;
    y += fmt::format("  s{}: {{primary: {{host: 127.0.0.1, port: {}}}, replicas: [{}]}}\n", i, primary, replicas);
  }
  std::string limits;
  const auto field = [&](const char* name, const std::string& value) {
    limits += fmt::format("{}{}: {}", limits.empty() ? "" : ", ", name, value);
  };
  if (replicas_.max_lag_bytes) field("max_lag_bytes", std::to_string(*replicas_.max_lag_bytes));
  if (replicas_.max_lag_ms) field("max_lag_ms", std::to_string(*replicas_.max_lag_ms));
  if (replicas_.poll_interval_ms) field("poll_interval_ms", std::to_string(*replicas_.poll_interval_ms));
  if (replicas_.read_after_wait_ms) field("read_after_wait_ms", std::to_string(*replicas_.read_after_wait_ms));
  if (replicas_.track_commit_lsn) field("track_commit_lsn", *replicas_.track_commit_lsn ? "true" : "false");
  if (replicas_.default_consistency) field("default_consistency", config::consistency_name(*replicas_.default_consistency));
  if (!limits.empty()) y += fmt::format("replicas: {{{}}}\n", limits);
  if (log_level_) y += fmt::format("log_level: {}\n", level_name(*log_level_));
  if (shutdown_timeout_ms_) y += fmt::format("shutdown_timeout_ms: {}\n", *shutdown_timeout_ms_);
  return y;
}

}  // namespace shardline::testing
