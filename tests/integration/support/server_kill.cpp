#include "tests/integration/support/server_kill.hpp"

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace shardline::testing {

namespace {
/// The parent pid of `pid` from /proc/<pid>/stat (-1 if it is gone or a zombie).
pid_t parent_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = stat.rfind(')');  // the command name may contain spaces
  if (close == std::string::npos) return -1;
  char state = 0;
  pid_t ppid = -1;
  if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) != 2 || state == 'Z') return -1;
  return ppid;
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    if (parent_of(pid) == parent) out.push_back(pid);
  }
  return out;
}
}  // namespace

void kill_server(const control::LocalCluster& cluster, const control::ServerInfo& server) {
  std::ifstream pidfile(server.datadir / "postmaster.pid");
  pid_t postmaster = -1;
  if (!(pidfile >> postmaster) || postmaster <= 0 || ::kill(postmaster, 0) != 0)
    throw std::runtime_error("kill_server: " + server.name() + " is not running");
  // Children first is not required for a crash, but all must die before the postmaster's
  // absence lets a restart begin: stop the postmaster from forking, then kill the rest.
  ::kill(postmaster, SIGSTOP);
  std::vector<pid_t> all = children_of(postmaster);
  for (pid_t c : all) ::kill(c, SIGKILL);
  ::kill(postmaster, SIGKILL);
  all.push_back(postmaster);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (pid_t p : all)
    while (parent_of(p) != -1 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  // The dead postmaster stays a zombie until its parent (init, which need not be quick) reaps
  // it, and a zombie's pid passes PostgreSQL's "is the lock file's owner alive" check: a
  // restart would refuse to start. Its lock files (the data directory's and the Unix socket's)
  // are stale now; an operator would remove them too.
  if (parent_of(postmaster) != -1) return;
  std::filesystem::remove(server.datadir / "postmaster.pid");
  std::filesystem::remove(cluster.socket_dir() / (".s.PGSQL." + std::to_string(server.port) + ".lock"));
}

}  // namespace shardline::testing
