// Validation of directory rows read from the catalog: only a directory that covers every
// logical shard exactly once with configured shards becomes a snapshot, and the error names the
// first bad logical shard.

#include "proxy/control/directory_rows.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "proxy/control/catalog_error.hpp"
#include "router/directory/directory_snapshot.hpp"

namespace {

using shardline::control::CatalogError;
using shardline::control::directory_from_rows;
using shardline::control::DirectoryRow;
using shardline::router::DirectorySnapshot;

shardline::config::Config three_shards(int logical_shards = 1024) {
  shardline::config::Config cfg;
  cfg.sharding.logical_shards = logical_shards;
  for (const char* name : {"s0", "s1", "s2"}) {
    shardline::config::Shard s;
    s.name = name;
    cfg.shards.push_back(s);
  }
  const int third = logical_shards / 3;
  cfg.directory = {{0, third - 1, "s2"}, {third, 2 * third - 1, "s0"}, {2 * third, logical_shards - 1, "s1"}};
  return cfg;
}

std::vector<DirectoryRow> rows_of(const shardline::config::Config& cfg) {
  std::vector<DirectoryRow> rows;
  for (const auto& r : cfg.directory)
    for (int l = r.first; l <= r.last; ++l) rows.push_back({l, r.shard});
  return rows;
}

std::string error_of(std::vector<DirectoryRow> rows, const shardline::config::Config& cfg) {
  try {
    directory_from_rows(7, std::move(rows), cfg);
  } catch (const CatalogError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(DirectoryRows, MatchesTheBootstrapDirectoryAndKeepsTheEpoch) {
  const auto cfg = three_shards();
  const auto from_rows = directory_from_rows(42, rows_of(cfg), cfg);
  const auto bootstrap = DirectorySnapshot::from_config(cfg);
  EXPECT_EQ(from_rows->epoch(), 42u);
  EXPECT_EQ(from_rows->shard_names(), (std::vector<std::string>{"s0", "s1", "s2"}));
  ASSERT_EQ(from_rows->logical_shards(), 1024);
  for (int l = 0; l < 1024; ++l) ASSERT_EQ(from_rows->physical(l), bootstrap->physical(l)) << l;
  EXPECT_EQ(from_rows->shard_name(from_rows->physical(0)), "s2");
  EXPECT_EQ(from_rows->shard_name(from_rows->physical(1023)), "s1");
  EXPECT_EQ(from_rows->ranges(), bootstrap->ranges());
}

TEST(DirectoryRows, RowOrderDoesNotMatter) {
  const auto cfg = three_shards(64);
  auto rows = rows_of(cfg);
  std::mt19937 rng(1);
  std::shuffle(rows.begin(), rows.end(), rng);
  rows[0].shard = rows[0].logical % 2 == 0 ? "s0" : "s1";
  const int moved = rows[0].logical;
  const auto snap = directory_from_rows(3, rows, cfg);
  EXPECT_EQ(snap->shard_name(snap->physical(moved)), rows[0].shard);
  EXPECT_EQ(snap->logical_shards(), 64);
}

TEST(DirectoryRows, AGapNamesTheFirstMissingLogicalShard) {
  const auto cfg = three_shards();
  auto rows = rows_of(cfg);
  rows.erase(rows.begin() + 500, rows.begin() + 510);
  EXPECT_NE(error_of(rows, cfg).find("logical shard 500 has no owner"), std::string::npos) << error_of(rows, cfg);
  EXPECT_NE(error_of(rows, cfg).find("epoch 7"), std::string::npos);
}

TEST(DirectoryRows, MissingFirstOrLastOrEverything) {
  const auto cfg = three_shards();
  auto rows = rows_of(cfg);
  EXPECT_NE(error_of({rows.begin() + 1, rows.end()}, cfg).find("logical shard 0 has no owner"), std::string::npos);
  EXPECT_NE(error_of({rows.begin(), rows.end() - 1}, cfg).find("logical shard 1023 has no owner"), std::string::npos);
  EXPECT_NE(error_of({}, cfg).find("logical shard 0 has no owner"), std::string::npos);
}

TEST(DirectoryRows, OutOfRangeAndNegativeAndDuplicate) {
  const auto cfg = three_shards();
  auto rows = rows_of(cfg);
  rows.push_back({1024, "s0"});
  EXPECT_NE(error_of(rows, cfg).find("logical shard 1024 is out of range"), std::string::npos) << error_of(rows, cfg);
  rows.back() = {-1, "s0"};
  EXPECT_NE(error_of(rows, cfg).find("logical shard -1 is negative"), std::string::npos);
  rows.back() = {17, "s1"};
  EXPECT_NE(error_of(rows, cfg).find("logical shard 17 appears more than once"), std::string::npos);
}

TEST(DirectoryRows, ACatalogWithMoreLogicalShardsThanTheConfigIsRefused) {
  const auto cfg1024 = three_shards(1024);
  const auto cfg512 = three_shards(512);
  EXPECT_NE(error_of(rows_of(cfg1024), cfg512).find("logical shard 512 is out of range: sharding.logical_shards is 512"),
            std::string::npos)
      << error_of(rows_of(cfg1024), cfg512);
}

TEST(DirectoryRows, AnUnknownShardIsNamedWithTheConfiguredOnes) {
  const auto cfg = three_shards();
  auto rows = rows_of(cfg);
  rows[700].shard = "s9";
  const auto e = error_of(rows, cfg);
  EXPECT_NE(e.find("logical shard 700 belongs to shard 's9', which is not configured (shards: s0, s1, s2)"),
            std::string::npos)
      << e;
}

TEST(DirectoryRows, TheLowestBadLogicalShardIsReported) {
  const auto cfg = three_shards();
  auto rows = rows_of(cfg);
  rows[10].shard = "nope";
  rows.erase(rows.begin() + 3);
  EXPECT_NE(error_of(rows, cfg).find("logical shard 3 has no owner"), std::string::npos) << error_of(rows, cfg);
  rows = rows_of(cfg);
  rows[2].shard = "nope";
  rows.erase(rows.begin() + 3);
  EXPECT_NE(error_of(rows, cfg).find("logical shard 2 belongs to shard 'nope'"), std::string::npos)
      << error_of(rows, cfg);
}

TEST(DirectoryRows, PinnedTenantsGetTheirShardAndUnknownShardsAreRefused) {
  const auto cfg = three_shards();
  const auto snap = directory_from_rows(9, rows_of(cfg), cfg,
                                        {{"42", "s1", false, true}, {"7", "s2", true, false}});
  ASSERT_EQ(snap->tenants().size(), 2u);
  const auto id42 = snap->tenant_id("42");
  ASSERT_TRUE(id42.has_value());
  EXPECT_GE(*id42, snap->logical_shards());
  EXPECT_EQ(snap->shard_name(snap->physical(*id42)), "s1");
  EXPECT_FALSE(snap->held(*id42));
  EXPECT_TRUE(snap->held(*snap->tenant_id("7")));
  EXPECT_TRUE(snap->any_held());
  EXPECT_FALSE(snap->tenant_id("43").has_value());
  try {
    directory_from_rows(9, rows_of(cfg), cfg, {{"42", "s9", false, true}});
    ADD_FAILURE() << "a pin to an unknown shard was accepted";
  } catch (const CatalogError& e) {
    EXPECT_NE(std::string(e.what()).find("tenant '42' is pinned to shard 's9', which is not configured"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
