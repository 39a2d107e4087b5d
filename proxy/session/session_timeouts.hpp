#pragma once
// PgBouncer's client-side timeouts (pool.query_timeout_ms, idle_transaction_timeout_ms,
// client_idle_timeout_ms), enforced by one proxy-wide timer, the janitor, that looks at every
// session a few times per shortest timeout. Sessions only count events on their hot path (a
// client read, a server ReadyForQuery): no timer is armed or allocated per statement.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>

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

/// A query_timeout CancelRequest on its way, shared by the session and the coroutine that sends
/// it. Until it is `done` (the server closed the cancel connection: it has signalled the backend)
/// the session sends nothing more to that server, so a cancel that arrives late finds the
/// backend idle, where PostgreSQL discards it, and never hits the session's next statement.
struct CancelFlight {
  bool done = false;
  std::function<void()> wake;  ///< the session's wake-up; cleared when the session ends
};

/// After a query_timeout cancel, how long the server has to answer before the client and the
/// server are closed: another query_timeout, at least kMinCancelGraceMs (delivering a cancel
/// takes a connection and, in PostgreSQL, a fork; a loaded machine must not turn a short
/// timeout into a dropped connection).
inline constexpr std::int64_t kMinCancelGraceMs = 2000;
std::int64_t cancel_grace_ms(const config::Pool& pool);

/// How often the janitor looks: a tenth of the shortest timeout that is on, within [10 ms, 1 s];
/// zero when all three are off (the janitor then only rereads the config every second).
std::chrono::milliseconds janitor_period(const config::Pool& pool);

/// The janitor: runs until the proxy stops.
boost::asio::awaitable<void> run_timeout_janitor(Services& services);

}  // namespace shardline::proxy::session
