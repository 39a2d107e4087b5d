#pragma once
// CancelRequest (protocol: a new connection to the server carrying the backend's pid and secret
// key, which the server closes once it has signalled that backend).

#include <boost/asio/awaitable.hpp>
#include <cstdint>

#include "config/config.hpp"

namespace shardline::proxy::exec {

/// Sends a CancelRequest for the query `server` runs (on a new connection to its endpoint) and
/// completes when the server has taken it (it closes that connection: true) or it could not be
/// sent or was not confirmed within 10 s (false: the signal may still come).
boost::asio::awaitable<bool> send_cancel_request(config::Endpoint endpoint, std::int32_t backend_pid,
                                                 std::int32_t backend_secret);

}  // namespace shardline::proxy::exec
