// `shardline demo` as a newcomer runs it (SPEC sections 1 and 2): two shards with a streaming
// replica each, the sample schema loaded through the proxy, and the printed walkthrough. Every
// printed psql command is run as printed (through /bin/sh) and must answer without an error;
// what the commands claim is checked independently: each shard's primary, queried directly,
// holds exactly the tenants the hash and the YAML ranges give it, every shard holds some, the
// sample's row counts add up, the reference table is complete on every shard, and the
// dashboard URL serves the page. A second run on the same dir reuses the cluster and the sample.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "proxy/cli/demo_sample.hpp"
#include "proxy/control/local_cluster.hpp"
#include "router/sharding/shard_key.hpp"
#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using shardline::testing::PgConnection;
using shardline::testing::PgResult;

constexpr int kShards = 2;
constexpr int kLogicalShards = 1024;

int shard_of(std::int64_t tenant) {
  return shardline::router::logical_shard_of_int(tenant, kLogicalShards) * kShards / kLogicalShards;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// `shardline demo` as a child process, its stdout and stderr in one log file.
class Demo {
 public:
  Demo(const fs::path& dir, std::uint16_t port, std::uint16_t base_port, std::uint16_t http_port, fs::path log)
      : log_(std::move(log)) {
    const std::string bin = shardline::testing::shardline_binary().string();
    std::vector<std::string> args{bin,
                                  "demo",
                                  "--dir",
                                  dir.string(),
                                  "--shards",
                                  std::to_string(kShards),
                                  "--replicas",
                                  "1",
                                  "--port",
                                  std::to_string(port),
                                  "--base-port",
                                  std::to_string(base_port),
                                  "--http-port",
                                  std::to_string(http_port)};
    pid_ = ::fork();
    if (pid_ == 0) {
      // SIGINT is the demo's Ctrl-C: it stops its PostgreSQL servers before it exits.
      ::prctl(PR_SET_PDEATHSIG, SIGINT);
      FILE* out = std::fopen(log_.c_str(), "w");
      if (out == nullptr) _exit(127);
      ::dup2(fileno(out), 1);
      ::dup2(fileno(out), 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~Demo() { stop(); }

  /// Waits until the walkthrough is printed; false if the demo exited first or took too long.
  bool wait_ready(std::chrono::seconds timeout) {
    for (const auto start = std::chrono::steady_clock::now(); std::chrono::steady_clock::now() - start < timeout;
         std::this_thread::sleep_for(100ms)) {
      if (read_all(log_).find("Ctrl-C stops the proxy") != std::string::npos) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        pid_ = -1;
        return false;
      }
    }
    return false;
  }
  /// Ctrl-C; the exit code (-1 if it had to be killed).
  int stop() {
    if (pid_ <= 0) return exit_code_;
    ::kill(pid_, SIGINT);
    int status = 0;
    for (int i = 0; i < 600; ++i) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(100ms);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return exit_code_ = -1;
  }
  std::string log() const { return read_all(log_); }

 private:
  fs::path log_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

/// The printed walkthrough: its psql commands and its URL.
struct Walkthrough {
  std::vector<std::string> commands;
  std::vector<std::string> urls;
};

Walkthrough parse_walkthrough(const std::string& log) {
  Walkthrough w;
  const auto start = log.find("Walkthrough");
  const auto end = log.find("Ctrl-C stops the proxy");
  if (start == std::string::npos || end == std::string::npos) return w;
  std::istringstream in(log.substr(start, end - start));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("  psql ", 0) == 0) w.commands.push_back(line.substr(2));
    if (line.rfind("  http://", 0) == 0) w.urls.push_back(line.substr(2));
  }
  return w;
}

/// Runs a shell command line; returns its exit status and everything it printed.
std::pair<int, std::string> shell(const std::string& command) {
  const std::string full = "PGCONNECT_TIMEOUT=10 " + command + " 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) return {-1, "popen failed"};
  std::string out;
  std::array<char, 4096> buf{};
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

/// A plain HTTP/1.0 GET of http://127.0.0.1:PORT/PATH; returns the whole response.
std::string http_get(std::uint16_t port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string req = fmt::format("GET {} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (::send(fd, req.data(), req.size(), 0) == ssize_t(req.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, std::size_t(n));
    }
  }
  ::close(fd);
  return out;
}

std::int64_t count(const PgConnection& c, const std::string& table) {
  return std::stoll(c.value("SELECT count(*) FROM " + table));
}

TEST(Demo, WalkthroughCommandsAnswerAndTheSampleIsSpreadOverBothShards) {
  char tmpl[] = "/tmp/shardline-demo-it-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const fs::path work = tmpl;
  ::chmod(work.c_str(), 0755);  // the servers run as the postgres OS user
  const fs::path dir = work / "cluster";
  const std::uint16_t base = shardline::testing::free_port_block(10 * kShards);
  const std::uint16_t port = shardline::testing::free_port();
  const std::uint16_t http = shardline::testing::free_port();
  bool ok = false;
  {
    Demo demo(dir, port, base, http, work / "demo1.log");
    ASSERT_TRUE(demo.wait_ready(300s)) << demo.log();
    const std::string log = demo.log();
    EXPECT_NE(log.find("sample loaded: 1000 tenants"), std::string::npos) << log;

    std::cout << "---- shardline demo printed ----\n" << log.substr(log.find("shardline demo is up")) << "----\n";
    const Walkthrough w = parse_walkthrough(log);
    ASSERT_GE(w.commands.size(), 8u) << log;
    bool saw_route = false, saw_directory = false, saw_scatter = false, saw_tenant = false;
    const auto want = shardline::proxy::cli::demo_sample_counts();
    for (const auto& cmd : w.commands) {
      const auto [rc, out] = shell(cmd);
      std::cout << "$ " << cmd << "\n" << out;
      EXPECT_EQ(rc, 0) << cmd << "\n" << out;
      EXPECT_EQ(out.find("ERROR"), std::string::npos) << cmd << "\n" << out;
      if (cmd.find("SHOW ROUTE SELECT * FROM orders WHERE tenant_id = 42") != std::string::npos) {
        saw_route = true;
        EXPECT_NE(out.find(fmt::format("Single(s{})", shard_of(42))), std::string::npos) << out;
      }
      if (cmd.find("SHOW DIRECTORY") != std::string::npos) {
        saw_directory = true;
        EXPECT_NE(out.find("s0"), std::string::npos) << out;
        EXPECT_NE(out.find("s1"), std::string::npos) << out;
      }
      if (cmd.find("SELECT count(*) AS orders") != std::string::npos) {
        saw_scatter = true;
        EXPECT_NE(out.find(fmt::format(" {} ", want.orders)), std::string::npos) << "the scatter count\n" << out;
      }
      if (cmd.find("WHERE t.tenant_id = 42") != std::string::npos) {
        saw_tenant = true;
        EXPECT_NE(out.find("tenant 0042"), std::string::npos) << out;
        // served_by: the primary or the replica of tenant 42's shard.
        const int p = base + 10 * shard_of(42);
        EXPECT_TRUE(out.find(std::to_string(p)) != std::string::npos ||
                    out.find(std::to_string(p + 1)) != std::string::npos)
            << out;
      }
    }
    EXPECT_TRUE(saw_route && saw_directory && saw_scatter && saw_tenant) << log;

    // The dashboard URL serves the page.
    ASSERT_EQ(w.urls.size(), 1u) << log;
    EXPECT_EQ(w.urls[0], fmt::format("http://127.0.0.1:{}/", http));
    const std::string page = http_get(http, "/");
    EXPECT_EQ(page.rfind("HTTP/1.", 0), 0u) << page.substr(0, 200);
    EXPECT_NE(page.find(" 200 "), std::string::npos) << page.substr(0, 200);
    EXPECT_NE(page.find("<html"), std::string::npos) << page.substr(0, 400);

    // What landed where, on each primary directly.
    shardline::proxy::cli::DemoSampleCounts total;
    for (int s = 0; s < kShards; ++s) {
      PgConnection c(fmt::format("host=127.0.0.1 port={} user=app password=secret dbname=app", base + 10 * s));
      ASSERT_TRUE(c.ok()) << c.error();
      const auto tenants = count(c, "tenants");
      EXPECT_GT(tenants, 100) << "shard s" << s;
      total.tenants += tenants;
      total.orders += count(c, "orders");
      total.order_items += count(c, "order_items");
      EXPECT_EQ(count(c, "plans"), want.plans) << "the reference table is complete on s" << s;
      total.plans = want.plans;
      const PgResult ids = c.exec("SELECT tenant_id FROM tenants");
      ASSERT_TRUE(ids.ok()) << ids.describe();
      int misplaced = 0;
      for (int r = 0; r < ids.rows(); ++r) misplaced += shard_of(std::stoll(ids.value(r, 0))) != s;
      EXPECT_EQ(misplaced, 0) << "tenants on s" << s << " that belong elsewhere";
      EXPECT_EQ(c.value("SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.tenant_id = o.tenant_id)"),
                "0")
          << "orders live with their tenant on s" << s;
      EXPECT_GE(count(c, "notes"), 1) << "the walkthrough's INSERT reached s" << s;
    }
    EXPECT_EQ(total, want);
    EXPECT_EQ(demo.stop(), 0) << demo.log();
    ok = !::testing::Test::HasFailure();
  }
  {
    // A second run reuses the cluster and finds the sample complete.
    Demo again(dir, port, base, http, work / "demo2.log");
    ASSERT_TRUE(again.wait_ready(300s)) << again.log();
    EXPECT_NE(again.log().find("sample already there"), std::string::npos) << again.log();
    EXPECT_EQ(again.stop(), 0) << again.log();
  }
  shardline::control::LocalCluster::shutdown_dir(dir);  // nothing should be left; be sure
  if (ok && !::testing::Test::HasFailure()) fs::remove_all(work);
  else std::cerr << "demo test: logs kept in " << work << "\n";
}

}  // namespace
