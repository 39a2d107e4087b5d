#pragma once
// libpq connection strings for the control plane's own connections to the shards (catalog,
// key types, later reshard and migrate), built from the config's `backend` credentials.

#include <string>
#include <string_view>

#include "config/config.hpp"

namespace shardline::control {

/// A keyword/value conninfo for `endpoint` with the backend user, password, database, TLS mode
/// and connect timeout. Every value is quoted, so passwords with spaces or quotes survive.
std::string libpq_conninfo(const config::Backend& backend, const config::Endpoint& endpoint,
                           std::string_view application_name);

/// "host:port/dbname" of a conninfo, for messages: never the password. Falls back to
/// "(unparsable conninfo)" rather than echoing a string that may hold a secret.
std::string describe_conninfo(const std::string& conninfo);

}  // namespace shardline::control
