// The admin console's RESHARD command syntax (SPEC.md section 8).

#include <gtest/gtest.h>

#include "proxy/admin/admin_reshard.hpp"

namespace {

using shardline::control::ReshardRequest;
using shardline::proxy::admin::parse_reshard;

TEST(AdminReshard, ParsesMoveIsolateAbort) {
  std::string error;
  auto m = parse_reshard("reshard move 17 to s1;", error);
  ASSERT_TRUE(m) << error;
  EXPECT_EQ(m->kind, ReshardRequest::Kind::Move);
  EXPECT_EQ(m->logical, 17);
  EXPECT_EQ(m->target, "s1");
  auto i = parse_reshard("RESHARD ISOLATE TENANT 'o''brien' TO Shard_B", error);
  ASSERT_TRUE(i) << error;
  EXPECT_EQ(i->kind, ReshardRequest::Kind::Isolate);
  EXPECT_EQ(i->tenant, "o'brien");
  EXPECT_EQ(i->target, "Shard_B");  // shard names keep their case
  auto a = parse_reshard("  RESHARD   ABORT ", error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->kind, ReshardRequest::Kind::Abort);
}

TEST(AdminReshard, RefusesWithUsage) {
  std::string error;
  EXPECT_FALSE(parse_reshard("RESHARD MOVE -1 TO s1", error));
  EXPECT_NE(error.find("not a logical shard number"), std::string::npos) << error;
  EXPECT_FALSE(parse_reshard("RESHARD MOVE 1 s1", error));
  EXPECT_NE(error.find("usage: RESHARD MOVE"), std::string::npos) << error;
  EXPECT_FALSE(parse_reshard("RESHARD ISOLATE TENANT 42 TO s1", error));
  EXPECT_NE(error.find("quoted literal"), std::string::npos) << error;
  EXPECT_FALSE(parse_reshard("RESHARD ISOLATE TENANT '42 TO s1", error));
  EXPECT_NE(error.find("unterminated"), std::string::npos) << error;
}

}  // namespace
