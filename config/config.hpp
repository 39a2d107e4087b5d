#pragma once
// Typed configuration of shardline (../shared/SPEC.md section 3). Loaded from YAML by
// config/loader.hpp; every field has the default a PostgreSQL proxy user would expect.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardline::config {

struct Endpoint {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5432;
};

/// How a client proves who it is to the proxy. SCRAM is the default, as in PostgreSQL 14+.
enum class AuthMethod { ScramSha256, Md5, Trust };

struct User {
  std::string name;
  std::string password;
  std::string database;  ///< the database this user may connect to ("" = any)
  AuthMethod auth = AuthMethod::ScramSha256;
};

/// Client-facing TLS: enabled when both files are set; SSLRequest is then answered 'S'.
struct Tls {
  std::string cert_file;
  std::string key_file;
  bool enabled() const { return !cert_file.empty() && !key_file.empty(); }
};

/// TLS from the proxy to the shards, with libpq's sslmode names.
enum class BackendTlsMode { Disable, Prefer, Require };

struct Backend {
  std::string user;
  std::string password;
  std::string database;
  BackendTlsMode tls = BackendTlsMode::Disable;
  int connect_timeout_ms = 5000;
};

enum class PoolMode { Transaction, Session };

struct Pool {
  PoolMode mode = PoolMode::Transaction;
  int size = 20;                        ///< server connections per (shard, role)
  int max_client_conn = 10000;          ///< more clients get 53300
  int query_wait_timeout_ms = 10000;    ///< how long a client waits for a server (then 53300)
  int server_idle_timeout_ms = 600000;  ///< idle server connections are closed after this
  int server_lifetime_ms = 3600000;     ///< a server older than this is closed when released
  /// A client that has not finished startup and authentication this long after connecting is
  /// disconnected (PgBouncer's client_login_timeout).
  int client_login_timeout_ms = 60000;
  /// Clients in the login phase at once; more are refused with 53300 (a storm of half-open
  /// logins cannot exhaust the proxy).
  int max_login_clients = 1000;
  // PgBouncer's timeouts (README "Timeouts"); 0 turns each off. Checked by one proxy-wide timer
  // (TimeoutJanitor), so they fire up to a tenth of the shortest one (at least 10 ms) late.
  /// A statement running longer is cancelled on its server (57014); a server that does not
  /// answer the cancel within another query_timeout (at least 2 s) is closed with the client (FATAL 57014).
  int query_timeout_ms = 0;
  /// A client idle this long inside a transaction is disconnected (FATAL 25P03, PostgreSQL's
  /// idle_in_transaction_session_timeout SQLSTATE); its server is closed, not reused.
  int idle_transaction_timeout_ms = 0;
  /// A client idle this long outside a transaction is disconnected (FATAL 57P05, PostgreSQL's
  /// idle_session_timeout SQLSTATE).
  int client_idle_timeout_ms = 0;
  /// TCP connect plus login to a shard server, together (0: backend.connect_timeout_ms).
  int server_connect_timeout_ms = 0;
  /// After a failed connect or login to a server, new connections to it are not tried for this
  /// long: clients needing one get 08006 "server login has been failing" at once.
  int server_login_retry_ms = 1000;
};

struct Admin {
  std::uint16_t http_port = 0;        ///< 0: no HTTP endpoint
  std::vector<std::string> users;     ///< users allowed on the admin database `shardline`
  /// HTTP basic auth on every path: an admin user with its password (off: anyone who can reach
  /// the port, which binds to the listen host, may read it).
  bool http_auth = false;
  bool metrics = true;                ///< false: sessions update no counters (bench baseline)
  int tenant_top_k = 1000;            ///< tenants the hot-tenant sketch monitors (its memory bound)
  /// Log a warning when one tenant has more than this percentage of its shard's queries
  /// (0: never).
  int hot_tenant_percent = 50;
  int hot_tenant_min_queries = 1000;  ///< ... once its shard has served at least this many
};

struct Listen {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6432;
};

/// A sharded table: its rows are spread over logical shards by `key`.
struct ShardedTable {
  std::string name;
  std::string key;                 ///< defaults to Sharding::key
  std::optional<std::string> type; ///< key type; unset: learned from the shards' catalog
};

enum class CrossShard { Allow, Deny };
enum class CrossShardTransactions { Deny, TwoPhaseCommit };

struct Sharding {
  int logical_shards = 1024;
  std::string key = "tenant_id";
  std::vector<ShardedTable> tables;
  /// Every table that has the `key` column on every shard is sharded by it, learned from the
  /// shards' catalogs (again after DDL through the proxy); `tables` entries win, reference
  /// tables are never auto-sharded.
  bool auto_tables = false;
  std::vector<std::string> reference_tables;
  std::string home_shard;  ///< defaults to the first shard in `shards`
  CrossShard cross_shard = CrossShard::Allow;
  CrossShardTransactions cross_shard_transactions = CrossShardTransactions::Deny;
};

/// One bootstrap directory entry: logical shards [first, last] live on physical `shard`.
struct DirectoryRange {
  int first = 0;
  int last = 0;
  std::string shard;
};

struct Shard {
  std::string name;
  Endpoint primary;
  std::vector<Endpoint> replicas;
};

/// Which replica may answer a read (SPEC section 7). Global: one that replayed every write this
/// proxy acknowledged on the data the read can see; Session: this session's own writes.
enum class Consistency { Strong, Global, Session, Eventual };

/// The level's name as SET shardline.consistency takes it, and back.
inline const char* consistency_name(Consistency c) {
  switch (c) {
    case Consistency::Strong: return "strong";
    case Consistency::Global: return "global";
    case Consistency::Session: return "session";
    case Consistency::Eventual: return "eventual";
  }
  return "global";
}
inline std::optional<Consistency> parse_consistency(std::string_view name) {
  for (Consistency c : {Consistency::Strong, Consistency::Global, Consistency::Session, Consistency::Eventual})
    if (name == consistency_name(c)) return c;
  return std::nullopt;
}

struct Replicas {
  std::int64_t max_lag_bytes = 16 * 1024 * 1024;
  int max_lag_ms = 1000;
  int poll_interval_ms = 50;
  /// How long a replica may leave the monitor's probe unanswered before it is taken out of
  /// rotation (a failed query or a broken connection takes it out at once). 0 means the default,
  /// max(1000 ms, 3 poll intervals): one slow poll on a busy machine is not an outage.
  int health_timeout_ms = 0;
  /// health_timeout_ms with the default applied.
  int health_timeout() const {
    if (health_timeout_ms > 0) return health_timeout_ms;
    return static_cast<int>(std::clamp<std::int64_t>(3 * std::int64_t{poll_interval_ms}, 1000,
                                                     std::numeric_limits<int>::max()));
  }
  Consistency default_consistency = Consistency::Global;
  int read_after_wait_ms = 0;
  /// Send ParameterStatus shardline.lsn (the version cookie) after each committed write.
  bool report_lsn = true;
  /// Learn each write's commit LSN (a query pipelined behind the commit). Off: no probe, and a
  /// session that wrote reads that shard from its primary (session consistency stays exact).
  bool track_commit_lsn = true;
  /// User-defined functions that only read, so statements calling them may go to a replica
  /// (any other function outside the built-in read-only set keeps a statement on the primary).
  std::vector<std::string> read_only_functions;
};

enum class LogLevel { Debug, Info, Warn, Error };

struct Config {
  std::string path;  ///< file it was loaded from (for messages and RELOAD)
  Listen listen;
  Tls tls;
  Admin admin;
  std::vector<User> users;
  Backend backend;
  /// `control:` the role of the control plane (catalog, reshard jobs); unset: `backend`. Only
  /// user and password are read; database, TLS and timeouts are the backend's.
  std::optional<Backend> control;
  /// The credentials the control plane logs in with: `control` if set, else `backend`.
  Backend control_role() const {
    Backend b = backend;
    if (control) b.user = control->user, b.password = control->password;
    return b;
  }
  Pool pool;
  Sharding sharding;
  std::vector<DirectoryRange> directory;
  std::vector<Shard> shards;  ///< in file order; shards.front() is the default home shard
  Replicas replicas;
  LogLevel log_level = LogLevel::Info;
  int shutdown_timeout_ms = 30000;  ///< SIGTERM: how long in-flight transactions may finish

  const Shard* find_shard(const std::string& name) const {
    for (const auto& s : shards)
      if (s.name == name) return &s;
    return nullptr;
  }
  /// pool.server_connect_timeout_ms with its default (backend.connect_timeout_ms) applied.
  int server_connect_timeout_ms() const {
    return pool.server_connect_timeout_ms > 0 ? pool.server_connect_timeout_ms : backend.connect_timeout_ms;
  }
  const User* find_user(const std::string& name) const {
    for (const auto& u : users)
      if (u.name == name) return &u;
    return nullptr;
  }
};

}  // namespace shardline::config
