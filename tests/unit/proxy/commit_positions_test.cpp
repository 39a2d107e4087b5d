#include "proxy/session/commit_positions.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "proxy/control/lsn.hpp"

namespace shardline::proxy::session {
namespace {

using control::Lsn;
using Clock = WriteMarks::Clock;

control::PrimarySample sample(std::uint64_t lsn, Clock::time_point sent) { return {"s0", Lsn(lsn), sent}; }

TEST(WriteMarks, ATenantsReadWaitsOnlyForItsOwnAndShardWideWrites) {
  WriteMarks m(16);
  const std::vector<int> t3{3}, t5{5}, both{3, 5};
  m.commit_at(t3, 1000);
  EXPECT_EQ(m.required(t3, nullptr), 1000u);
  EXPECT_EQ(m.required(t5, nullptr), 0u);
  EXPECT_EQ(m.required(both, nullptr), 1000u);
  EXPECT_EQ(m.required({}, nullptr), 1000u);  // a tenant-less read sees everything
  m.commit_at({}, 700);                       // shard-wide (an unsharded table, DDL)
  EXPECT_EQ(m.required(t5, nullptr), 700u);
  EXPECT_EQ(m.required(t3, nullptr), 1000u);
  m.commit_at(t5, 500);  // positions only rise
  EXPECT_EQ(m.required(t5, nullptr), 700u);
  EXPECT_EQ(m.highest(), 1000u);
  // A pinned tenant's routing id (past the 16 logical shards) shares logical shard 3's slot:
  // its reads wait for its own writes and 3's, others' reads not for it.
  const std::vector<int> pinned{16 + 3};
  m.commit_at(pinned, 2000);
  EXPECT_EQ(m.required(pinned, nullptr), 2000u);
  EXPECT_EQ(m.required(t3, nullptr), 2000u);
  EXPECT_EQ(m.required(t5, nullptr), 700u);
  // A negative id counts as shard-wide, never as nothing.
  const std::vector<int> bad{-1};
  m.commit_at(bad, 3000);
  EXPECT_EQ(m.required(t5, nullptr), 3000u);
}

TEST(WriteMarks, WithoutLogicalSlotsEverythingIsShardWide) {
  WriteMarks m;
  const std::vector<int> t3{3}, t5{5};
  m.commit_at(t3, 900);
  EXPECT_EQ(m.required(t5, nullptr), 900u);
}

TEST(WriteMarks, AnUnknownPositionWaitsForASampleSentAfterIt) {
  WriteMarks m(4);
  const std::vector<int> t1{1};
  const auto t0 = Clock::now();
  m.commit_unknown(t0);
  EXPECT_EQ(m.required(t1, nullptr), std::nullopt) << "no sample at all";
  const auto before = sample(5000, t0 - std::chrono::milliseconds(1));
  EXPECT_EQ(m.required(t1, &before), std::nullopt) << "a sample sent before the write cannot cover it";
  const auto same = sample(5000, t0);
  EXPECT_EQ(m.required(t1, &same), std::nullopt) << "sent at the same instant: not provably after";
  const auto after = sample(8192 + 24, t0 + std::chrono::milliseconds(1));
  EXPECT_EQ(m.required(t1, &after), 8192u + 24) << "covered, at the sample's position";
  // Folded: later reads need no sample, and the mark stays.
  EXPECT_EQ(m.required(t1, nullptr), 8192u + 24);
  // A second unknown write after the sample needs a newer one.
  m.commit_unknown(t0 + std::chrono::milliseconds(2));
  EXPECT_EQ(m.required(t1, &after), std::nullopt);
  const auto newer = sample(9000, t0 + std::chrono::milliseconds(3));
  EXPECT_EQ(m.required(t1, &newer), 9000u);
}

TEST(WriteScope, CollectsDistinctLogicalShardsUntilOneIsShardWide) {
  WriteScope s;
  const std::vector<int> a{4, 2}, b{2, 7};
  s.add(a);
  s.add(b);
  EXPECT_EQ(s.logical(), (std::vector<int>{4, 2, 7}));
  EXPECT_EQ(s.take(), (std::vector<int>{4, 2, 7}));
  EXPECT_TRUE(s.logical().empty());
  s.add(a);
  s.add({});
  s.add(b);
  EXPECT_TRUE(s.logical().empty()) << "one shard-wide statement makes the scope shard-wide";
  EXPECT_TRUE(s.take().empty());
}

TEST(CommitPositions, OneMarkPerShard) {
  CommitPositions c(2, 8);
  const std::vector<int> t1{1};
  c.shard(1).commit_at(t1, 42);
  EXPECT_EQ(c.shard(0).required(t1, nullptr), 0u);
  EXPECT_EQ(c.shard(1).required(t1, nullptr), 42u);
  EXPECT_EQ(c.shards(), 2);
}

}  // namespace
}  // namespace shardline::proxy::session
