#pragma once
// What the lag monitor publishes each round: an immutable snapshot of every replica's health and
// lag, swapped in whole (shared_ptr<const ReplicaSnapshot>) so the data plane reads it without
// locks and never sees a half-updated round.

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "proxy/control/lsn.hpp"

namespace shardline::control {

/// The lag published when it is unknown (replica unreachable, not in recovery, no primary
/// sample yet). The largest value rather than -1, so that a plain `lag <= max_lag` check rejects
/// the replica instead of admitting it.
inline constexpr std::int64_t kUnknownLag = std::numeric_limits<std::int64_t>::max();

struct ReplicaStatus {
  std::string shard;
  int replica = 0;  ///< index in the shard's `replicas` list of the config
  config::Endpoint endpoint;
  /// Answered the monitor's query in this round, within the poll interval.
  bool reachable = false;
  /// pg_is_in_recovery() as last answered: false means the server was promoted and must not
  /// serve reads as a replica (see `promoted`).
  bool in_recovery = false;
  /// Replay paused (pg_wal_replay_pause): its lag grows while the primary writes.
  bool replay_paused = false;
  /// pg_last_wal_replay_lsn(), the last value ever answered (kept while unreachable, for
  /// display; health is `reachable`). Session consistency compares it with a commit LSN.
  Lsn replay_lsn;
  /// Primary LSN minus replay LSN, and how long ago the primary stood at the replayed position
  /// (LagEstimator); kUnknownLag when not measurable in this round.
  std::int64_t lag_bytes = kUnknownLag;
  std::int64_t lag_ms = kUnknownLag;
  /// Why the replica is not usable ("" when it is): connection or query failure, timeout,
  /// promotion, missing primary sample.
  std::string error;
  /// When this replica's state was determined (its answer arrived, or its failure was seen).
  std::chrono::system_clock::time_point sampled_at;
  /// lag_ms is only a lower bound: the replica is behind everything the monitor remembers.
  bool lag_ms_lower_bound = false;
  /// Seen out of recovery at least once since the monitor started. Sticky: a promoted server
  /// has its own timeline, and one put back into recovery without being re-cloned from the
  /// primary may hold diverged data while reporting a replay LSN at or past the primary's. Such
  /// a server is never used as a replica again until the monitor is restarted (config reload).
  bool promoted = false;
  /// pg_last_xact_replay_timestamp(): commit time of the last replayed transaction (nullopt if
  /// none since the replica started). For display only: it ages on an idle primary, so it is
  /// never used for lag.
  std::optional<std::chrono::system_clock::time_point> last_xact_replay;

  /// Reachable, replaying, never promoted, lag measured. Lag limits are the reader's to apply.
  bool healthy() const {
    return reachable && in_recovery && !promoted && lag_bytes != kUnknownLag && lag_ms != kUnknownLag;
  }
};

/// A shard's latest primary sample and when its probe was sent: the server evaluated it after
/// `sent_at`, so every write acknowledged before that instant is at or below `insert_lsn`.
struct PrimarySample {
  std::string shard;
  Lsn insert_lsn;
  std::chrono::steady_clock::time_point sent_at;
};

struct ReplicaSnapshot {
  /// Every configured replica, in config order (shards, then replicas).
  std::vector<ReplicaStatus> replicas;
  /// Each shard's latest sampled primary pg_current_wal_lsn(); a shard whose primary has never
  /// answered is absent.
  std::vector<std::pair<std::string, Lsn>> primary_lsn;
  /// Each shard's latest primary sample with its send time (absent: never answered).
  std::vector<PrimarySample> primary_samples;
  /// 1 for the first round, +1 per round: readers can tell a fresh snapshot from a repeat.
  std::uint64_t generation = 0;

  /// nullptr when there is no such replica.
  const ReplicaStatus* find(const std::string& shard, int replica) const {
    for (const auto& r : replicas)
      if (r.replica == replica && r.shard == shard) return &r;
    return nullptr;
  }
  const PrimarySample* primary_sample(const std::string& shard) const {
    for (const auto& s : primary_samples)
      if (s.shard == shard) return &s;
    return nullptr;
  }
  std::optional<Lsn> primary(const std::string& shard) const {
    for (const auto& [name, lsn] : primary_lsn)
      if (name == shard) return lsn;
    return std::nullopt;
  }
};

}  // namespace shardline::control
