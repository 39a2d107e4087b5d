#pragma once
// What every integration test executable shares: one real PostgreSQL cluster (started on first
// use, stopped at exit) and the shardline proxy run as a child process, as a user would run it.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "proxy/control/local_cluster.hpp"

namespace shardline::testing {

using control::LocalCluster;

struct ClusterSpec {
  int shards = 2;
  int replicas = 0;
  // The `{}` lets tests write `test_cluster({.replicas = 1})` without -Wmissing-field-initializers.
  std::vector<std::string> extra_conf{};
  std::vector<std::string> extra_hba{};

  bool operator==(const ClusterSpec&) const = default;
};

/// One cluster per test executable, started on first use, stopped at exit. Its dir is a fresh
/// /tmp/shardline-it-XXXXXX on a free block of ports; clusters left behind by test processes
/// that died are stopped and removed first. A later call with a different spec is a test bug
/// (std::logic_error). After a failed test only the server logs are kept (path on stderr); with
/// SHARDLINE_KEEP_CLUSTER=1 the whole dir is kept.
LocalCluster& test_cluster(const ClusterSpec& spec = {});

/// A free TCP port on 127.0.0.1, outside the kernel's ephemeral range, not handed out before by
/// this process.
std::uint16_t free_port();
/// The first of `n` consecutive free ports (same rules as free_port).
std::uint16_t free_port_block(int n);

/// The proxy binary ProxyProcess runs: $SHARDLINE_BINARY if set, else the path CMake compiled
/// into the test executable (the SHARDLINE_BINARY compile definition, registered below).
std::filesystem::path shardline_binary();
void register_shardline_binary(std::filesystem::path path);

/// `shardline serve --config <file>` as a child process. The constructor returns once the
/// listen port accepts connections; if the proxy exits first, it throws with the proxy's last
/// log lines. The destructor sends SIGTERM and waits (SIGKILL after 10 s). The child gets
/// SIGTERM if the thread that created it dies, so a crashed test leaves no proxy behind.
class ProxyProcess {
 public:
  explicit ProxyProcess(std::string config_yaml);
  /// Runs `binary` instead of shardline_binary(): for tests of this fixture itself.
  ProxyProcess(std::string config_yaml, std::filesystem::path binary);
  ~ProxyProcess();
  ProxyProcess(const ProxyProcess&) = delete;
  ProxyProcess& operator=(const ProxyProcess&) = delete;

  std::uint16_t port() const { return port_; }
  std::string conninfo(std::string user = "app", std::string password = "secret",
                       std::string db = "app") const;
  pid_t pid() const { return pid_; }
  void signal(int sig);
  /// The exit code (128 + signal number when a signal ended it), or -1 if the proxy is still
  /// running after `timeout`.
  int wait_exit(std::chrono::milliseconds timeout);
  /// Everything the proxy wrote to stdout and stderr so far.
  std::string log() const;
  const std::filesystem::path& log_path() const { return log_path_; }
  const std::filesystem::path& config_path() const { return config_path_; }

 private:
  bool accepts() const;

  std::filesystem::path config_path_;
  std::filesystem::path log_path_;
  std::string host_ = "127.0.0.1";
  std::uint16_t port_ = 6432;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

}  // namespace shardline::testing

#ifdef SHARDLINE_BINARY
// Only the it_* test sources get SHARDLINE_BINARY from CMake, not this support library, so each
// of them hands the path over at static initialisation (internal linkage: no ODR clash).
namespace {
[[maybe_unused]] const bool kShardlineBinaryRegistered =
    (::shardline::testing::register_shardline_binary(SHARDLINE_BINARY), true);
}  // namespace
#endif
