// LocalCluster: the whole life cycle of a work dir of local PostgreSQL servers (create, reuse,
// start, stop, wipe). Longer than our usual ~500 lines because those steps share the manifest,
// the server list and the file helpers below; running the server programs is server_process.*.

#include "proxy/control/local_cluster.hpp"

#include "proxy/control/server_process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>


namespace shardline::control {
namespace fs = std::filesystem;

namespace {

constexpr const char* kManifestName = "cluster.manifest";
constexpr const char* kManifestHeader = "shardline-local-cluster 1";
constexpr const char* kManifestComplete = "state=complete";
constexpr int kStartTimeoutSeconds = 60;
constexpr auto kReadyTimeout = std::chrono::seconds(60);
constexpr auto kStreamingTimeout = std::chrono::seconds(60);
constexpr auto kPollInterval = std::chrono::milliseconds(50);
/// sun_path is 108 bytes including the terminating NUL.
constexpr std::size_t kMaxSocketPath = 107;

/// Logs go to stderr, never stdout: `shardline demo` prints its psql line on stdout.
/// Leaked on purpose (like the other singletons here): a cluster held in a static object is
/// stopped during static destruction, when a destroyed logger or toolchain would be used.
spdlog::logger& log() {
  static spdlog::logger* const logger = [] {
    auto* l = new spdlog::logger("local_cluster",
                                 std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    l->set_level(spdlog::get_level());
    return l;
  }();
  return *logger;
}

/// Quotes a libpq conninfo value when it needs it (empty, spaces, quotes, backslashes).
std::string conninfo_value(const std::string& v) {
  if (!v.empty() && v.find_first_of(" \t\n'\\=") == std::string::npos) return v;
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

/// A YAML double-quoted scalar, so that passwords like `yes` or `123` stay strings.
std::string yaml_string(const std::string& v) {
  std::string out = "\"";
  for (unsigned char c : v) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20) out += fmt::format("\\x{:02x}", c);
        else out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

/// Entries of the work dir that LocalCluster owns; only these are ever deleted.
bool is_owned_entry(const std::string& name) {
  static const std::regex& owned =
      *new std::regex(R"(^(s[0-9]+(r[0-9]+)?(\.log)?|sock|cluster\.manifest)$)");
  return std::regex_match(name, owned);
}

bool is_server_dir_name(const std::string& name) {
  static const std::regex& server = *new std::regex(R"(^s[0-9]+(r[0-9]+)?$)");
  return std::regex_match(name, server);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, const std::string& content, bool append = false) {
  std::ofstream out(p, append ? std::ios::app | std::ios::binary : std::ios::trunc | std::ios::binary);
  out << content;
  out.close();
  if (!out)
    throw std::runtime_error(fmt::format("LocalCluster: cannot write {}", p.string()));
}

void check_text(const std::string& what, const std::string& value, bool allow_empty = false) {
  if (!allow_empty && value.empty())
    throw std::invalid_argument(fmt::format("LocalCluster: {} must not be empty", what));
  if (value.find_first_of(std::string("\n\r\0", 3)) != std::string::npos)
    throw std::invalid_argument(
        fmt::format("LocalCluster: {} must be one line (no newline or NUL): {}", what, value));
}

/// An owning libpq connection for the few setup statements LocalCluster itself runs.
struct PgConn {
  explicit PgConn(const std::string& conninfo) : conn(PQconnectdb(conninfo.c_str())) {
    if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
      std::string msg = conn ? PQerrorMessage(conn) : "out of memory";
      PQfinish(conn);
      throw std::runtime_error(msg);
    }
  }
  ~PgConn() { PQfinish(conn); }
  PgConn(const PgConn&) = delete;
  PgConn& operator=(const PgConn&) = delete;

  /// Runs one statement; `params` are text parameters $1..$n. Returns the first column of
  /// every row.
  std::vector<std::string> exec(const std::string& sql, const std::vector<std::string>& params = {}) {
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    std::unique_ptr<PGresult, decltype(&PQclear)> res(
        PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                     nullptr, nullptr, 0),
        &PQclear);
    const auto status = PQresultStatus(res.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
      throw std::runtime_error(fmt::format("{}: {}", sql.substr(0, sql.find(' ', 20)),
                                           PQresultErrorMessage(res.get())));
    std::vector<std::string> rows;
    for (int i = 0; i < PQntuples(res.get()); ++i)
      rows.emplace_back(PQgetisnull(res.get(), i, 0) ? "" : PQgetvalue(res.get(), i, 0));
    return rows;
  }
  std::string ident(const std::string& s) const {
    char* q = PQescapeIdentifier(conn, s.c_str(), s.size());
    if (q == nullptr) throw std::runtime_error(PQerrorMessage(conn));
    std::string out(q);
    PQfreemem(q);
    return out;
  }
  std::string literal(const std::string& s) const {
    char* q = PQescapeLiteral(conn, s.c_str(), s.size());
    if (q == nullptr) throw std::runtime_error(PQerrorMessage(conn));
    std::string out(q);
    PQfreemem(q);
    return out;
  }

  PGconn* conn;
};

/// Thrown by start_servers before starting anything; never a reason to rebuild a cluster.
struct PortInUse : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void check_port_free(const ServerInfo& s) {
  if (!loopback_port_free(s.port))
    throw PortInUse(fmt::format(
        "LocalCluster: port {} of server {} is in use by another process on 127.0.0.1; stop it "
        "or choose another base_port",
        s.port, s.name()));
}

}  // namespace

bool loopback_port_free(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}


std::string log_tail(const fs::path& path, std::size_t n) {
  std::ifstream in(path);
  if (!in) return "(log file missing)";
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(std::move(line));
    if (lines.size() > n) lines.erase(lines.begin());
  }
  std::string out;
  for (const auto& l : lines) out += "  | " + l + "\n";
  return out;
}


std::string ServerInfo::name() const {
  return replica < 0 ? shard : fmt::format("{}r{}", shard, replica);
}

LocalCluster::LocalCluster(LocalClusterOptions options) : options_(std::move(options)) {
  if (options_.dir.empty()) throw std::invalid_argument("LocalCluster: dir must be set");
  options_.dir = fs::absolute(options_.dir).lexically_normal();
  if (options_.dir.has_filename() == false) options_.dir = options_.dir.parent_path();
  check_text("dir", options_.dir.string());
  if (options_.shards < 1 || options_.shards > 1024)
    throw std::invalid_argument(
        fmt::format("LocalCluster: shards must be 1..1024 (one logical shard at least each), got {}",
                    options_.shards));
  if (options_.replicas < 0 || options_.replicas > 9)
    throw std::invalid_argument(fmt::format(
        "LocalCluster: replicas must be 0..9 (ports base+10*i+1+j leave room for 9), got {}",
        options_.replicas));
  if (options_.base_port == 0)
    throw std::invalid_argument("LocalCluster: base_port must not be 0");
  const long last_port = long{options_.base_port} + 10L * (options_.shards - 1) + options_.replicas;
  if (last_port > 65535)
    throw std::invalid_argument(fmt::format(
        "LocalCluster: base_port {} with {} shards needs ports up to {}, beyond 65535",
        options_.base_port, options_.shards, last_port));
  check_text("user", options_.user);
  check_text("password", options_.password);
  check_text("database", options_.database);
  for (const auto& l : options_.extra_conf) check_text("extra_conf line", l, true);
  for (const auto& l : options_.extra_hba) check_text("extra_hba line", l, true);
  const std::string socket_path = (socket_dir() / ".s.PGSQL.65535").string();
  if (socket_path.size() > kMaxSocketPath)
    throw std::invalid_argument(fmt::format(
        "LocalCluster: dir {} is too long: its unix socket path {} exceeds {} bytes",
        options_.dir.string(), socket_path, kMaxSocketPath));

  for (int i = 0; i < options_.shards; ++i) {
    for (int r = -1; r < options_.replicas; ++r) {
      ServerInfo s;
      s.shard = fmt::format("s{}", i);
      s.replica = r;
      s.port = static_cast<std::uint16_t>(options_.base_port + 10 * i + 1 + r);
      s.datadir = options_.dir / s.name();
      servers_.push_back(std::move(s));
    }
  }
  started_.assign(servers_.size(), false);
}

LocalCluster::~LocalCluster() {
  try {
    stop();
  } catch (const std::exception& e) {
    log().error("stopping the local cluster in {} failed: {}", options_.dir.string(), e.what());
  }
}

std::size_t LocalCluster::index_of(const ServerInfo& s) const {
  for (std::size_t i = 0; i < servers_.size(); ++i)
    if (servers_[i].shard == s.shard && servers_[i].replica == s.replica) return i;
  throw std::out_of_range(fmt::format("LocalCluster: no server {} replica {} in {}", s.shard,
                                      s.replica, options_.dir.string()));
}

const ServerInfo& LocalCluster::server(int shard, int replica) const {
  if (shard < 0 || shard >= options_.shards)
    throw std::out_of_range(
        fmt::format("LocalCluster: shard {} out of range (0..{})", shard, options_.shards - 1));
  if (replica < -1 || replica >= options_.replicas)
    throw std::out_of_range(fmt::format("LocalCluster: replica {} out of range (-1..{})", replica,
                                        options_.replicas - 1));
  return servers_[static_cast<std::size_t>(shard * (options_.replicas + 1) + replica + 1)];
}

std::uint16_t LocalCluster::primary_port(int shard) const { return server(shard, -1).port; }

std::uint16_t LocalCluster::replica_port(int shard, int replica) const {
  if (replica < 0)
    throw std::out_of_range(fmt::format("LocalCluster: replica index {} is negative", replica));
  return server(shard, replica).port;
}

fs::path LocalCluster::log_path(const ServerInfo& s) const {
  return options_.dir / (s.name() + ".log");
}

fs::path LocalCluster::socket_dir() const { return options_.dir / "sock"; }

std::string LocalCluster::conninfo(int shard, int replica) const {
  const ServerInfo& s = server(shard, replica);
  return fmt::format("host=127.0.0.1 port={} user={} password={} dbname={}", s.port,
                     conninfo_value(options_.user), conninfo_value(options_.password),
                     conninfo_value(options_.database));
}

std::string LocalCluster::superuser_conninfo(int shard, int replica) const {
  const ServerInfo& s = server(shard, replica);
  return fmt::format("host={} port={} user=postgres dbname={}",
                     conninfo_value(socket_dir().string()), s.port,
                     conninfo_value(options_.database));
}

std::string LocalCluster::config_yaml(std::uint16_t proxy_port, std::uint16_t http_port,
                                      const std::string& sharding_fields) const {
  const std::string user = yaml_string(options_.user);
  const std::string password = yaml_string(options_.password);
  const std::string database = yaml_string(options_.database);
  std::string y;
  y += fmt::format("# shardline config for the local cluster in {}\n", options_.dir.string());
  y += fmt::format("listen: {{host: 127.0.0.1, port: {}}}\n", proxy_port);
  y += fmt::format("admin: {{http_port: {}, users: [{}]}}\n", http_port, user);
  y += "users:\n";
  y += fmt::format("  - {{name: {}, password: {}, database: {}}}\n", user, password, database);
  y += fmt::format("backend: {{user: {}, password: {}, database: {}}}\n", user, password, database);
  y += fmt::format("control: {{user: {}, password: {}}}\n", kControlRole, password);
  y += "pool: {mode: transaction, size: 20}\n";
  y += fmt::format("sharding: {{logical_shards: 1024, key: tenant_id{}{}}}\n",
                   sharding_fields.empty() ? "" : ", ", sharding_fields);
  y += "directory:\n";
  constexpr int kLogicalShards = 1024;
  for (int i = 0; i < options_.shards; ++i) {
    const int first = i * kLogicalShards / options_.shards;
    const int last = (i + 1) * kLogicalShards / options_.shards - 1;
    y += fmt::format("  - {{logical: {}-{}, shard: s{}}}\n", first, last, i);
  }
  y += "shards:\n";
  for (int i = 0; i < options_.shards; ++i) {
    std::string replicas;
    for (int r = 0; r < options_.replicas; ++r) {
      if (r > 0) replicas += ", ";
      replicas += fmt::format("{{host: 127.0.0.1, port: {}}}", replica_port(i, r));
    }
    y += fmt::format("  s{}: {{primary: {{host: 127.0.0.1, port: {}}}, replicas: [{}]}}\n", i,
                     primary_port(i), replicas);
  }
  y += "replicas: {max_lag_bytes: 16777216, max_lag_ms: 1000, poll_interval_ms: 50, "
       "default_consistency: session}\n";
  return y;
}

/// Everything that decides the content of the work dir; a dir whose manifest differs is rebuilt.
std::string LocalCluster::manifest() const {
  std::string m = std::string(kManifestHeader) + "\n";
  m += fmt::format("pg_bin={}\n", toolchain().bin.string());
  m += fmt::format("shards={}\nreplicas={}\nbase_port={}\n", options_.shards, options_.replicas,
                   options_.base_port);
  // Only a hash of the password: the manifest may be world-readable (a demo dir, say).
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a
  for (unsigned char c : options_.password) h = (h ^ c) * 1099511628211ull;
  m += fmt::format("user={}\npassword_fnv1a={:016x}\ndatabase={}\n", options_.user, h,
                   options_.database);
  for (const auto& l : options_.extra_conf) m += "conf=" + l + "\n";
  for (const auto& l : options_.extra_hba) m += "hba=" + l + "\n";
  return m;
}

bool LocalCluster::reusable() const {
  if (read_file(options_.dir / kManifestName) != manifest() + kManifestComplete + "\n")
    return false;
  std::error_code ec;
  if (!fs::is_directory(socket_dir(), ec)) return false;
  for (const auto& s : servers_) {
    if (!fs::is_regular_file(s.datadir / "PG_VERSION", ec) ||
        !fs::is_regular_file(s.datadir / "global" / "pg_control", ec) ||
        !fs::is_regular_file(s.datadir / "postgresql.conf", ec))
      return false;
    if (fs::exists(s.datadir / "standby.signal", ec) == s.is_primary()) return false;
  }
  return true;
}

bool LocalCluster::is_running(const ServerInfo& s) const {
  const auto& tc = toolchain();
  // pg_ctl status: 0 running, 3 not running, 4 no data dir.
  return run(as_server_user({tc.tool("pg_ctl").string(), "status", "-D", s.datadir.string()}),
             "/dev/null", options_.dir) == 0;
}

void LocalCluster::shutdown_dir(const fs::path& dir) {
  const auto& tc = toolchain();
  std::error_code ec;
  std::vector<pid_t> stopping;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!is_server_dir_name(entry.path().filename().string())) continue;
    if (!fs::exists(entry.path() / "postmaster.pid", ec)) continue;
    // Immediate: the data is about to be thrown away or its owner is gone. A stale pid file
    // makes pg_ctl fail harmlessly.
    stopping.push_back(spawn(as_server_user({tc.tool("pg_ctl").string(), "stop", "-m", "immediate",
                                             "-w", "-t", "30", "-D", entry.path().string()}),
                             "/dev/null", dir));
  }
  for (pid_t pid : stopping) wait_child(pid);
}

void LocalCluster::wipe() {
  std::error_code ec;
  if (!fs::exists(options_.dir, ec)) return;
  bool ours = fs::exists(options_.dir / kManifestName, ec);
  std::vector<fs::path> owned;
  for (const auto& entry : fs::directory_iterator(options_.dir, ec)) {
    if (is_owned_entry(entry.path().filename().string())) owned.push_back(entry.path());
  }
  if (owned.empty()) return;
  if (!ours)
    throw std::runtime_error(fmt::format(
        "LocalCluster: {} holds {} but no {}: it was not made by LocalCluster, so it is left "
        "alone; remove it or choose another dir",
        options_.dir.string(), owned.front().filename().string(), kManifestName));
  log().info("local cluster in {} does not match the requested layout or is broken; recreating",
             options_.dir.string());
  shutdown_dir(options_.dir);
  for (const auto& p : owned) {
    fs::remove_all(p, ec);
    if (ec)
      throw std::runtime_error(
          fmt::format("LocalCluster: cannot remove {}: {}", p.string(), ec.message()));
  }
}

void LocalCluster::start() {
  toolchain();  // fail early with a clear message when PostgreSQL is missing
  if (reusable()) {
    std::vector<const ServerInfo*> stopped;
    for (const auto& s : servers_)
      if (!is_running(s)) stopped.push_back(&s);
    if (stopped.empty()) {
      log().info("local cluster in {} is already running", options_.dir.string());
    } else {
      log().info("reusing local cluster in {} ({} of {} servers to start)", options_.dir.string(),
                 stopped.size(), servers_.size());
      try {
        start_servers(stopped);
      } catch (const PortInUse&) {
        throw;
      } catch (const std::exception& e) {
        log().warn("{}; recreating the cluster", e.what());
        stop();
        wipe();
        create();
        return;
      }
    }
    for (const auto& s : servers_)
      if (!s.is_primary()) wait_streaming(s);
    return;
  }
  wipe();
  create();
}

void LocalCluster::start_servers(const std::vector<const ServerInfo*>& which) {
  const auto& tc = toolchain();
  // A taken port is not a broken cluster: say so plainly, before anything is rebuilt.
  for (const ServerInfo* s : which) check_port_free(*s);
  std::vector<std::pair<const ServerInfo*, pid_t>> children;
  for (const ServerInfo* s : which) {
    // pg_ctl's own messages go to the same log as the server's.
    children.emplace_back(
        s, spawn(as_server_user({tc.tool("pg_ctl").string(), "start", "-w", "-t",
                                 std::to_string(kStartTimeoutSeconds), "-D", s->datadir.string(),
                                 "-l", log_path(*s).string()}),
                 log_path(*s), options_.dir));
  }
  std::string failures;
  for (const auto& [s, pid] : children) {
    const int rc = wait_child(pid);
    if (rc != 0) {
      failures += fmt::format("\nLocalCluster: server {} (port {}) did not start (pg_ctl exit {}); "
                              "see {}:\n{}",
                              s->name(), s->port, rc, log_path(*s).string(),
                              log_tail(log_path(*s), 15));
      continue;
    }
    started_[static_cast<std::size_t>(s - servers_.data())] = true;
  }
  if (!failures.empty()) throw std::runtime_error(failures.substr(1));

  // pg_ctl -w already waited; a ping over the socket confirms that connections are accepted.
  for (const ServerInfo* s : which) {
    const std::string ping = fmt::format("host={} port={} user=postgres dbname=postgres connect_timeout=5",
                    conninfo_value(socket_dir().string()), s->port);
    const auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
    while (PQping(ping.c_str()) != PQPING_OK) {
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error(fmt::format(
            "LocalCluster: server {} (port {}) does not accept connections after {} s; see {}:\n{}",
            s->name(), s->port, kReadyTimeout.count(), log_path(*s).string(),
            log_tail(log_path(*s), 15)));
      std::this_thread::sleep_for(kPollInterval);
    }
  }
}

std::string LocalCluster::primary_conf(const ServerInfo& server) const {
  const ServerInfo* s = &server;
  std::string conf = "\n# ---- written by shardline LocalCluster ----\n";
  conf += "listen_addresses = '127.0.0.1'\n";
  conf += fmt::format("port = {}\n", s->port);
  std::string sock = socket_dir().string();
  std::string quoted;
  for (char c : sock) quoted += (c == '\'') ? std::string("''") : std::string(1, c);
  conf += fmt::format("unix_socket_directories = '{}'\n", quoted);
  conf += fmt::format("cluster_name = '{}'\n", s->name());
  conf += "wal_level = logical\n";
  conf += "max_wal_senders = 10\n";
  conf += "max_replication_slots = 10\n";
  conf += "max_connections = 200\n";
  // Cross-shard transactions with two-phase commit need PREPARE TRANSACTION.
  conf += "max_prepared_transactions = 100\n";
  conf += "hot_standby = on\n";
  // Replicas use no replication slot (tests count slots left behind by resharding), so keep
  // enough WAL for a replica that a failure test stopped for a while.
  conf += "wal_keep_size = '256MB'\n";
  // These are throw-away test/demo clusters: fsync=off trades crash safety for speed.
  conf += "fsync = off\n";
  conf += "shared_buffers = 32MB\n";
  conf += "log_line_prefix = '%m [%p] %q%u@%d '\n";
  if (!options_.extra_conf.empty()) conf += "# extra_conf\n";
  for (const auto& l : options_.extra_conf) conf += l + "\n";
  return conf;
}

std::string LocalCluster::hba_conf() const {
  std::string hba = "# written by shardline LocalCluster: extra lines first, then defaults\n";
  for (const auto& l : options_.extra_hba) hba += l + "\n";
  hba += "local   all          all                    trust\n";
  hba += "local   replication  all                    trust\n";
  hba += "host    all          all   127.0.0.1/32     scram-sha-256\n";
  hba += "host    replication  all   127.0.0.1/32     scram-sha-256\n";
  return hba;
}

void LocalCluster::run_each(const std::vector<const ServerInfo*>& which, const char* what,
                            const std::function<std::vector<std::string>(const ServerInfo&)>& argv,
                            const std::vector<std::pair<std::string, std::string>>& env) const {
  std::vector<pid_t> pids;
  for (const ServerInfo* s : which) pids.push_back(spawn(argv(*s), log_path(*s), options_.dir, env));
  std::string failures;
  for (std::size_t i = 0; i < pids.size(); ++i) {
    const int rc = wait_child(pids[i]);
    if (rc != 0)
      failures += fmt::format("\nLocalCluster: {} for server {} failed (exit {}); see {}:\n{}", what, which[i]->name(),
                              rc, log_path(*which[i]).string(), log_tail(log_path(*which[i]), 15));
  }
  if (!failures.empty()) throw std::runtime_error(failures.substr(1));
}

void LocalCluster::create() {
  const auto& tc = toolchain();
  const auto t0 = std::chrono::steady_clock::now();
  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  if (ec)
    throw std::runtime_error(
        fmt::format("LocalCluster: cannot create {}: {}", options_.dir.string(), ec.message()));
  write_file(options_.dir / kManifestName, manifest());
  fs::create_directories(socket_dir(), ec);
  if (ec)
    throw std::runtime_error(
        fmt::format("LocalCluster: cannot create {}: {}", socket_dir().string(), ec.message()));
  // The servers' OS user gets its own entries only, never the work dir itself (which may be a
  // directory the caller owns): empty data dirs that initdb/pg_basebackup fill, the socket dir,
  // the logs.
  hand_to_server_user(socket_dir());
  for (const auto& s : servers_) {
    fs::create_directory(s.datadir, ec);
    if (ec)
      throw std::runtime_error(
          fmt::format("LocalCluster: cannot create {}: {}", s.datadir.string(), ec.message()));
    fs::permissions(s.datadir, fs::perms::owner_all, ec);
    hand_to_server_user(s.datadir);
    write_file(log_path(s), "");
    hand_to_server_user(log_path(s));
  }
  if (tc.as_root &&
      run(as_server_user({"/usr/bin/test", "-w", servers_.front().datadir.string()}), "/dev/null",
          "/") != 0)
    throw std::runtime_error(fmt::format(
        "LocalCluster: the postgres OS user cannot reach {} (is a parent directory closed to "
        "others?); make it traversable or choose a dir under /tmp",
        options_.dir.string()));

  std::vector<const ServerInfo*> primaries, replicas;
  for (const auto& s : servers_) (s.is_primary() ? primaries : replicas).push_back(&s);
  for (const auto& s : servers_) check_port_free(s);

  // 1. initdb every primary in parallel.
  run_each(primaries, "initdb", [&](const ServerInfo& s) {
    return as_server_user({tc.tool("initdb").string(), "-D", s.datadir.string(), "-U", "postgres",
                           "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8",
                           "--locale=C", "--no-sync"});
  });

  // 2. Configuration. Replicas copy it with pg_basebackup and then only change their port.
  for (const ServerInfo* s : primaries) {
    write_file(s->datadir / "postgresql.conf", primary_conf(*s), /*append=*/true);
    write_file(s->datadir / "pg_hba.conf", hba_conf());
  }

  // 3. Start the primaries; create the application role and database on each.
  start_servers(primaries);
  for (const ServerInfo* s : primaries) create_role_and_database(*s);

  // 4. Replicas: base backups (in parallel) as the application user over TCP, which also proves
  // that SCRAM and the replication pg_hba line work; -R makes them standbys of their primary.
  if (!replicas.empty()) {
    run_each(replicas, "pg_basebackup", [&](const ServerInfo& r) {
      const ServerInfo& p = server(std::stoi(r.shard.substr(1)), -1);
      return as_server_user({tc.tool("pg_basebackup").string(), "-D", r.datadir.string(), "-R", "-X", "stream",
                             "-c", "fast", "--no-sync", "-w", "-h", "127.0.0.1", "-p", std::to_string(p.port),
                             "-U", options_.user});
    }, {{"PGPASSWORD", options_.password}});
    for (const ServerInfo* r : replicas) {
      write_file(r->datadir / "postgresql.conf",
                 fmt::format("# replica {} of {}\nport = {}\ncluster_name = '{}'\n", r->replica,
                             r->shard, r->port, r->name()),
                 /*append=*/true);
    }
    start_servers(replicas);
    for (const ServerInfo* r : replicas) wait_streaming(*r);
  }

  write_file(options_.dir / kManifestName, manifest() + kManifestComplete + "\n");
  log().info("local cluster in {} created: {} shard(s) x {} replica(s) in {} ms",
             options_.dir.string(), options_.shards, options_.replicas,
             std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - t0)
                 .count());
}

void LocalCluster::create_role_and_database(const ServerInfo& primary) {
  const std::string ci =
      fmt::format("host={} port={} user=postgres dbname=postgres connect_timeout=10",
                  conninfo_value(socket_dir().string()), primary.port);
  try {
    PgConn c(ci);
    const std::string role = c.ident(options_.user);
    const std::string password = c.literal(options_.password);
    c.exec("SET password_encryption = 'scram-sha-256'");
    const bool role_exists =
        !c.exec("SELECT 1 FROM pg_roles WHERE rolname = $1", {options_.user}).empty();
    c.exec(fmt::format("{} ROLE {} WITH LOGIN REPLICATION PASSWORD {}",
                       role_exists ? "ALTER" : "CREATE", role, password));
    // Lets the proxy's lag monitor read pg_stat_replication in full without being superuser.
    if (options_.user != "postgres") c.exec(fmt::format("GRANT pg_monitor TO {}", role));
    // The control plane's role (`control:` in the config): reshard jobs create subscriptions,
    // which PostgreSQL 15 allows only to superusers.
    const bool control_exists =
        !c.exec("SELECT 1 FROM pg_roles WHERE rolname = $1", {std::string(kControlRole)}).empty();
    c.exec(fmt::format("{} ROLE {} WITH LOGIN SUPERUSER PASSWORD {}", control_exists ? "ALTER" : "CREATE",
                       kControlRole, password));
    const std::string db = c.ident(options_.database);
    if (c.exec("SELECT 1 FROM pg_database WHERE datname = $1", {options_.database}).empty())
      c.exec(fmt::format("CREATE DATABASE {} OWNER {}", db, role));
    else
      c.exec(fmt::format("ALTER DATABASE {} OWNER TO {}", db, role));
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format(
        "LocalCluster: creating role {} and database {} on server {} (port {}) failed: {}; see {}",
        options_.user, options_.database, primary.name(), primary.port, e.what(),
        log_path(primary).string()));
  }
}

void LocalCluster::wait_streaming(const ServerInfo& replica) {
  const std::string ci =
      fmt::format("host={} port={} user=postgres dbname=postgres connect_timeout=5",
                  conninfo_value(socket_dir().string()), replica.port);
  const auto deadline = std::chrono::steady_clock::now() + kStreamingTimeout;
  std::string last;
  while (true) {
    try {
      PgConn c(ci);
      const auto rows = c.exec("SELECT status FROM pg_stat_wal_receiver");
      if (!rows.empty() && rows.front() == "streaming") return;
      last = rows.empty() ? "no WAL receiver" : "WAL receiver " + rows.front();
    } catch (const std::exception& e) {
      last = e.what();
    }
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error(fmt::format(
          "LocalCluster: replica {} (port {}) is not streaming from its primary after {} s ({}); "
          "see {}:\n{}",
          replica.name(), replica.port, kStreamingTimeout.count(), last,
          log_path(replica).string(), log_tail(log_path(replica), 15)));
    std::this_thread::sleep_for(kPollInterval);
  }
}

void LocalCluster::stop() {
  const auto& tc = toolchain();
  std::vector<std::pair<std::size_t, pid_t>> children;
  // Replicas first, so that they do not log a burst of reconnect attempts to a gone primary.
  for (int pass = 0; pass < 2; ++pass) {
    children.clear();
    for (std::size_t i = 0; i < servers_.size(); ++i) {
      if (!started_[i] || servers_[i].is_primary() != (pass == 1)) continue;
      children.emplace_back(
          i, spawn(as_server_user({tc.tool("pg_ctl").string(), "stop", "-m", "fast", "-w", "-t",
                                   std::to_string(kStartTimeoutSeconds), "-D",
                                   servers_[i].datadir.string()}),
                   log_path(servers_[i]), options_.dir));
    }
    for (const auto& [i, pid] : children) {
      const int rc = wait_child(pid);
      started_[i] = false;
      if (rc != 0)
        log().error("stopping server {} failed (pg_ctl exit {}); see {}", servers_[i].name(), rc,
                    log_path(servers_[i]).string());
    }
  }
}

void LocalCluster::stop_server(const ServerInfo& s) {
  const ServerInfo& own = servers_[index_of(s)];
  const auto& tc = toolchain();
  const int rc = run(as_server_user({tc.tool("pg_ctl").string(), "stop", "-m", "fast", "-w", "-t",
                                     std::to_string(kStartTimeoutSeconds), "-D",
                                     own.datadir.string()}),
                     log_path(own), options_.dir);
  if (rc != 0)
    throw std::runtime_error(
        fmt::format("LocalCluster: stopping server {} (port {}) failed (pg_ctl exit {}); see {}:\n{}",
                    own.name(), own.port, rc, log_path(own).string(), log_tail(log_path(own), 10)));
  started_[index_of(own)] = false;
}

void LocalCluster::start_server(const ServerInfo& s) {
  start_servers({&servers_[index_of(s)]});
}

}  // namespace shardline::control
