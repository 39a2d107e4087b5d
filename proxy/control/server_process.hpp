#pragma once
// Running PostgreSQL's server programs (initdb, pg_ctl, pg_basebackup) for LocalCluster: where
// they are, and spawning them with an argument vector (never a shell) as the server's OS user:
// `postgres` through runuser when this process is root, since PostgreSQL refuses to run as root.

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace shardline::control {

inline constexpr const char* kServerOsUser = "postgres";

/// Where the PostgreSQL binaries are and how to run them (directly, or as `postgres` via runuser).
struct Toolchain {
  std::filesystem::path bin;      ///< directory holding initdb, pg_ctl, pg_basebackup
  bool as_root = false;
  std::filesystem::path runuser;  ///< only when as_root
  uid_t server_uid = 0;
  gid_t server_gid = 0;

  std::filesystem::path tool(const char* name) const { return bin / name; }
};

/// Found once (throws std::runtime_error naming what is missing), then shared.
const Toolchain& toolchain();

/// The command line that runs `argv` as the server's OS user.
std::vector<std::string> as_server_user(std::vector<std::string> argv);

/// Files the servers write (logs, data dirs) must belong to the server's OS user.
void hand_to_server_user(const std::filesystem::path& p);

/// Spawns argv[0] (an absolute path) with stdin from /dev/null and stdout+stderr appended to
/// `output`, in `cwd`, with `env` added to this process's environment. No shell is involved.
pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& output, const std::filesystem::path& cwd,
            const std::vector<std::pair<std::string, std::string>>& env = {});

/// Exit code of a child; 128 + signal number when a signal ended it.
int wait_child(pid_t pid);

/// spawn() and wait_child().
int run(const std::vector<std::string>& argv, const std::filesystem::path& output, const std::filesystem::path& cwd,
        const std::vector<std::pair<std::string, std::string>>& env = {});

}  // namespace shardline::control
