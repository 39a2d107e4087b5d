#include "proxy/session/commit_positions.hpp"

#include <algorithm>


namespace shardline::proxy::session {

WriteMarks::WriteMarks(int logical_shards) : logical_shards_(std::max(0, logical_shards)) {
  if (logical_shards_ > 0) {
    per_logical_ = std::make_unique<std::atomic<std::uint64_t>[]>(std::size_t(logical_shards_));
    for (int i = 0; i < logical_shards_; ++i) per_logical_[std::size_t(i)].store(0, std::memory_order_relaxed);
  }
}

void WriteMarks::raise(std::atomic<std::uint64_t>& slot, std::uint64_t lsn) {
  std::uint64_t seen = slot.load(std::memory_order_relaxed);
  while (seen < lsn && !slot.compare_exchange_weak(seen, lsn, std::memory_order_relaxed)) {
  }
}

void WriteMarks::commit_at(std::span<const int> logical, std::uint64_t lsn) {
  raise(all_, lsn);
  bool confined = per_logical_ && !logical.empty();
  for (int l : logical)
    if (l < 0) confined = false;
  if (!confined) {
    raise(shard_wide_, lsn);
    return;
  }
  for (int l : logical) raise(per_logical_[slot(l)], lsn);
}

void WriteMarks::commit_unknown(Clock::time_point now) {
  const std::int64_t ticks = std::max<std::int64_t>(1, now.time_since_epoch().count());
  std::int64_t seen = unknown_since_.load(std::memory_order_relaxed);
  while (seen < ticks && !unknown_since_.compare_exchange_weak(seen, ticks, std::memory_order_relaxed)) {
  }
}

std::optional<std::uint64_t> WriteMarks::required(std::span<const int> logical, const control::PrimarySample* sample) {
  if (std::int64_t since = unknown_since_.load(std::memory_order_relaxed); since != 0) {
    if (!sample || sample->sent_at.time_since_epoch().count() <= since) return std::nullopt;
    // The sample was taken after every unknown-position write so far: it covers them.
    const std::uint64_t covered = sample->insert_lsn.value();
    raise(shard_wide_, covered);
    raise(all_, covered);
    (void)unknown_since_.compare_exchange_strong(since, 0, std::memory_order_relaxed);
  }
  bool confined = per_logical_ && !logical.empty();
  for (int l : logical)
    if (l < 0) confined = false;
  if (!confined) return all_.load(std::memory_order_relaxed);
  std::uint64_t need = shard_wide_.load(std::memory_order_relaxed);
  for (int l : logical) need = std::max(need, per_logical_[slot(l)].load(std::memory_order_relaxed));
  return need;
}

CommitPositions::CommitPositions(int shards, int logical_shards)
    : count_(std::size_t(std::max(0, shards))),
      shards_(std::make_unique<std::unique_ptr<WriteMarks>[]>(count_)) {
  for (std::size_t s = 0; s < count_; ++s) shards_[s] = std::make_unique<WriteMarks>(logical_shards);
}

}  // namespace shardline::proxy::session
