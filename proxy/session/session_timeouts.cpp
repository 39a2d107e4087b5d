// The timeout janitor and what it does to a session whose timeout passed (README "Timeouts").
// SQLSTATEs are PostgreSQL's for its own equivalent timeouts, so drivers classify them as they
// already do; the messages name the PgBouncer setting, so its users recognise them.

#include "proxy/session/session_timeouts.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/exec/cancel_request.hpp"
#include "proxy/session/client_session.hpp"

namespace shardline::proxy::session {

using protocol::SqlError;
namespace sqlstate = protocol::sqlstate;
using Phase = TimeoutWatch::Phase;

namespace {
constexpr const char* kIdleInTransactionTimeout = "25P03";  // PostgreSQL's idle_in_transaction_session_timeout
constexpr const char* kIdleSessionTimeout = "57P05";        // PostgreSQL's idle_session_timeout
/// Sends the CancelRequest (to the server running the statement, with that server's own key)
/// and marks the flight done once the server has taken it.
boost::asio::awaitable<void> deliver_cancel(std::shared_ptr<CancelFlight> flight, config::Endpoint endpoint,
                                            std::int32_t pid, std::int32_t secret) {
  co_await exec::send_cancel_request(std::move(endpoint), pid, secret);
  flight->done = true;
  if (flight->wake) flight->wake();
}

}  // namespace

std::int64_t cancel_grace_ms(const config::Pool& pool) {
  return std::max<std::int64_t>(pool.query_timeout_ms, kMinCancelGraceMs);
}

std::chrono::milliseconds janitor_period(const config::Pool& pool) {
  int shortest = 0;
  for (int t : {pool.query_timeout_ms, pool.idle_transaction_timeout_ms, pool.client_idle_timeout_ms})
    if (t > 0 && (shortest == 0 || t < shortest)) shortest = t;
  if (shortest == 0) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(std::clamp(shortest / 10, 10, 1000));
}

boost::asio::awaitable<void> run_timeout_janitor(Services& services) {
  boost::asio::steady_timer timer(services.ex);
  while (!services.stopping) {
    const auto period = janitor_period(services.cluster.config().pool);
    timer.expires_after(period.count() > 0 ? period : std::chrono::milliseconds(1000));
    auto [ec] = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec) co_return;
    const auto& pool = services.cluster.config().pool;
    if (janitor_period(pool).count() == 0) continue;  // all off (perhaps since a RELOAD)
    const auto now = std::chrono::steady_clock::now();
    // check_timeouts only sets flags, cancels waits and spawns cancel requests: no session
    // ends (leaves `sessions`) while this loop runs.
    for (auto& [pid, session] : services.sessions) session->check_timeouts(now, pool);
  }
}

Phase ClientSession::timeout_phase(std::uint32_t& mark) const {
  if (!in_client_loop_ || timeout_error_ || client_gone_) return Phase::Other;
  if (server_ && !tracker_.empty()) {
    mark = server_readies_;
    return Phase::Running;
  }
  if (!client_waiting_ || waiting_for_server_) return Phase::Other;
  mark = client_reads_;
  return tx_.status() != 'I' ? Phase::IdleInTransaction : Phase::Idle;
}

void ClientSession::check_timeouts(std::chrono::steady_clock::time_point now, const config::Pool& pool) {
  std::uint32_t mark = 0;
  const Phase phase = timeout_phase(mark);
  if (phase != watch_.phase || mark != watch_.mark) {
    watch_ = TimeoutWatch{phase, false, mark, now};
    return;
  }
  const auto elapsed = now - watch_.since;
  const auto passed = [&](std::int64_t ms) { return ms > 0 && elapsed >= std::chrono::milliseconds(ms); };
  switch (phase) {
    case Phase::Running:
      if (!watch_.cancelled && passed(pool.query_timeout_ms)) {
        watch_.cancelled = true;
        cancel_for_timeout(pool.query_timeout_ms);
      } else if (watch_.cancelled && passed(pool.query_timeout_ms + cancel_grace_ms(pool))) {
        close_for_timeout(SqlError::fatal(
            sqlstate::kQueryCanceled,
            fmt::format("terminating connection due to query_timeout: the server did not answer the cancel "
                        "request within {} ms",
                        cancel_grace_ms(pool))));
      }
      break;
    case Phase::IdleInTransaction:
      if (passed(pool.idle_transaction_timeout_ms))
        close_for_timeout(SqlError::fatal(
            kIdleInTransactionTimeout,
            fmt::format("terminating connection due to idle-in-transaction timeout (idle transaction timeout: "
                        "pool.idle_transaction_timeout_ms is {})",
                        pool.idle_transaction_timeout_ms)));
      break;
    case Phase::Idle:
      if (passed(pool.client_idle_timeout_ms))
        close_for_timeout(SqlError::fatal(
            kIdleSessionTimeout, fmt::format("terminating connection due to idle-session timeout (client_idle_timeout: "
                                             "pool.client_idle_timeout_ms is {})",
                                             pool.client_idle_timeout_ms)));
      break;
    case Phase::Other:
      break;
  }
}

void ClientSession::cancel_for_timeout(int timeout_ms) {
  spdlog::info("client {} (pid {}): statement ran longer than pool.query_timeout_ms ({} ms) on {}; cancelling it",
               peer_, pid_, timeout_ms, pool_->name());
  query_timeout_error_ = std::make_unique<SqlError>(SqlError::error(
      sqlstate::kQueryCanceled, "canceling statement due to query_timeout"));
  query_timeout_error_->detail =
      fmt::format("The statement ran longer than pool.query_timeout_ms ({} ms) on shard {}; shardline cancelled it.",
                  timeout_ms, pool_->name());
  timeout_cancel_pending_ = true;
  cancel_flight_ = std::make_shared<CancelFlight>();
  cancel_flight_->wake = [this] { pump_state_.notify(); };
  boost::asio::co_spawn(services_.ex,
                        deliver_cancel(cancel_flight_, server_->endpoint(), server_->backend_pid(),
                                       server_->backend_secret()),
                        boost::asio::detached);
}

boost::asio::awaitable<void> ClientSession::await_cancel_delivered() {
  while (cancel_flight_ && !cancel_flight_->done) co_await pump_state_.wait();
  cancel_flight_.reset();
}

const SqlError* ClientSession::replace_error(std::string_view code) {
  if (!timeout_cancel_pending_ || code != sqlstate::kQueryCanceled) return nullptr;
  timeout_cancel_pending_ = false;  // the cancel took effect: the server is idle and answers again
  return query_timeout_error_.get();
}

void ClientSession::timeout_ready_for_query() {
  ++server_readies_;
  if (!timeout_cancel_pending_) return;
  // The statement ended before the cancel reached it: the cancel may still arrive and hit a
  // later statement, so this server is closed when released instead of going back to its pool.
  timeout_cancel_pending_ = false;
  if (server_) server_->broken = true;
}

void ClientSession::close_for_timeout(SqlError e) {
  spdlog::info("client {} (pid {}): {} ({}), closing", peer_, pid_, e.message, e.sqlstate);
  timeout_error_ = std::make_unique<SqlError>(std::move(e));
  // Its transaction (or statement) is abandoned: the server is closed, never reused.
  if (server_) server_->broken = true;
  boost::system::error_code ec;
  if (server_ && !tracker_.empty()) {
    // The server does not answer: closing it ends the pump, which tells the client.
    server_->stream().close();
    return;
  }
  // Idle: the client loop's wait ends and it sends the error (client_loop).
  stream_.socket().cancel(ec);
}

}  // namespace shardline::proxy::session
