#pragma once
// Where the writes this proxy acknowledged committed, per physical shard, so that a read under
// `global` consistency (SPEC section 7) goes to a replica only once it has replayed every write
// acknowledged, to any client, on the data the read can see. Tracked per logical shard, so a read
// of tenant X waits for nobody else's writes, plus a shard-wide mark for writes that are not
// confined to tenants (unsharded and reference tables, DDL, function calls, multi-tenant work).
//
// A write whose commit position could not be learned (COPY, multi-shard statements, a failed
// probe, commit-LSN tracking switched off) is recorded by the instant it was acknowledged: until
// the lag monitor has sampled the primary's insert position after that instant (and that sample
// covers the write), reads of the shard go to the primary. The same record serves one session's
// own writes under `session` consistency.
//
// Pure and socket-free; every member is a relaxed atomic, so sessions on any data-plane thread
// update it without locks (a read needs only positions acknowledged before it began, which the
// acknowledging thread published before it sent the acknowledgement).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "proxy/control/replica_state.hpp"

namespace shardline::proxy::session {

/// The logical shards some writes (a transaction's, an extended unit's) were confined to; once
/// one of them was not confined to tenants, the scope is the whole shard.
class WriteScope {
 public:
  /// Adds a statement's logical shards (router::Plan::logical; empty: shard-wide).
  void add(std::span<const int> logical) {
    if (logical.empty()) wide_ = true;
    if (wide_) return;
    for (int l : logical)
      if (std::find(logical_.begin(), logical_.end(), l) == logical_.end()) logical_.push_back(l);
  }
  /// The scope for WriteMarks (empty: shard-wide).
  std::vector<int> logical() const { return wide_ ? std::vector<int>{} : logical_; }
  /// The scope for WriteMarks (empty: shard-wide), leaving this one empty.
  std::vector<int> take() {
    std::vector<int> out;
    if (!wide_) out.swap(logical_);
    clear();
    return out;
  }
  void clear() {
    logical_.clear();
    wide_ = false;
  }

 private:
  std::vector<int> logical_;
  bool wide_ = false;
};

/// One shard's (or one session's) record of acknowledged writes. Positions are WAL insert
/// positions learned right after the commit; replicas are compared by ReplicaStatus::replayed_lsn,
/// which accounts for a page header the insert position may already be past.
class WriteMarks {
 public:
  using Clock = std::chrono::steady_clock;

  /// `logical_shards` slots for tenant-confined writes (0: only the shard-wide mark is kept).
  explicit WriteMarks(int logical_shards = 0);

  /// A write acknowledged at `lsn`, confined to `logical` (empty: shard-wide).
  void commit_at(std::span<const int> logical, std::uint64_t lsn);
  /// A write acknowledged now whose position is unknown.
  void commit_unknown(Clock::time_point now);

  /// What a replica must have replayed to serve a read of `logical` (empty: anything on the
  /// shard), or nullopt when no replica can be shown to qualify (an unknown-position write not yet
  /// covered by a primary sample taken after it). Folds a covering sample into the marks.
  std::optional<std::uint64_t> required(std::span<const int> logical, const control::PrimarySample* sample);

  /// The highest position of any write (for SHOW and tests).
  std::uint64_t highest() const { return all_.load(std::memory_order_relaxed); }

 private:
  static void raise(std::atomic<std::uint64_t>& slot, std::uint64_t lsn);
  /// The slot of logical shard `l`. A pinned tenant's routing id (past the hash's range, see
  /// DirectorySnapshot) shares a slot with a logical shard: its reads then wait for that
  /// logical shard's writes too, never for less than its own.
  std::size_t slot(int l) const { return std::size_t(l % logical_shards_); }

  int logical_shards_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> per_logical_;
  std::atomic<std::uint64_t> shard_wide_{0};
  std::atomic<std::uint64_t> all_{0};  ///< max of everything: what a shard-wide read needs
  /// steady_clock ticks of the oldest unknown-position write not yet covered; 0: none.
  std::atomic<std::int64_t> unknown_since_{0};
};

/// The proxy-wide marks: one WriteMarks per physical shard.
class CommitPositions {
 public:
  CommitPositions(int shards, int logical_shards);
  WriteMarks& shard(int s) { return *shards_[std::size_t(s)]; }
  int shards() const { return int(count_); }

 private:
  std::size_t count_;
  std::unique_ptr<std::unique_ptr<WriteMarks>[]> shards_;
};

}  // namespace shardline::proxy::session
