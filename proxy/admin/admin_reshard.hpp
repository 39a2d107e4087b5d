#pragma once
// The admin console's RESHARD commands (SPEC.md section 8): RESHARD MOVE <logical> TO <shard>,
// RESHARD ISOLATE TENANT '<key>' TO <shard>, RESHARD ABORT. The jobs run on the proxy's control
// plane (proxy/control/reshard_service.hpp); SHOW RESHARDS follows them.

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/control/reshard_service.hpp"
#include "proxy/session/services.hpp"

namespace shardline::proxy::admin {

/// The request a RESHARD command asks for, or nullopt with `error` set (a syntax error).
std::optional<control::ReshardRequest> parse_reshard(std::string_view command, std::string& error);

/// Runs a command that starts with RESHARD; the reply messages (no ReadyForQuery) go to `out`.
boost::asio::awaitable<void> run_reshard(session::Services& services, std::string_view command, std::string& out);

}  // namespace shardline::proxy::admin
