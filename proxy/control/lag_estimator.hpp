#pragma once
// Replication lag in time, measured against the monitor's own samples of the primary's WAL
// position rather than against pg_last_xact_replay_timestamp(): `now() - last replayed commit`
// grows without bound on an idle primary whose replicas are fully caught up, which would take
// healthy replicas out of rotation exactly when the cluster is quiet. Pure: no clock, no I/O, so
// every case is unit-tested with made-up times.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

#include "proxy/control/lsn.hpp"

namespace shardline::control {

/// How much primary history one shard keeps. A replica further behind than the history reaches
/// gets a lag that is only a lower bound (LagEstimate::lower_bound), which is still far beyond
/// any sensible max_lag_ms.
struct LagEstimatorLimits {
  std::chrono::steady_clock::duration max_age = std::chrono::minutes(10);
  std::size_t max_samples = 20000;  ///< at least 2
};

struct LagEstimate {
  /// Latest primary LSN minus the replay LSN, 0 when the replica is at or past it.
  std::int64_t bytes = 0;
  /// How long ago the primary stood at the replayed position, rounded up to whole ms; 0 when the
  /// replica has replayed the latest primary sample.
  std::int64_t ms = 0;
  /// The replay LSN is older than every kept sample: `ms` is the age of the oldest sample, a
  /// lower bound of the true lag.
  bool lower_bound = false;
};

/// A bounded history of (steady time, primary LSN) samples of one shard.
///
/// Lag in time is "now minus the moment the primary moved past the LSN the replica has
/// replayed". Samples only bracket that moment: it lies after the last sample whose LSN is <=
/// the replay LSN (the primary still stood at or below it then) and no later than the first
/// sample whose LSN is > the replay LSN. We report `now - time of the last sample <= replay`,
/// the upper end of the interval: a replica may be over-estimated by at most one poll interval
/// (it then loses reads to the primary, which is safe), never under-estimated (which would serve
/// reads staler than max_lag_ms). Sample times should be taken when the primary's query was
/// sent, so that they never lie after the moment the primary stood at the sampled LSN.
class LagEstimator {
 public:
  using Clock = std::chrono::steady_clock;

  /// Throws std::invalid_argument when max_samples < 2 or max_age is not positive.
  explicit LagEstimator(LagEstimatorLimits limits = {});

  /// Records that the primary stood at `primary_lsn` at `at`. Times must not go backwards
  /// (std::invalid_argument). An LSN lower than the latest one means the primary was replaced
  /// or restored: the history no longer describes it and is dropped. Runs of equal LSNs keep
  /// only their first and last sample, so an idle primary costs two entries however long it
  /// idles. Samples older than max_age (relative to `at`) or beyond max_samples are evicted,
  /// oldest first; the latest sample is always kept.
  void add_sample(Clock::time_point at, Lsn primary_lsn);

  /// The lag of a replica that has replayed up to `replay` as of `now`; nullopt before the first
  /// primary sample (the lag is then unknown, not zero). `replay` is compared with insert
  /// positions, so a replay position on a page boundary should first be moved past the page
  /// header (WalGeometry::past_page_header).
  ///
  /// Figures from a replica's last answer, however old, never understate its lag now: it has
  /// replayed at least that much since, and both figures only grow as `replay` falls behind or
  /// `now` advances. `primary_current` false says the primary did not answer lately: being at
  /// its latest sample then proves nothing about where it is now, so `ms` is at least the age of
  /// that sample (it keeps growing while the primary is silent rather than looking current).
  std::optional<LagEstimate> estimate(Lsn replay, Clock::time_point now, bool primary_current = true) const;
  /// estimate(...)->bytes / ->ms.
  std::optional<std::int64_t> lag_bytes(Lsn replay) const;
  std::optional<std::int64_t> lag_ms(Lsn replay, Clock::time_point now) const;

  std::optional<Lsn> latest_lsn() const;
  std::optional<Clock::time_point> latest_time() const;
  std::size_t size() const { return samples_.size(); }
  bool empty() const { return samples_.empty(); }
  void clear() { samples_.clear(); }

 private:
  struct Sample {
    Clock::time_point at;
    Lsn lsn;
  };

  LagEstimatorLimits limits_;
  std::deque<Sample> samples_;  ///< times and LSNs both non-decreasing
};

}  // namespace shardline::control
