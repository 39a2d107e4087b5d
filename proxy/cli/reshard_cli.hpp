#pragma once
// `shardline reshard move|isolate|status|abort` (SPEC.md section 2): a client of a running
// proxy's admin console. The job runs inside the proxy; this only starts, follows or aborts it
// and draws its progress on stderr (a live line on a terminal, plain lines otherwise).

#include <string>

namespace shardline::proxy::cli {

struct ReshardCliOptions {
  std::string action;  ///< move | isolate | status | abort
  int logical = -1;
  std::string tenant;
  std::string target;
  std::string admin_url;    ///< libpq URL or conninfo of the admin console
  std::string config_path;  ///< or: derived from `listen` and the first admin user
};

/// The exit code: 0 done, 1 user error, 2 the job failed or was aborted (or a runtime failure).
int run_reshard_cli(const ReshardCliOptions& options);

}  // namespace shardline::proxy::cli
