#include "proxy/control/lag_estimator.hpp"

#include <algorithm>
#include <stdexcept>

namespace shardline::control {
namespace {

std::int64_t ceil_ms(LagEstimator::Clock::duration d) {
  return std::max<std::int64_t>(0, std::chrono::ceil<std::chrono::milliseconds>(d).count());
}

}  // namespace

LagEstimator::LagEstimator(LagEstimatorLimits limits) : limits_(limits) {
  if (limits_.max_samples < 2) throw std::invalid_argument("LagEstimator: max_samples must be at least 2");
  if (limits_.max_age <= Clock::duration::zero())
    throw std::invalid_argument("LagEstimator: max_age must be positive");
}

void LagEstimator::add_sample(Clock::time_point at, Lsn primary_lsn) {
  if (!samples_.empty()) {
    if (at < samples_.back().at) throw std::invalid_argument("LagEstimator: sample times must not go backwards");
    if (primary_lsn < samples_.back().lsn) samples_.clear();
  }
  const std::size_t n = samples_.size();
  if (n >= 2 && samples_[n - 1].lsn == primary_lsn && samples_[n - 2].lsn == primary_lsn) {
    // The middle of a run carries no information: the first sample of the run bounds when the
    // primary reached the LSN, the last one when it was still there.
    samples_.back().at = at;
  } else {
    samples_.push_back({at, primary_lsn});
  }
  while (samples_.size() > limits_.max_samples) samples_.pop_front();
  while (samples_.size() > 1 && at - samples_.front().at > limits_.max_age) samples_.pop_front();
}

std::optional<LagEstimate> LagEstimator::estimate(Lsn replay, Clock::time_point now, bool primary_current) const {
  if (samples_.empty()) return std::nullopt;
  const Sample& latest = samples_.back();
  if (replay >= latest.lsn) {
    LagEstimate e;
    if (!primary_current) e.ms = ceil_ms(now - latest.at);
    return e;
  }

  LagEstimate e;
  e.bytes = static_cast<std::int64_t>(latest.lsn.value() - replay.value());
  // First sample beyond the replay position; the one before it is the last at or below it.
  const auto beyond = std::upper_bound(samples_.begin(), samples_.end(), replay,
                                       [](Lsn r, const Sample& s) { return r < s.lsn; });
  Clock::time_point since;
  if (beyond == samples_.begin()) {
    since = samples_.front().at;
    e.lower_bound = true;
  } else {
    since = std::prev(beyond)->at;
  }
  // `since` is no later than the latest sample, so this is also at least that sample's age.
  e.ms = ceil_ms(now - since);
  return e;
}

std::optional<std::int64_t> LagEstimator::lag_bytes(Lsn replay) const {
  // The byte lag does not depend on the time of asking.
  const auto e = estimate(replay, Clock::time_point{});
  if (!e) return std::nullopt;
  return e->bytes;
}

std::optional<std::int64_t> LagEstimator::lag_ms(Lsn replay, Clock::time_point now) const {
  const auto e = estimate(replay, now);
  if (!e) return std::nullopt;
  return e->ms;
}

std::optional<Lsn> LagEstimator::latest_lsn() const {
  if (samples_.empty()) return std::nullopt;
  return samples_.back().lsn;
}

std::optional<LagEstimator::Clock::time_point> LagEstimator::latest_time() const {
  if (samples_.empty()) return std::nullopt;
  return samples_.back().at;
}

}  // namespace shardline::control
