#pragma once
// kill -9 of a PostgreSQL server for fault tests: the postmaster and every process it started,
// as a machine or container crash would leave it (LocalCluster::stop_server is a clean stop).
// LocalCluster::start_server brings it back afterwards (crash recovery).

#include "proxy/control/local_cluster.hpp"

namespace shardline::testing {

/// SIGKILL to the postmaster of `server` (from its postmaster.pid) and to all its children;
/// returns once none of them is alive, with the lock files they left removed. Throws
/// std::runtime_error if the server is not running.
void kill_server(const control::LocalCluster& cluster, const control::ServerInfo& server);

}  // namespace shardline::testing
