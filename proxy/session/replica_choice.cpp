// Which replica may answer a read: healthy, within the lag limits, and past every position the
// session's consistency needs (the writes it must see, a version cookie); else the primary.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/session/client_session.hpp"

namespace shardline::proxy::session {

asio::awaitable<int> ClientSession::choose_replica(int shard, const router::RouteTemplate& t, std::vector<int> logical) {
  bool behind = false;
  int r = pick_replica(shard, t, logical, &behind);
  const auto& limits = services_.cluster.config().replicas;
  if (r >= 0 || !behind || limits.read_after_wait_ms <= 0) co_return r;
  // A replica is healthy but has not replayed this session's write yet: give it a moment
  // (each lag-monitor round may show it caught up), then fall back to the primary.
  const auto deadline = backend::Clock::now() + std::chrono::milliseconds(limits.read_after_wait_ms);
  asio::steady_timer timer(services_.ex);
  while (behind && backend::Clock::now() < deadline) {
    timer.expires_at(std::min(deadline, backend::Clock::now() + std::chrono::milliseconds(limits.poll_interval_ms)));
    (void)co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    behind = false;
    r = pick_replica(shard, t, logical, &behind);
    if (r >= 0) co_return r;
  }
  co_return -1;
}

int ClientSession::pick_replica(int shard, const router::RouteTemplate& t, std::span<const int> logical,
                                bool* behind) {
  const auto& snapshot = services_.replicas;
  auto& pools = services_.cluster.replicas(shard);
  if (!snapshot || pools.empty()) return -1;
  config::Consistency consistency = consistency_;
  if (t.hint_consistency) {
    if (auto c = config::parse_consistency(*t.hint_consistency)) consistency = *c;
  }
  if (consistency == config::Consistency::Strong) return -1;
  const std::string& name = services_.directory->shard_name(shard);
  // The position a replica must have replayed: every acknowledged write on what the read can
  // see (global), or this session's own (session); and any version cookie the client brought
  // (read_after, from SET or a comment hint). An acknowledged write whose position is not
  // known yet keeps the read on the primary.
  std::uint64_t required = 0;
  WriteMarks* marks = consistency == config::Consistency::Global    ? &services_.commits->shard(shard)
                      : consistency == config::Consistency::Session ? written(shard)
                                                                    : nullptr;
  if (marks) {
    auto need = marks->required(consistency == config::Consistency::Global ? logical : std::span<const int>{},
                                snapshot->primary_sample(name));
    if (!need) {
      if (behind) *behind = true;  // the next primary sample may tell
      return -1;
    }
    required = *need;
  }
  auto require_token = [&](const std::vector<ShardLsn>& token) {
    for (const auto& s : token)
      if (s.shard == shard) required = std::max(required, s.lsn);
  };
  require_token(read_after_);
  if (t.hint_read_after) {
    std::string error;
    if (auto parsed = parse_lsn_token(*t.hint_read_after, services_.directory->shard_names(), &error)) require_token(*parsed);
    else return -1;  // a bad hint never risks a stale read
  }
  const auto& limits = services_.cluster.config().replicas;
  int best = -1;
  int best_load = 0;
  const auto now = backend::Clock::now();
  for (std::size_t r = 0; r < pools.size(); ++r) {
    if (pools[r]->failed_recently(now)) continue;
    const auto* st = snapshot->find(name, int(r));
    if (!st || !st->healthy() || st->lag_bytes > limits.max_lag_bytes || st->lag_ms > limits.max_lag_ms) continue;
    if (st->replayed_lsn.value() < required) {
      if (behind) *behind = true;
      continue;
    }
    int load = pools[r]->active() + pools[r]->waiting();
    if (best < 0 || load < best_load) {
      best = int(r);
      best_load = load;
    }
  }
  return best;
}

}  // namespace shardline::proxy::session
