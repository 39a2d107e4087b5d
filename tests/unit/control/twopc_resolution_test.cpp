// The resolver's decisions: a logged decision is applied on every shard holding the gid; an
// undecided gid is aborted only when its owner is dead or it is stale; log rows no shard holds
// are trimmed; gids that are not shardline's are ignored.

#include "proxy/control/twopc_resolution.hpp"

#include <gtest/gtest.h>

namespace {

using shardline::control::Decision;
using shardline::control::gid_owner;
using shardline::control::kStaleSeconds;
using shardline::control::plan_resolution;
using shardline::control::PreparedXact;
using shardline::control::ResolverInput;

TEST(TwopcResolution, GidOwner) {
  EXPECT_EQ(gid_owner("shardline:vm:6432:77:1700000000:12"), "vm:6432:77:1700000000");
  EXPECT_EQ(gid_owner("shardline:a:1"), "a");
  EXPECT_FALSE(gid_owner("other:a:1"));
  EXPECT_FALSE(gid_owner("shardline:a:"));
  EXPECT_FALSE(gid_owner("shardline::1"));
  EXPECT_FALSE(gid_owner("shardline:a:1x"));
  EXPECT_FALSE(gid_owner("shardline:7"));
}

TEST(TwopcResolution, LoggedDecisionsApplyOnEveryShardHoldingTheGid) {
  ResolverInput in;
  in.decisions["shardline:a:1"] = Decision::Commit;
  in.decisions["shardline:a:2"] = Decision::Abort;
  in.live_owners = {"a"};
  in.prepared = {{"shardline:a:1", 0, 1}, {"shardline:a:1", 1, 1}, {"shardline:a:2", 1, 1}};
  const auto plan = plan_resolution(in);
  ASSERT_EQ(plan.actions.size(), 3u);
  EXPECT_EQ(plan.actions[0].decision, Decision::Commit);
  EXPECT_EQ(plan.actions[1].shard, 1);
  EXPECT_EQ(plan.actions[2].decision, Decision::Abort);
  EXPECT_TRUE(plan.to_abort.empty());
  EXPECT_TRUE(plan.trim.empty());  // still held
  EXPECT_EQ(plan.in_doubt.size(), 3u);
}

TEST(TwopcResolution, UndecidedIsAbortedOnlyForDeadOrStaleOwners) {
  ResolverInput in;
  in.live_owners = {"live"};
  in.prepared = {{"shardline:live:1", 0, 2},
                 {"shardline:live:2", 0, kStaleSeconds + 1},
                 {"shardline:dead:1", 0, 0},
                 {"shardline:dead:1", 1, 0},
                 {"not-ours", 0, 999}};
  const auto plan = plan_resolution(in);
  EXPECT_TRUE(plan.actions.empty());
  ASSERT_EQ(plan.to_abort.size(), 2u);  // each gid once, however many shards hold it
  EXPECT_EQ(plan.to_abort[0], "shardline:live:2");
  EXPECT_EQ(plan.to_abort[1], "shardline:dead:1");
  EXPECT_EQ(plan.in_doubt.size(), 4u);  // not-ours is not listed
  EXPECT_FALSE(plan.in_doubt[0].decision);
}

TEST(TwopcResolution, RowsNoShardHoldsAreTrimmed) {
  ResolverInput in;
  in.decisions["shardline:a:1"] = Decision::Commit;
  in.decisions["shardline:a:2"] = Decision::Abort;
  in.prepared = {{"shardline:a:2", 0, 1}};
  const auto plan = plan_resolution(in);
  ASSERT_EQ(plan.trim.size(), 1u);
  EXPECT_EQ(plan.trim[0], "shardline:a:1");
}

}  // namespace
