// Lag in time from the monitor's own primary samples: zero on an idle primary however long it
// idles, the conservative end of the sampling interval under load, growth while replay is
// paused, bounded history, a caught-up replica on a WAL page boundary, and figures from a
// replica's last answer that only grow while it is silent. Also the Lsn text form the samples
// arrive in.

#include "proxy/control/lag_estimator.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>

#include "proxy/control/lsn.hpp"
#include "proxy/control/replica_state.hpp"
#include "proxy/control/wal_geometry.hpp"

namespace {

using namespace std::chrono_literals;
using shardline::control::LagEstimator;
using shardline::control::LagEstimatorLimits;
using shardline::control::kUnknownLag;
using shardline::control::Lsn;
using shardline::control::ReplicaSnapshot;
using shardline::control::ReplicaStatus;
using shardline::control::WalGeometry;
using Clock = LagEstimator::Clock;

const Clock::time_point kT0 = Clock::time_point(std::chrono::hours(1000));

Clock::time_point at(std::chrono::milliseconds ms) { return kT0 + ms; }

TEST(Lsn, ParsesPostgresTextForm) {
  ASSERT_TRUE(Lsn::parse("16/B374D848"));
  EXPECT_EQ(Lsn::parse("16/B374D848")->value(), (0x16ull << 32) | 0xB374D848ull);
  EXPECT_EQ(Lsn::parse("0/0")->value(), 0u);
  EXPECT_EQ(Lsn::parse("ffffffff/FFFFFFFF")->value(), ~0ull);
  EXPECT_EQ(Lsn::parse("0/1")->value(), 1u);
  EXPECT_EQ(Lsn::parse("1/0")->value(), 1ull << 32);
  EXPECT_EQ(Lsn::parse("00000001/00000002")->value(), (1ull << 32) | 2u);
}

TEST(Lsn, RefusesAnythingPostgresRefuses) {
  for (const char* bad : {"", "/", "16", "16/", "/B374D848", "16/B374D848/1", "g/0", "0/x", " 0/0", "0/0 ",
                          "-1/0", "0x1/0", "123456789/0", "0/123456789", "0 /0", "+1/0"})
    EXPECT_FALSE(Lsn::parse(bad)) << bad;
}

TEST(Lsn, FormatsLikePostgres) {
  EXPECT_EQ(Lsn((0x16ull << 32) | 0xB374D848ull).str(), "16/B374D848");
  EXPECT_EQ(Lsn().str(), "0/0");
  EXPECT_EQ(Lsn(~0ull).str(), "FFFFFFFF/FFFFFFFF");
  EXPECT_EQ(Lsn::parse("a/b")->str(), "A/B");
  for (const char* text : {"0/16B3748", "1/0", "7FFFFFFF/80000000"}) EXPECT_EQ(Lsn::parse(text)->str(), text);
}

TEST(Lsn, OrdersByPosition) {
  EXPECT_LT(*Lsn::parse("0/FFFFFFFF"), *Lsn::parse("1/0"));
  EXPECT_EQ(*Lsn::parse("1/A"), *Lsn::parse("1/a"));
  EXPECT_GT(Lsn(5), Lsn(4));
  EXPECT_LE(Lsn(4), Lsn(4));
}

TEST(LagEstimator, UnknownBeforeTheFirstPrimarySample) {
  LagEstimator e;
  EXPECT_FALSE(e.estimate(Lsn(100), at(0ms)));
  EXPECT_FALSE(e.lag_bytes(Lsn(100)));
  EXPECT_FALSE(e.lag_ms(Lsn(100), at(0ms)));
  EXPECT_FALSE(e.latest_lsn());
}

TEST(LagEstimator, IdlePrimaryMeansZeroLagHoweverLongItIdles) {
  LagEstimator e;
  for (int i = 0; i <= 20 * 60 * 20; ++i) e.add_sample(at(i * 50ms), Lsn(1000));  // 20 minutes at 50 ms
  const auto now = at(20min + 10ms);
  const auto est = e.estimate(Lsn(1000), now);
  ASSERT_TRUE(est);
  EXPECT_EQ(est->bytes, 0);
  EXPECT_EQ(est->ms, 0);
  EXPECT_FALSE(est->lower_bound);
  EXPECT_LE(e.size(), 2u);  // a run of equal LSNs keeps its ends only
}

TEST(LagEstimator, ReplicaAheadOfTheLatestSampleHasNoLag) {
  LagEstimator e;
  e.add_sample(at(0ms), Lsn(1000));
  e.add_sample(at(50ms), Lsn(2000));
  EXPECT_EQ(e.lag_bytes(Lsn(2500)), 0);
  EXPECT_EQ(e.lag_ms(Lsn(2500), at(60ms)), 0);
}

TEST(LagEstimator, LagIsMeasuredFromTheLastSampleAtOrBelowTheReplayPosition) {
  LagEstimator e;
  e.add_sample(at(0ms), Lsn(100));
  e.add_sample(at(50ms), Lsn(200));
  e.add_sample(at(100ms), Lsn(300));
  e.add_sample(at(150ms), Lsn(400));
  // Replayed 250: the primary was at 200 (<= 250) at 50 ms and beyond it at 100 ms; it passed
  // 250 in between, so the lag at 160 ms is at most 110 ms, and we report that upper end.
  auto est = e.estimate(Lsn(250), at(160ms));
  ASSERT_TRUE(est);
  EXPECT_EQ(est->bytes, 150);
  EXPECT_EQ(est->ms, 110);
  EXPECT_FALSE(est->lower_bound);
  // Exactly at a sampled LSN: the primary still stood there at that sample.
  EXPECT_EQ(e.lag_ms(Lsn(300), at(160ms)), 60);
  EXPECT_EQ(e.lag_bytes(Lsn(300)), 100);
  EXPECT_EQ(e.lag_ms(Lsn(399), at(160ms)), 60);
}

TEST(LagEstimator, AtAnLsnThePrimaryHeldForAWhileCountsFromTheLastTimeItWasThere) {
  LagEstimator e;
  e.add_sample(at(0ms), Lsn(100));
  for (int i = 1; i <= 10; ++i) e.add_sample(at(i * 50ms), Lsn(500));  // held 500 from 50 to 500 ms
  e.add_sample(at(550ms), Lsn(900));
  EXPECT_EQ(e.lag_ms(Lsn(500), at(560ms)), 60);
  // Between 100 and 500: the primary passed it between 0 and 50 ms.
  EXPECT_EQ(e.lag_ms(Lsn(300), at(560ms)), 560);
}

TEST(LagEstimator, SteadyLagStaysSteady) {
  // The primary writes 1000 bytes per 50 ms sample; the replica replays 200 ms behind.
  LagEstimator e;
  for (int i = 0; i <= 100; ++i) {
    e.add_sample(at(i * 50ms), Lsn(10'000 + 1000ull * i));
    if (i < 10) continue;
    const auto now = at(i * 50ms + 5ms);
    const Lsn replay(10'000 + 1000ull * (i - 4));  // where the primary was 200 ms ago
    const auto est = e.estimate(replay, now);
    ASSERT_TRUE(est);
    EXPECT_EQ(est->bytes, 4000);
    EXPECT_EQ(est->ms, 205) << "round " << i;
  }
}

TEST(LagEstimator, NeverUnderestimatesTheTrueLag) {
  // Continuous writes: the primary's LSN is 10 * t_ms. Samples every 50 ms; the replica is
  // `behind` ms behind. The estimate lies in [true lag, true lag + one interval].
  LagEstimator e;
  for (int i = 0; i <= 40; ++i) e.add_sample(at(i * 50ms), Lsn(10ull * 50 * i));
  const auto now = at(2000ms);
  for (int behind = 1; behind <= 1500; behind += 7) {
    const Lsn replay(10ull * static_cast<unsigned>(2000 - behind));
    const auto ms = *e.lag_ms(replay, now);
    EXPECT_GE(ms, behind);
    EXPECT_LT(ms, behind + 50);
    EXPECT_EQ(*e.lag_bytes(replay), 10 * behind);
  }
}

TEST(LagEstimator, ReplayCatchingUpShrinksTheLagToZero) {
  LagEstimator e;
  for (int i = 0; i <= 20; ++i) e.add_sample(at(i * 50ms), Lsn(1000ull * i));
  // Primary idle from here on at 20000.
  for (int i = 21; i <= 40; ++i) e.add_sample(at(i * 50ms), Lsn(20'000));
  const auto now = at(2001ms);
  std::int64_t previous = *e.lag_ms(Lsn(0), now);
  for (std::uint64_t replay = 1000; replay <= 20'000; replay += 1000) {
    const auto ms = *e.lag_ms(Lsn(replay), now);
    EXPECT_LT(ms, previous) << replay;
    previous = ms;
  }
  EXPECT_EQ(previous, 0);
  EXPECT_EQ(e.lag_bytes(Lsn(20'000)), 0);
}

TEST(LagEstimator, PausedReplayLagGrowsWithTimeWhileThePrimaryWrites) {
  LagEstimator e;
  e.add_sample(at(0ms), Lsn(5000));
  e.add_sample(at(50ms), Lsn(5000));
  const Lsn paused(5000);
  std::int64_t previous = -1;
  for (int i = 2; i <= 40; ++i) {
    e.add_sample(at(i * 50ms), Lsn(5000 + 100ull * i));  // one write per round
    const auto est = e.estimate(paused, at(i * 50ms + 1ms));
    ASSERT_TRUE(est);
    EXPECT_EQ(est->ms, (i - 1) * 50 + 1);  // since 50 ms, the last time the primary was at 5000
    EXPECT_EQ(est->bytes, 100 * i);
    EXPECT_GT(est->ms, previous);
    previous = est->ms;
  }
  // A paused replica on an idle primary: the lag still grows, because the primary moved on.
  for (int i = 41; i <= 60; ++i) e.add_sample(at(i * 50ms), Lsn(5000 + 100ull * 40));
  EXPECT_EQ(e.lag_ms(paused, at(3000ms)), 2950);
}

TEST(LagEstimator, ReplayOlderThanTheHistoryGivesAFlaggedLowerBound) {
  LagEstimator e;
  e.add_sample(at(1000ms), Lsn(500));
  e.add_sample(at(1050ms), Lsn(600));
  const auto est = e.estimate(Lsn(400), at(1100ms));
  ASSERT_TRUE(est);
  EXPECT_TRUE(est->lower_bound);
  EXPECT_EQ(est->ms, 100);
  EXPECT_EQ(est->bytes, 200);
  EXPECT_FALSE(e.estimate(Lsn(500), at(1100ms))->lower_bound);
}

TEST(LagEstimator, HistoryIsEvictedByAge) {
  LagEstimator e(LagEstimatorLimits{.max_age = 1s, .max_samples = 1000});
  for (int i = 0; i <= 100; ++i) e.add_sample(at(i * 50ms), Lsn(100ull * i));  // 5 s of writes
  EXPECT_LE(e.size(), 21u);
  EXPECT_GE(e.size(), 20u);
  // 4 s ago the primary was at 1000: that history is gone, so the lag is a lower bound (1 s).
  const auto est = e.estimate(Lsn(1000), at(5000ms));
  ASSERT_TRUE(est);
  EXPECT_TRUE(est->lower_bound);
  EXPECT_EQ(est->ms, 1000);
  // Within the kept second, exact.
  EXPECT_FALSE(e.estimate(Lsn(9500), at(5000ms))->lower_bound);
  EXPECT_EQ(e.lag_ms(Lsn(9500), at(5000ms)), 250);
}

TEST(LagEstimator, HistoryIsEvictedByCount) {
  LagEstimator e(LagEstimatorLimits{.max_age = std::chrono::hours(1), .max_samples = 10});
  for (int i = 0; i < 50; ++i) e.add_sample(at(i * 10ms), Lsn(10ull * i));
  EXPECT_EQ(e.size(), 10u);
  EXPECT_TRUE(e.estimate(Lsn(395), at(500ms))->lower_bound);  // oldest kept: LSN 400 at 400 ms
  EXPECT_EQ(e.lag_ms(Lsn(395), at(500ms)), 100);
  EXPECT_EQ(e.lag_ms(Lsn(400), at(500ms)), 100);
  EXPECT_FALSE(e.estimate(Lsn(400), at(500ms))->lower_bound);
}

TEST(LagEstimator, TheLatestSampleSurvivesAnyAge) {
  LagEstimator e(LagEstimatorLimits{.max_age = 1s, .max_samples = 2});
  e.add_sample(at(0ms), Lsn(100));
  e.add_sample(at(10s), Lsn(200));
  EXPECT_EQ(e.size(), 1u);
  EXPECT_EQ(e.latest_lsn(), Lsn(200));
  EXPECT_EQ(e.lag_ms(Lsn(200), at(20s)), 0);
  EXPECT_EQ(e.lag_ms(Lsn(150), at(20s)), 10'000);
}

TEST(LagEstimator, APrimaryGoingBackwardsStartsANewHistory) {
  LagEstimator e;
  e.add_sample(at(0ms), Lsn(1000));
  e.add_sample(at(50ms), Lsn(2000));
  e.add_sample(at(100ms), Lsn(300));  // a different (restored or failed-over) primary
  EXPECT_EQ(e.size(), 1u);
  EXPECT_EQ(e.latest_lsn(), Lsn(300));
  EXPECT_EQ(e.lag_bytes(Lsn(1500)), 0);
  EXPECT_EQ(e.latest_time(), at(100ms));
}

TEST(LagEstimator, RefusesTimeGoingBackwardsAndSillyLimits) {
  LagEstimator e;
  e.add_sample(at(100ms), Lsn(1));
  EXPECT_THROW(e.add_sample(at(99ms), Lsn(2)), std::invalid_argument);
  e.add_sample(at(100ms), Lsn(2));  // same instant is fine
  EXPECT_THROW(LagEstimator(LagEstimatorLimits{.max_age = 1s, .max_samples = 1}), std::invalid_argument);
  EXPECT_THROW(LagEstimator(LagEstimatorLimits{.max_age = 0s, .max_samples = 10}), std::invalid_argument);
}

TEST(LagEstimator, NowBeforeTheSampleIsClampedToZero) {
  LagEstimator e;
  e.add_sample(at(0ms), Lsn(10));
  e.add_sample(at(100ms), Lsn(20));
  EXPECT_EQ(e.lag_ms(Lsn(15), at(0ms) - 5ms), 0);  // a caller clock read before the sample
  EXPECT_EQ(e.lag_ms(Lsn(15), at(5ms)), 5);
}

TEST(LagEstimator, PartialMillisecondsRoundUp) {
  LagEstimator e;
  e.add_sample(at(0ms), Lsn(10));
  e.add_sample(at(100ms), Lsn(20));
  EXPECT_EQ(e.lag_ms(Lsn(15), at(0ms) + std::chrono::microseconds(10'001)), 11);
}

// ---- page headers: an idle shard's insert position sits past the next page's header ----------

constexpr std::uint64_t kPage = 8192;
constexpr std::uint64_t kSegment = 16ull * 1024 * 1024;

TEST(WalGeometry, MovesAPageBoundaryPastItsHeaderAndLeavesEverythingElse) {
  const WalGeometry g;  // PostgreSQL's defaults: 8 kB pages, 16 MB segments
  ASSERT_TRUE(g.valid());
  EXPECT_EQ(g.past_page_header(Lsn(3 * kPage)), Lsn(3 * kPage + 24));          // SizeOfXLogShortPHD
  EXPECT_EQ(g.past_page_header(Lsn(5 * kSegment)), Lsn(5 * kSegment + 40));    // SizeOfXLogLongPHD
  EXPECT_EQ(g.past_page_header(Lsn(5 * kSegment + kPage)), Lsn(5 * kSegment + kPage + 24));
  for (const std::uint64_t mid : {3 * kPage + 1, 3 * kPage + 24, 3 * kPage + 40, 4 * kPage - 8, 5 * kSegment + 40})
    EXPECT_EQ(g.past_page_header(Lsn(mid)), Lsn(mid)) << mid;
  // Sizes are the server's: a 16 kB-page build with 1 GB segments has its boundaries elsewhere.
  const WalGeometry big{.page_size = 16384, .segment_size = 1ull << 30};
  ASSERT_TRUE(big.valid());
  EXPECT_EQ(big.past_page_header(Lsn(3 * kPage)), Lsn(3 * kPage));  // mid-page there
  EXPECT_EQ(big.past_page_header(Lsn(2 * 16384)), Lsn(2 * 16384 + 24));
  EXPECT_EQ(big.past_page_header(Lsn(1ull << 30)), Lsn((1ull << 30) + 40));
}

TEST(WalGeometry, RefusesSizesNoServerHas) {
  EXPECT_FALSE((WalGeometry{.page_size = 0, .segment_size = kSegment}).valid());
  EXPECT_FALSE((WalGeometry{.page_size = 8000, .segment_size = kSegment}).valid());
  EXPECT_FALSE((WalGeometry{.page_size = kPage, .segment_size = kPage / 2}).valid());
  EXPECT_FALSE((WalGeometry{.page_size = 32, .segment_size = kSegment}).valid());
}

TEST(LagEstimator, ACaughtUpReplicaOnAPageBoundaryIsCaughtUpForever) {
  const WalGeometry g;
  for (const std::uint64_t boundary : {7 * kPage, 3 * kSegment}) {
    SCOPED_TRACE(boundary);
    const std::uint64_t header = boundary % kSegment == 0 ? 40 : 24;
    LagEstimator e;
    e.add_sample(at(0ms), Lsn(boundary - 200));
    // The last record ends exactly at the boundary; the idle primary's insert position reports
    // the byte after the next page's header, and stays there for 20 minutes.
    for (int i = 1; i <= 20 * 60 * 20; ++i) e.add_sample(at(i * 50ms), Lsn(boundary + header));
    const Lsn replay_end(boundary);  // pg_last_wal_replay_lsn() of the caught-up replica
    const auto now = at(20min + 10ms);
    // Compared raw, the replica would look a header behind and ever further behind in time.
    EXPECT_EQ(e.estimate(replay_end, now)->bytes, static_cast<std::int64_t>(header));
    EXPECT_GT(e.estimate(replay_end, now)->ms, 1000);
    const auto est = e.estimate(g.past_page_header(replay_end), now);
    ASSERT_TRUE(est);
    EXPECT_EQ(est->bytes, 0);
    EXPECT_EQ(est->ms, 0);
  }
}

TEST(LagEstimator, AReplicaAHeaderBehindInsideAPageStillLags) {
  // The header rule is exact: 24 bytes short of the insert position in the middle of a page is
  // a real, unreplayed record.
  const WalGeometry g;
  LagEstimator e;
  const std::uint64_t replay = 7 * kPage + 1000;
  e.add_sample(at(0ms), Lsn(replay));
  e.add_sample(at(50ms), Lsn(replay + 24));
  const auto est = e.estimate(g.past_page_header(Lsn(replay)), at(100ms));
  ASSERT_TRUE(est);
  EXPECT_EQ(est->bytes, 24);
  EXPECT_EQ(est->ms, 100);
}

// ---- a replica that does not answer: its last figures, aged, never below the truth ----------

TEST(LagEstimator, LagFromAnOldAnswerOnlyGrowsAndNeverUndercutsTheTruth) {
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (int run = 0; run < 50; ++run) {
    LagEstimator e;
    std::uint64_t primary = 100'000;
    std::uint64_t replica = primary;  // the true replay position
    std::optional<std::uint64_t> answered;  // what the replica said the last time it answered
    std::int64_t last_ms = -1, last_bytes = -1;
    bool silent = false;
    for (int i = 0; i < 400; ++i) {
      const auto now = at(i * 50ms);
      if (rng() % 3 != 0) primary += rng() % 5000;  // writes, or an idle round
      e.add_sample(now, Lsn(primary));
      replica = std::min(primary, replica + rng() % 6000);  // replay moves on, answered or not
      if (!silent && rng() % 20 == 0) silent = true;        // the replica stops answering...
      else if (silent && rng() % 10 == 0) silent = false;   // ...for a while
      if (!silent) answered = replica;
      if (!answered) continue;
      const auto published = *e.estimate(Lsn(*answered), now);
      const auto truth = *e.estimate(Lsn(replica), now);
      EXPECT_GE(published.ms, truth.ms) << "round " << i;
      EXPECT_GE(published.bytes, truth.bytes) << "round " << i;
      if (silent) {
        EXPECT_GE(published.ms, last_ms) << "round " << i;
        EXPECT_GE(published.bytes, last_bytes) << "round " << i;
      }
      last_ms = published.ms;
      last_bytes = published.bytes;
    }
  }
}

TEST(LagEstimator, AtTheLatestSampleOfASilentPrimaryTheLagIsThatSamplesAge) {
  LagEstimator e;
  e.add_sample(at(0ms), Lsn(500));
  e.add_sample(at(50ms), Lsn(500));
  // The primary answered this round: being at its position is zero lag.
  EXPECT_EQ(e.estimate(Lsn(500), at(60ms), true)->ms, 0);
  // It did not: nobody knows where it is now, and the lag keeps growing with the sample's age.
  EXPECT_EQ(e.estimate(Lsn(500), at(60ms), false)->ms, 10);
  EXPECT_EQ(e.estimate(Lsn(500), at(1050ms), false)->ms, 1000);
  EXPECT_EQ(e.estimate(Lsn(500), at(1050ms), false)->bytes, 0);
  // Behind the latest sample the lag already counts from an older one, so it is not lowered.
  e.add_sample(at(100ms), Lsn(900));
  EXPECT_EQ(e.estimate(Lsn(500), at(300ms), false)->ms, 250);
  EXPECT_EQ(e.estimate(Lsn(500), at(300ms), true)->ms, 250);
}

TEST(ReplicaSnapshot, FindsReplicasAndPrimariesByName) {
  ReplicaSnapshot snap;
  for (const char* shard : {"s0", "s1"})
    for (int r = 0; r < 2; ++r) {
      ReplicaStatus st;
      st.shard = shard;
      st.replica = r;
      st.lag_bytes = r;
      snap.replicas.push_back(st);
    }
  const auto sent = Clock::time_point(std::chrono::seconds(42));
  snap.primaries = {{"s0", Lsn(7), sent}, {"s1", Lsn(9), sent + 1ms}};
  ASSERT_NE(snap.find("s1", 1), nullptr);
  EXPECT_EQ(snap.find("s1", 1)->shard, "s1");
  EXPECT_EQ(snap.find("s1", 1)->lag_bytes, 1);
  EXPECT_EQ(snap.find("s2", 0), nullptr);
  EXPECT_EQ(snap.find("s0", 2), nullptr);
  EXPECT_EQ(snap.primary("s1"), Lsn(9));
  EXPECT_FALSE(snap.primary("s2"));
  ASSERT_NE(snap.primary_sample("s1"), nullptr);
  EXPECT_EQ(snap.primary_sample("s1")->insert_lsn, Lsn(9));
  EXPECT_EQ(snap.primary_sample("s1")->sent_at, sent + 1ms);
  EXPECT_EQ(snap.primary_sample("s2"), nullptr);
}

TEST(ReplicaStatus, HealthyOnlyWhenReachableReplayingNeverPromotedAndMeasured) {
  ReplicaStatus st;
  EXPECT_FALSE(st.healthy());  // a default status is unknown, not healthy
  EXPECT_EQ(st.lag_bytes, kUnknownLag);
  st.reachable = true;
  st.in_recovery = true;
  st.lag_bytes = 0;
  st.lag_ms = 0;
  EXPECT_TRUE(st.healthy());
  auto copy = st;
  copy.promoted = true;
  EXPECT_FALSE(copy.healthy());
  copy = st;
  copy.in_recovery = false;
  EXPECT_FALSE(copy.healthy());
  copy = st;
  copy.reachable = false;
  EXPECT_FALSE(copy.healthy());
  copy = st;
  copy.lag_ms = kUnknownLag;
  EXPECT_FALSE(copy.healthy());
}

}  // namespace
