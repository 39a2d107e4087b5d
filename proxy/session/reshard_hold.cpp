// Holding requests for a logical shard (or a tenant: its routing id, DirectorySnapshot) whose
// reshard cutover is under way (SPEC.md section 8):
// the cutover puts a hold into the directory; requests that touch the held logical shard and
// are not inside a transaction already running on a server wait here until the directory
// releases it (the flip, or an abandoned cutover), then are routed again on the new directory.
// Transactions already running go on, so the cutover can drain them.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/session/client_session.hpp"

namespace shardline::proxy::session {

namespace {
constexpr auto kMaxHold = std::chrono::seconds(10);  ///< then the source's fence decides
constexpr auto kPollInterval = std::chrono::milliseconds(1);
}  // namespace

asio::awaitable<bool> ClientSession::wait_while_held(std::vector<int> logical) {
  auto held = [&] {
    const auto& d = *services_.directory;
    if (!d.any_held()) return false;
    for (int l : logical)
      if (d.held(l)) return true;
    return false;
  };
  if (logical.empty() || !held()) co_return false;
  if (tx_.open() && !tx_.held()) co_return false;  // in flight on its server: the cutover drains it
  const auto deadline = std::chrono::steady_clock::now() + kMaxHold;
  asio::steady_timer timer(services_.ex);
  while (held() && std::chrono::steady_clock::now() < deadline) {
    timer.expires_after(kPollInterval);
    (void)co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_return true;
}

}  // namespace shardline::proxy::session
