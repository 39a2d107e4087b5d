#pragma once
// A set of real PostgreSQL servers on loopback: N primaries, each with R streaming replicas.
// `shardline demo` runs on it and every integration test starts one through its fixture, so
// the demo and the tests exercise exactly the same topology (SPEC sections 2 and 3).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace shardline::control {

struct LocalClusterOptions {
  /// Work dir holding every data dir, the unix sockets and the logs; created if missing.
  std::filesystem::path dir;
  int shards = 2;
  int replicas = 1;
  /// Shard i's primary listens on base_port + 10 * i, its replica j on base_port + 10 * i + 1 + j,
  /// so a port number alone tells a reader which server it is (at most 9 replicas per shard).
  std::uint16_t base_port = 15400;
  std::string user = "app";
  std::string password = "secret";
  std::string database = "app";
  /// Extra postgresql.conf lines for every server (later lines win over the defaults).
  std::vector<std::string> extra_conf;
  /// Extra pg_hba.conf lines, placed before the defaults so that they take precedence.
  std::vector<std::string> extra_hba;
};

/// One server of the cluster. `replica` is -1 for the primary, else the replica's index.
struct ServerInfo {
  std::string shard;
  int replica = -1;
  std::uint16_t port = 0;
  std::filesystem::path datadir;

  bool is_primary() const { return replica < 0; }
  /// "s0" for a primary, "s0r1" for its second replica; also names the log `<dir>/<name>.log`.
  std::string name() const;
};

/// The last `n` lines of a log file, indented, to put a failure's cause into its message.
std::string log_tail(const std::filesystem::path& path, std::size_t n);

/// Whether a server could listen on 127.0.0.1:`port` now. SO_REUSEADDR is set, as PostgreSQL
/// and the proxy set it, so a port in TIME_WAIT counts as free.
bool loopback_port_free(std::uint16_t port);

/// Starts, reuses and stops the servers of one work dir. Not thread-safe: one owner drives it.
///
/// When run as root every server command runs as the `postgres` OS user (PostgreSQL refuses
/// root), and the work dir is handed to that user. Children are spawned with an argument
/// vector, never through a shell.
class LocalCluster {
 public:
  /// The superuser role every primary gets (with the application user's password) for the
  /// proxy's control plane: `control:` in config_yaml().
  static constexpr const char* kControlRole = "shardline_control";
  /// Validates the options (throws std::invalid_argument naming the bad one); starts nothing.
  explicit LocalCluster(LocalClusterOptions options);
  ~LocalCluster();
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  /// Idempotent. A dir created earlier with the same options is reused (stopped servers are
  /// started, running ones left as they are); a broken or mismatched one is stopped, wiped and
  /// created anew. Returns once every server accepts connections and every replica streams.
  /// Throws std::runtime_error naming the server and its log file on failure.
  void start();
  /// Fast shutdown (pg_ctl -m fast) of every server this object started; also run by the dtor.
  void stop();
  /// For failure tests: stop or start one server. start_server waits until it accepts.
  void stop_server(const ServerInfo& server);
  void start_server(const ServerInfo& server);

  const std::vector<ServerInfo>& servers() const { return servers_; }
  const LocalClusterOptions& options() const { return options_; }
  std::uint16_t primary_port(int shard) const;
  std::uint16_t replica_port(int shard, int replica) const;
  /// libpq connection string: the app user over TCP with its password (SCRAM).
  std::string conninfo(int shard, int replica = -1) const;
  /// libpq connection string: the `postgres` superuser over the unix socket in `<dir>/sock`
  /// (trust), on the app database.
  std::string superuser_conninfo(int shard, int replica = -1) const;
  /// Where every server's Unix socket (and its lock file) lives.
  std::filesystem::path socket_dir() const;
  /// A complete shardline config (SPEC section 3) for this cluster, proxy on 127.0.0.1:proxy_port,
  /// admin HTTP on `http_port` (0: off). `sharding_fields` are more `sharding:` flow-map entries
  /// (e.g. "auto_tables: true, reference_tables: [plans]").
  std::string config_yaml(std::uint16_t proxy_port, std::uint16_t http_port = 0,
                          const std::string& sharding_fields = "") const;

  /// Stops (immediate mode) every server whose data dir lies directly in `dir`, whatever
  /// object started it. Used to clean up after a process that died without stopping its own.
  static void shutdown_dir(const std::filesystem::path& dir);

 private:
  const ServerInfo& server(int shard, int replica) const;
  std::size_t index_of(const ServerInfo& s) const;
  std::filesystem::path log_path(const ServerInfo& s) const;
  std::string manifest() const;
  bool reusable() const;
  void wipe();
  void create();
  /// The lines appended to a primary's postgresql.conf (replicas copy them), and its pg_hba.conf.
  std::string primary_conf(const ServerInfo& s) const;
  std::string hba_conf() const;
  /// Runs one command per server at once (output to its log); throws naming every failure.
  void run_each(const std::vector<const ServerInfo*>& which, const char* what,
                const std::function<std::vector<std::string>(const ServerInfo&)>& argv,
                const std::vector<std::pair<std::string, std::string>>& env = {}) const;
  void start_servers(const std::vector<const ServerInfo*>& which);
  void create_role_and_database(const ServerInfo& primary);
  void wait_streaming(const ServerInfo& replica);
  bool is_running(const ServerInfo& s) const;

  LocalClusterOptions options_;
  std::vector<ServerInfo> servers_;
  std::vector<bool> started_;  ///< parallel to servers_: started by this object, so ours to stop
};

}  // namespace shardline::control
