#pragma once
// PgBouncer's client-side timeouts (pool.query_timeout_ms, idle_transaction_timeout_ms,
// client_idle_timeout_ms), enforced by one proxy-wide timer, the janitor, that looks at every
// session a few times per shortest timeout. Sessions only count events on their hot path (a
// client read, a server ReadyForQuery): no timer is armed or allocated per statement.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>

#include "config/config.hpp"

namespace shardline::proxy::session {

struct Services;

/// What the janitor saw of one session at its last look, so it can tell how long the session
/// has been in the same state without the session stamping times itself.
struct TimeoutWatch {
  enum class Phase : std::uint8_t {
    Other,              ///< logging in, waiting for a server, writing to the client, a fan-out
    Running,            ///< a request is on its server and replies are due
    IdleInTransaction,  ///< waiting for the client inside a transaction
    Idle,               ///< waiting for the client outside a transaction
  };
  Phase phase = Phase::Other;
  bool cancelled = false;     ///< Running: the query_timeout cancel has been sent
  std::uint32_t mark = 0;     ///< the session's event count for this phase when it began
  std::chrono::steady_clock::time_point since{};
};

/// How often the janitor looks: a tenth of the shortest timeout that is on, within [10 ms, 1 s];
/// zero when all three are off (the janitor then only rereads the config every second).
std::chrono::milliseconds janitor_period(const config::Pool& pool);

/// The janitor: runs until the proxy stops.
boost::asio::awaitable<void> run_timeout_janitor(Services& services);

}  // namespace shardline::proxy::session
