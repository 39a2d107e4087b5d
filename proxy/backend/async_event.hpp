#pragma once
// A wake-up signal for coroutines on one thread. Waiters re-check their condition after every
// wake-up, so a notify that comes before a wait is never lost as long as the condition was set
// first (the data plane is single-threaded, so nothing can slip in between).

#include <algorithm>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <vector>

namespace shardline::proxy::backend {

class AsyncEvent {
 public:
  explicit AsyncEvent(boost::asio::any_io_executor ex) : ex_(std::move(ex)) {}
  AsyncEvent(const AsyncEvent&) = delete;
  AsyncEvent& operator=(const AsyncEvent&) = delete;

  /// Wakes every current waiter.
  void notify() {
    auto waiters = std::move(waiters_);
    waiters_.clear();
    for (auto* t : waiters) t->cancel();
  }
  /// Suspends until notify() or `deadline`; true when notified.
  boost::asio::awaitable<bool> wait_until(std::chrono::steady_clock::time_point deadline) {
    boost::asio::steady_timer t(ex_, deadline);
    waiters_.push_back(&t);
    (void)co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    auto it = std::find(waiters_.begin(), waiters_.end(), &t);
    if (it == waiters_.end()) co_return true;
    waiters_.erase(it);
    co_return false;
  }
  boost::asio::awaitable<void> wait() {
    co_await wait_until(std::chrono::steady_clock::time_point::max());
  }
  std::size_t waiting() const { return waiters_.size(); }

 private:
  boost::asio::any_io_executor ex_;
  std::vector<boost::asio::steady_timer*> waiters_;
};

}  // namespace shardline::proxy::backend
