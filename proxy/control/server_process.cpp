// Running PostgreSQL's server programs for LocalCluster: finding them, and spawning them as the
// server's OS user without a shell.

#include "proxy/control/server_process.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

extern char** environ;

namespace shardline::control {
namespace fs = std::filesystem;

namespace {

bool is_executable(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
}

std::optional<fs::path> find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return std::nullopt;
  std::stringstream ss(path);
  std::string entry;
  while (std::getline(ss, entry, ':')) {
    if (entry.empty()) continue;
    fs::path candidate = fs::path(entry) / name;
    if (is_executable(candidate)) return candidate;
  }
  return std::nullopt;
}

/// The newest /usr/lib/postgresql/<major>/bin with pg_ctl in it, else the directory of the
/// pg_ctl found on PATH (symlinks resolved, as Debian links them into /usr/local/bin or similar).
fs::path find_pg_bin() {
  int best_major = -1;
  fs::path best;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](unsigned char c) { return std::isdigit(c); })) continue;
    const int major = std::atoi(name.c_str());
    const fs::path bin = entry.path() / "bin";
    if (major > best_major && is_executable(bin / "pg_ctl") && is_executable(bin / "initdb")) {
      best_major = major;
      best = bin;
    }
  }
  if (best_major >= 0) return best;
  if (auto pg_ctl = find_in_path("pg_ctl")) {
    const fs::path bin = fs::canonical(*pg_ctl, ec).parent_path();
    if (!ec && is_executable(bin / "initdb") && is_executable(bin / "pg_basebackup")) return bin;
  }
  throw std::runtime_error(
      "LocalCluster: PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) not found in "
      "/usr/lib/postgresql/*/bin or on PATH; install postgresql-15 (scripts/install-deps.sh)");
}

}  // namespace

const Toolchain& toolchain() {
  static const Toolchain& tc = *[] {
    auto* t_ptr = new Toolchain;
    Toolchain& t = *t_ptr;
    t.bin = find_pg_bin();
    t.as_root = ::geteuid() == 0;
    if (t.as_root) {
      auto runuser = find_in_path("runuser");
      if (!runuser && is_executable("/usr/sbin/runuser")) runuser = fs::path("/usr/sbin/runuser");
      if (!runuser)
        throw std::runtime_error(
            "LocalCluster: running as root needs `runuser` (util-linux) to run PostgreSQL as the "
            "`postgres` OS user, and it was not found");
      t.runuser = *runuser;
      const passwd* pw = ::getpwnam(kServerOsUser);
      if (pw == nullptr)
        throw std::runtime_error(
            "LocalCluster: running as root, but there is no `postgres` OS user to run PostgreSQL "
            "as (PostgreSQL refuses to run as root); install postgresql-15 or run as a normal user");
      t.server_uid = pw->pw_uid;
      t.server_gid = pw->pw_gid;
    }
    return t_ptr;
  }();
  return tc;
}

/// The command line that runs `argv` as the server's OS user.
std::vector<std::string> as_server_user(std::vector<std::string> argv) {
  const Toolchain& tc = toolchain();
  if (!tc.as_root) return argv;
  std::vector<std::string> wrapped{tc.runuser.string(), "-u", kServerOsUser, "--"};
  wrapped.insert(wrapped.end(), std::make_move_iterator(argv.begin()),
                 std::make_move_iterator(argv.end()));
  return wrapped;
}

/// Files the servers write (logs, data dirs) must belong to the server's OS user.
void hand_to_server_user(const fs::path& p) {
  const Toolchain& tc = toolchain();
  if (!tc.as_root) return;
  if (::chown(p.c_str(), tc.server_uid, tc.server_gid) != 0)
    throw std::runtime_error(fmt::format("LocalCluster: chown {} to postgres failed: {}",
                                         p.string(), std::strerror(errno)));
}

/// Spawns argv[0] (an absolute path) with stdin from /dev/null and stdout+stderr appended to
/// `output`, in `cwd`, with `env` added to this process's environment. No shell is involved.
pid_t spawn(const std::vector<std::string>& argv, const fs::path& output, const fs::path& cwd,
            const std::vector<std::pair<std::string, std::string>>& env) {
  std::vector<char*> c_argv;
  for (const auto& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);

  std::vector<std::string> env_strings;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const bool overridden = std::any_of(env.begin(), env.end(), [&](const auto& kv) {
      return entry.size() > kv.first.size() && entry.substr(0, kv.first.size()) == kv.first &&
             entry[kv.first.size()] == '=';
    });
    if (!overridden) env_strings.emplace_back(entry);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> c_env;
  for (auto& e : env_strings) c_env.push_back(e.data());
  c_env.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, output.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  // Servers must not inherit this process's sockets (a test's proxy listener, say).
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, c_argv[0], &actions, nullptr, c_argv.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0)
    throw std::runtime_error(
        fmt::format("LocalCluster: cannot run {}: {}", argv.front(), std::strerror(rc)));
  return pid;
}

/// Exit code of a child; 128 + signal number when a signal ended it.
int wait_child(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

int run(const std::vector<std::string>& argv, const fs::path& output, const fs::path& cwd,
        const std::vector<std::pair<std::string, std::string>>& env) {
  return wait_child(spawn(argv, output, cwd, env));
}


}  // namespace shardline::control
