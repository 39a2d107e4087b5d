#include "proxy/backend/pool.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "proxy/backend/cluster.hpp"

namespace shardline::proxy::backend {

namespace sqlstate = protocol::sqlstate;

void ServerLease::reset() {
  if (conn_) {
    Pool* pool = conn_->pool;
    pool->release(std::move(conn_));
  }
}

Pool::Pool(Cluster& cluster, std::string shard, int replica, config::Endpoint endpoint)
    : cluster_(cluster), shard_(std::move(shard)), replica_(replica), endpoint_(std::move(endpoint)) {}

boost::asio::awaitable<ServerLease> Pool::acquire(Clock::time_point deadline, protocol::SqlError& err) {
  const auto& cfg = cluster_.config();
  bool waited = false;
  const auto started = Clock::now();
  for (;;) {
    while (cluster_.paused()) {
      if (!co_await cluster_.resumed_event().wait_until(deadline) && cluster_.paused()) {
        err = protocol::SqlError::error(sqlstate::kTooManyConnections,
                                        fmt::format("pool {} is paused (PAUSE) and was not resumed "
                                                    "within query_wait_timeout ({} ms)",
                                                    name(), cfg.pool.query_wait_timeout_ms));
        co_return ServerLease{};
      }
    }
    while (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      // A connection idle for a while may have been closed by the server (shutdown, restart,
      // idle_session_timeout) or have said something unsolicited (a FATAL before closing):
      // one non-blocking peek before reuse, so nothing it said reaches the next client.
      // Connections released moments ago (the hot path) skip the syscall.
      if (Clock::now() - c->last_used() > std::chrono::milliseconds(10) && c->stream().unusable_when_idle()) {
        discard(std::move(c));
        continue;
      }
      ++active_;
      if (waited) {
        ++stats.wait_count;
        stats.wait_us_total += std::uint64_t(
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count());
      }
      co_return ServerLease(std::move(c));
    }
    if (total_ < cfg.pool.size) {
      if (login_retry_refusal(err)) co_return ServerLease{};
      ++total_;
      auto ex = co_await boost::asio::this_coro::executor;
      auto r = co_await ServerConnection::connect(ex, endpoint_, cfg.backend, cluster_.backend_tls(),
                                                  std::chrono::milliseconds(cfg.server_connect_timeout_ms()));
      if (!r.ok()) {
        --total_;
        ++stats.connect_failures;
        note_failure();
        last_failure_ = r.error();
        failed_at_ = Clock::now();
        spdlog::warn("pool {}: {}", name(), last_failure_);
        wake_one_for_slot();
        err = protocol::SqlError::error(
            sqlstate::kConnectionFailure,
            fmt::format("shard {} {} is unreachable: {}", shard_, role(), r.error()));
        co_return ServerLease{};
      }
      last_failure_.clear();
      ++stats.connects;
      auto c = std::move(r).value();
      c->pool = this;
      all_.insert(c.get());
      cluster_.remember_server_parameters(c->startup_parameters());
      ++active_;
      co_return ServerLease(std::move(c));
    }
    // Queue for a connection.
    waited = true;
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, deadline);
    Waiter w{&timer, nullptr, false, Clock::now()};
    waiters_.push_back(&w);
    (void)co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (auto it = std::find(waiters_.begin(), waiters_.end(), &w); it != waiters_.end()) waiters_.erase(it);
    if (w.handed) {
      ++active_;
      ++stats.wait_count;
      stats.wait_us_total += std::uint64_t(
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count());
      co_return ServerLease(std::move(w.handed));
    }
    if (w.may_connect || cluster_.paused()) continue;
    if (Clock::now() >= deadline) {
      err = protocol::SqlError::error(
          sqlstate::kTooManyConnections,
          fmt::format("no server connection for shard {} {} became free within query_wait_timeout "
                      "({} ms): all {} are in use",
                      shard_, role(), cfg.pool.query_wait_timeout_ms, cfg.pool.size));
      co_return ServerLease{};
    }
  }
}

bool Pool::login_retry_refusal(protocol::SqlError& err) const {
  if (last_failure_.empty()) return false;
  const int retry_ms = cluster_.config().pool.server_login_retry_ms;
  const auto since = Clock::now() - failed_at_;
  if (since >= std::chrono::milliseconds(retry_ms)) return false;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::milliseconds(retry_ms) - since);
  // PgBouncer's words, so its users recognise the state: no new login is tried until then.
  err = protocol::SqlError::error(
      sqlstate::kConnectionFailure,
      fmt::format("shard {} {}: server login has been failing, try again later (server_login_retry: next "
                  "attempt in {} ms); last error: {}",
                  shard_, role(), left.count(), last_failure_));
  return true;
}

void Pool::release(std::unique_ptr<ServerConnection> conn) {
  --active_;
  conn->client_id = 0;
  const auto& cfg = cluster_.config();
  const auto now = Clock::now();
  if (conn->broken || cluster_.stopping() ||
      now - conn->created_at() > std::chrono::milliseconds(cfg.pool.server_lifetime_ms) ||
      total_ > cfg.pool.size) {
    discard(std::move(conn));
    wake_one_for_slot();
    return;
  }
  if (conn->cancels_in_flight > 0) {
    cancelling_.push_back(std::move(conn));
    return;
  }
  conn->touch();
  if (!waiters_.empty()) {
    Waiter* w = waiters_.front();
    waiters_.pop_front();
    w->handed = std::move(conn);
    w->timer->cancel();
    return;
  }
  idle_.push_back(std::move(conn));
}

void Pool::cancel_finished(std::uint64_t server_id, bool delivered) {
  auto conn = std::find_if(all_.begin(), all_.end(), [&](const ServerConnection* c) { return c->id() == server_id; });
  if (conn == all_.end()) return;  // closed meanwhile
  --(*conn)->cancels_in_flight;
  if (!delivered) (*conn)->broken = true;
  if ((*conn)->cancels_in_flight > 0) return;
  auto parked = std::find_if(cancelling_.begin(), cancelling_.end(),
                             [&](const auto& c) { return c->id() == server_id; });
  if (parked == cancelling_.end()) return;  // still lent: its lease brings it back
  auto c = std::move(*parked);
  cancelling_.erase(parked);
  ++active_;  // release() counts it out again
  release(std::move(c));
}

void Pool::wake_one_for_slot() {
  if (waiters_.empty()) return;
  Waiter* w = waiters_.front();
  waiters_.pop_front();
  w->may_connect = true;
  w->timer->cancel();
}

void Pool::discard(std::unique_ptr<ServerConnection> conn) {
  all_.erase(conn.get());
  --total_;
  conn->stream().close();
}

void Pool::sweep(Clock::time_point now) {
  const auto& cfg = cluster_.config();
  const auto idle_limit = std::chrono::milliseconds(cfg.pool.server_idle_timeout_ms);
  const auto life_limit = std::chrono::milliseconds(cfg.pool.server_lifetime_ms);
  std::vector<std::unique_ptr<ServerConnection>> keep;
  for (auto& c : idle_) {
    if (now - c->last_used() > idle_limit || now - c->created_at() > life_limit) {
      spdlog::debug("closing idle server connection {} to {}", c->id(), name());
      discard(std::move(c));
    } else {
      keep.push_back(std::move(c));
    }
  }
  idle_ = std::move(keep);
}

void Pool::close_idle() {
  for (auto& c : idle_) discard(std::move(c));
  idle_.clear();
}

Clock::duration Pool::longest_wait(Clock::time_point now) const {
  return waiters_.empty() ? Clock::duration::zero() : now - waiters_.front()->since;
}

}  // namespace shardline::proxy::backend
