#include "tests/integration/support/cluster_fixture.hpp"

#include "proxy/control/local_cluster.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

namespace shardline::testing {
namespace fs = std::filesystem;

namespace {

constexpr const char* kClusterDirPrefix = "shardline-it-";
constexpr const char* kOwnerFile = "owner.pid";
constexpr const char* kKeptFile = "KEPT";
/// Below Linux's default ephemeral range (32768-60999), so outgoing connections made while a
/// test runs cannot grab a port between our check and the server's bind.
constexpr int kPortRangeFirst = 20000;
constexpr int kPortRangeEnd = 32000;
constexpr auto kProxyStartTimeout = std::chrono::seconds(30);
constexpr auto kProxyStopGrace = std::chrono::seconds(10);


/// A zombie (killed, not yet reaped by its parent or init) counts as dead.
bool process_alive(pid_t pid) {
  if (pid <= 0 || (::kill(pid, 0) != 0 && errno != EPERM)) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const auto paren = line.rfind(')');  // the command name may contain spaces and parentheses
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
}

/// Stops and removes clusters whose test process died without cleaning up (killed by a
/// timeout, say), so their servers do not hold ports and memory forever.
void reap_orphan_clusters() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/tmp", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kClusterDirPrefix, 0) != 0 || !entry.is_directory(ec)) continue;
    if (fs::exists(entry.path() / kKeptFile, ec)) continue;
    std::ifstream owner(entry.path() / kOwnerFile);
    pid_t pid = 0;
    if (!(owner >> pid) || process_alive(pid)) continue;
    std::cerr << "[cluster_fixture] removing orphaned cluster " << entry.path().string()
              << " (its test process " << pid << " is gone)\n";
    LocalCluster::shutdown_dir(entry.path());
    fs::remove_all(entry.path(), ec);
  }
}

/// Holds the executable's cluster; its destructor runs at exit.
struct ClusterHolder {
  std::mutex mu;
  std::unique_ptr<LocalCluster> cluster;
  ClusterSpec spec;
  fs::path dir;

  ~ClusterHolder() {
    if (!cluster) return;
    cluster->stop();
    cluster.reset();
    std::error_code ec;
    if (std::getenv("SHARDLINE_KEEP_CLUSTER") != nullptr) {
      std::cerr << "[cluster_fixture] SHARDLINE_KEEP_CLUSTER: cluster kept in " << dir << "\n";
      std::ofstream(dir / kKeptFile) << "kept\n";
      return;
    }
    if (::testing::UnitTest::GetInstance()->Failed()) {
      // Keep what explains the failure (the logs), not hundreds of MB of data dirs.
      for (const auto& entry : fs::directory_iterator(dir, ec))
        if (entry.path().extension() != ".log") fs::remove_all(entry.path(), ec);
      std::ofstream(dir / kKeptFile) << "kept after a failed test\n";
      std::cerr << "[cluster_fixture] a test failed: server logs kept in " << dir << "\n";
      return;
    }
    fs::remove_all(dir, ec);
  }
};

std::mutex& registry_mutex() {
  static std::mutex mu;
  return mu;
}
fs::path& registered_binary() {
  static fs::path path;
  return path;
}

}  // namespace

LocalCluster& test_cluster(const ClusterSpec& spec) {
  static ClusterHolder holder;
  std::lock_guard lock(holder.mu);
  if (holder.cluster) {
    if (!(holder.spec == spec))
      throw std::logic_error(fmt::format(
          "test_cluster(): this executable's cluster was started with {} shard(s) x {} replica(s) "
          "and other settings; a test asked for {} x {}: one executable, one spec",
          holder.spec.shards, holder.spec.replicas, spec.shards, spec.replicas));
    return *holder.cluster;
  }
  reap_orphan_clusters();

  // A port taken between our check and the server's bind makes start() fail: try fresh ports.
  constexpr int kAttempts = 3;
  std::string errors;
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    std::string tmpl = (fs::path("/tmp") / (std::string(kClusterDirPrefix) + "XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr)
      throw std::runtime_error(fmt::format("test_cluster(): mkdtemp failed: {}", std::strerror(errno)));
    const fs::path dir = tmpl;
    // mkdtemp makes it 0700; the servers' OS user (postgres, when run as root) must traverse it.
    fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
    std::ofstream(dir / kOwnerFile) << ::getpid() << "\n";

    control::LocalClusterOptions options;
    options.dir = dir;
    options.shards = spec.shards;
    options.replicas = spec.replicas;
    options.base_port = free_port_block(10 * spec.shards);
    options.extra_conf = spec.extra_conf;
    options.extra_hba = spec.extra_hba;
    // The fixture parameter that runs a whole test executable against shards configured as
    // many production teams configure them (ctest registers some executables once per value).
    if (const char* sc = std::getenv("SHARDLINE_TEST_SYNCHRONOUS_COMMIT"); sc && *sc) {
      options.extra_conf.push_back(fmt::format("synchronous_commit = {}", sc));
      if (attempt == 1) std::cerr << "[cluster_fixture] shards run with synchronous_commit = " << sc << "\n";
    }
    auto cluster = std::make_unique<LocalCluster>(options);
    try {
      cluster->start();
    } catch (const std::exception& e) {
      cluster.reset();  // stops what it started
      errors += fmt::format("attempt {}: {}\n", attempt, e.what());
      std::cerr << "[cluster_fixture] starting the test cluster failed (attempt " << attempt
                << "): " << e.what() << "\n";
      std::error_code ec;
      LocalCluster::shutdown_dir(dir);
      if (attempt < kAttempts) fs::remove_all(dir, ec);
      continue;
    }
    holder.cluster = std::move(cluster);
    holder.spec = spec;
    holder.dir = dir;
    return *holder.cluster;
  }
  throw std::runtime_error("test_cluster(): could not start the PostgreSQL cluster:\n" + errors);
}

std::uint16_t free_port_block(int n) {
  if (n < 1 || n > 1000)
    throw std::invalid_argument(fmt::format("free_port_block: n must be 1..1000, got {}", n));
  static std::mutex mu;
  static std::set<int> handed_out;
  static std::mt19937 rng(std::random_device{}());
  std::lock_guard lock(mu);
  std::uniform_int_distribution<int> pick(kPortRangeFirst, kPortRangeEnd - n);
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const int base = pick(rng);
    bool ok = true;
    for (int p = base; p < base + n && ok; ++p)
      ok = handed_out.count(p) == 0 && control::loopback_port_free(static_cast<std::uint16_t>(p));
    if (!ok) continue;
    for (int p = base; p < base + n; ++p) handed_out.insert(p);
    return static_cast<std::uint16_t>(base);
  }
  throw std::runtime_error(fmt::format(
      "free_port_block: no {} consecutive free ports in {}..{} on 127.0.0.1", n, kPortRangeFirst,
      kPortRangeEnd - 1));
}

std::uint16_t free_port() { return free_port_block(1); }

void register_shardline_binary(fs::path path) {
  std::lock_guard lock(registry_mutex());
  registered_binary() = std::move(path);
}

fs::path shardline_binary() {
  if (const char* env = std::getenv("SHARDLINE_BINARY"); env != nullptr && *env != '\0')
    return env;
  std::lock_guard lock(registry_mutex());
  if (registered_binary().empty())
    throw std::logic_error(
        "shardline_binary(): no path: set SHARDLINE_BINARY, or build the test through CMake, "
        "which defines it for every it_* target");
  return registered_binary();
}

ProxyProcess::ProxyProcess(std::string config_yaml)
    : ProxyProcess(std::move(config_yaml), shardline_binary()) {}

ProxyProcess::ProxyProcess(std::string config_yaml, fs::path binary) {
  if (::access(binary.c_str(), X_OK) != 0)
    throw std::runtime_error(fmt::format(
        "ProxyProcess: proxy binary {} is missing or not executable (build the `shardline` "
        "target first)",
        binary.string()));

  // The port to wait for. A config that does not parse still runs: the proxy must reject it,
  // and the test then sees its message.
  try {
    const YAML::Node root = YAML::Load(config_yaml);
    if (root["listen"] && root["listen"]["port"]) port_ = root["listen"]["port"].as<std::uint16_t>();
    if (root["listen"] && root["listen"]["host"]) host_ = root["listen"]["host"].as<std::string>();
  } catch (const YAML::Exception&) {
  }

  std::string tmpl = "/tmp/shardline-proxy-XXXXXX.yaml";
  const int fd = ::mkstemps(tmpl.data(), 5);
  if (fd < 0)
    throw std::runtime_error(fmt::format("ProxyProcess: mkstemps failed: {}", std::strerror(errno)));
  ::close(fd);
  config_path_ = tmpl;
  log_path_ = fs::path(tmpl).replace_extension(".log");
  {
    std::ofstream out(config_path_, std::ios::trunc);
    out << config_yaml;
    if (!out) throw std::runtime_error("ProxyProcess: cannot write " + config_path_.string());
  }

  const std::string bin = binary.string();
  const std::string cfg = config_path_.string();
  const std::string logfile = log_path_.string();
  const char* argv[] = {bin.c_str(), "serve", "--config", cfg.c_str(), nullptr};
  const pid_t parent = ::getpid();
  const int log_fd = ::open(logfile.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log_fd < 0 || null_fd < 0)
    throw std::runtime_error(fmt::format("ProxyProcess: cannot open {}: {}", logfile,
                                         std::strerror(errno)));
  pid_ = ::fork();
  if (pid_ == 0) {
    // Child: only async-signal-safe calls from here on.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::close_range(3, ~0U, 0);
    ::execv(argv[0], const_cast<char* const*>(argv));
    const char msg[] = "ProxyProcess: exec failed\n";
    [[maybe_unused]] auto w = ::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  const int fork_errno = errno;
  ::close(log_fd);
  ::close(null_fd);
  if (pid_ < 0)
    throw std::runtime_error(fmt::format("ProxyProcess: fork failed: {}", std::strerror(fork_errno)));

  const auto deadline = std::chrono::steady_clock::now() + kProxyStartTimeout;
  while (!accepts()) {
    if (wait_exit(std::chrono::milliseconds(0)) >= 0) {
      const std::string last = control::log_tail(log_path_, 20);
      std::cerr << "[ProxyProcess] the proxy exited with code " << *exit_code_
                << " before accepting on port " << port_ << "; last log lines:\n" << last;
      std::error_code ec;  // no destructor runs for a failed constructor: clean up here
      fs::remove(config_path_, ec);
      fs::remove(log_path_, ec);
      throw std::runtime_error(fmt::format(
          "ProxyProcess: {} exited with code {} before accepting on {}:{}; its last log lines:\n{}",
          bin, *exit_code_, host_, port_, last));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      wait_exit(std::chrono::seconds(5));
      const std::string last = control::log_tail(log_path_, 20);
      std::error_code ec;
      fs::remove(config_path_, ec);
      fs::remove(log_path_, ec);
      throw std::runtime_error(fmt::format(
          "ProxyProcess: {} did not accept on {}:{} within {} s; its last log lines:\n{}", bin,
          host_, port_, kProxyStartTimeout.count(), last));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

ProxyProcess::~ProxyProcess() {
  if (pid_ > 0 && !exit_code_) {
    ::kill(pid_, SIGTERM);
    if (wait_exit(kProxyStopGrace) < 0) {
      std::cerr << "[ProxyProcess] proxy " << pid_ << " ignored SIGTERM for "
                << kProxyStopGrace.count() << " s; sending SIGKILL\n";
      ::kill(pid_, SIGKILL);
      wait_exit(std::chrono::seconds(10));
    }
  }
  std::error_code ec;
  if (::testing::Test::HasFailure()) {
    std::cerr << "[ProxyProcess] test failed; proxy config " << config_path_ << ", last lines of "
              << log_path_ << ":\n" << control::log_tail(log_path_, 30);
    return;
  }
  fs::remove(config_path_, ec);
  fs::remove(log_path_, ec);
}

bool ProxyProcess::accepts() const {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port_);
  if (::inet_pton(AF_INET, host_ == "localhost" ? "127.0.0.1" : host_.c_str(), &addr.sin_addr) != 1)
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::string ProxyProcess::conninfo(std::string user, std::string password, std::string db) const {
  auto quote = [](const std::string& v) {
    std::string out = "'";
    for (char c : v) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    return out + "'";
  };
  return fmt::format("host={} port={} user={} password={} dbname={}", quote(host_), port_,
                     quote(user), quote(password), quote(db));
}

void ProxyProcess::signal(int sig) {
  if (exit_code_)
    throw std::logic_error(
        fmt::format("ProxyProcess::signal({}): the proxy already exited with {}", sig, *exit_code_));
  if (::kill(pid_, sig) != 0)
    throw std::runtime_error(
        fmt::format("ProxyProcess::signal({}): kill failed: {}", sig, std::strerror(errno)));
}

int ProxyProcess::wait_exit(std::chrono::milliseconds timeout) {
  if (exit_code_) return *exit_code_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status)
                   : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                         : -1;
      return *exit_code_;
    }
    if (r < 0 && errno != EINTR)
      throw std::runtime_error(
          fmt::format("ProxyProcess: waitpid({}) failed: {}", pid_, std::strerror(errno)));
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string ProxyProcess::log() const {
  std::ifstream in(log_path_, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace shardline::testing
