#pragma once
// What the lag monitor publishes each round: an immutable snapshot of every replica's health and
// lag, swapped in whole (shared_ptr<const ReplicaSnapshot>) so the data plane reads it without
// locks and never sees a half-updated round.

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
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
  /// Usable as far as its connection goes: it answered the monitor's last probe, or the
  /// probe outstanding now is younger than replicas.health_timeout_ms, and no probe failed since
  /// its last answer. One slow poll does not take a replica out; a broken connection or a
  /// failed probe does, at once.
  bool reachable = false;
  /// Rounds since the last answer arrived (0: answered in this round). While it is above 0 the
  /// state and lag figures come from the last answer, aged: the lag can only have grown.
  int unanswered_rounds = 0;
  /// pg_is_in_recovery() as last answered: false means the server was promoted and must not
  /// serve reads as a replica (see `promoted`).
  bool in_recovery = false;
  /// Replay paused (pg_wal_replay_pause): its lag grows while the primary writes.
  bool replay_paused = false;
  /// pg_last_wal_replay_lsn(), the last value ever answered (kept while unreachable, for
  /// display; health is `reachable`).
  Lsn replay_lsn;
  /// replay_lsn as a position comparable with insert positions and commit LSNs: moved past the
  /// page header when replay_lsn sits on a WAL page boundary (WalGeometry::past_page_header).
  /// Everything at or below it has been replayed; a caught-up replica of an idle shard has it
  /// equal to the primary's insert position, where replay_lsn may stay 24 or 40 bytes short.
  Lsn replayed_lsn;
  /// Primary insert LSN minus replayed_lsn, and how long ago the primary stood at the replayed
  /// position (LagEstimator); kUnknownLag when not measurable. Never smaller than the truth: while
  /// the replica is unanswered they are computed from its last answer as of now, so they only grow.
  std::int64_t lag_bytes = kUnknownLag;
  std::int64_t lag_ms = kUnknownLag;
  /// Why the replica is not usable ("" when it is): connection or query failure, timeout,
  /// promotion, missing primary sample.
  std::string error;
  /// When this replica's state was determined (its last answer arrived, or its failure was seen).
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

/// The latest sample of one shard's primary insert position, with the moment its probe was
/// sent. The server evaluated pg_current_wal_insert_lsn() after that moment, so every commit
/// acknowledged before `sent_at` (by this process or any other) lies at or below `insert_lsn`.
struct PrimarySample {
  std::string shard;
  Lsn insert_lsn;
  std::chrono::steady_clock::time_point sent_at;
};

struct ReplicaSnapshot {
  /// Every configured replica, in config order (shards, then replicas).
  std::vector<ReplicaStatus> replicas;
  /// Each shard's latest primary sample, in config order; a shard whose primary has never
  /// answered is absent. Kept while the primary does not answer (sent_at tells its age).
  std::vector<PrimarySample> primaries;
  /// 1 for the first round, +1 per round: readers can tell a fresh snapshot from a repeat.
  std::uint64_t generation = 0;

  /// nullptr when there is no such replica.
  const ReplicaStatus* find(const std::string& shard, int replica) const {
    for (const auto& r : replicas)
      if (r.replica == replica && r.shard == shard) return &r;
    return nullptr;
  }
  /// nullptr when the shard's primary has never answered.
  const PrimarySample* primary_sample(const std::string& shard) const {
    for (const auto& p : primaries)
      if (p.shard == shard) return &p;
    return nullptr;
  }
  /// primary_sample(shard)->insert_lsn.
  std::optional<Lsn> primary(const std::string& shard) const {
    if (const PrimarySample* p = primary_sample(shard)) return p->insert_lsn;
    return std::nullopt;
  }
};

}  // namespace shardline::control
