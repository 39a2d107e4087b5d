// Merging the replies of several shards into what one database would have returned.

#include "proxy/exec/result_merger.hpp"

#include <gtest/gtest.h>

#include "proxy/protocol/frame_reader.hpp"
#include "proxy/protocol/message_writer.hpp"

namespace shardline::proxy::exec {
namespace {

std::string row_description(int type_oid) {
  std::string out;
  protocol::MessageWriter w(out);
  w.begin('T').i16(1).cstr("v").i32(0).i16(0).i32(type_oid).i16(8).i32(-1).i16(0).end();
  return out;
}
std::string data_row(const std::optional<std::string>& v) {
  std::string out;
  protocol::MessageWriter w(out);
  w.begin('D').i16(1);
  if (v) w.i32(std::int32_t(v->size())).raw(*v);
  else w.i32(-1);
  w.end();
  return out;
}
std::string complete(const std::string& tag) {
  std::string out;
  protocol::MessageWriter(out).command_complete(tag);
  return out;
}
std::optional<std::string> value_of(const std::string& row) {
  protocol::BodyReader r({row.data() + 5, row.size() - 5});
  r.i16();
  auto len = r.i32();
  if (!len || *len < 0) return std::nullopt;
  return std::string(*r.bytes(std::size_t(*len)));
}

TEST(ResultMerger, ConcatenatesRowsAndSumsTheCount) {
  std::vector<ShardReply> replies = {
      {"s0", {row_description(23), data_row("1"), data_row("2"), complete("SELECT 2")}},
      {"s1", {row_description(23), data_row("3"), complete("SELECT 1")}}};
  auto out = merge_replies(replies, MergeMode::Concat);
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[0][0], 'T');
  EXPECT_EQ(value_of(out[3]), "3");
  EXPECT_EQ(out[4], complete("SELECT 3"));
}

TEST(ResultMerger, ReferenceWritesReportOneShardsCount) {
  std::vector<ShardReply> replies = {{"s0", {complete("INSERT 0 3")}}, {"s1", {complete("INSERT 0 3")}}};
  EXPECT_EQ(merge_replies(replies, MergeMode::SameRows), std::vector<std::string>{complete("INSERT 0 3")});
  EXPECT_EQ(merge_replies(replies, MergeMode::Concat), std::vector<std::string>{complete("INSERT 0 6")});
}

TEST(ResultMerger, SplitInsertReturningComesBackInValuesOrder) {
  // VALUES rows 0,1,2: rows 0 and 2 went to s0, row 1 to s1.
  std::vector<ShardReply> replies = {
      {"s0", {row_description(20), data_row("a"), data_row("c"), complete("INSERT 0 2")}},
      {"s1", {row_description(20), data_row("b"), complete("INSERT 0 1")}}};
  auto out = merge_replies(replies, MergeMode::Reorder, {{0, 2}, {1}});
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(value_of(out[1]), "a");
  EXPECT_EQ(value_of(out[2]), "b");
  EXPECT_EQ(value_of(out[3]), "c");
  EXPECT_EQ(out[4], complete("INSERT 0 3"));
}

TEST(ResultMerger, CommandTagsSumOnlyWhenTheyHaveACount) {
  EXPECT_EQ(sum_command_tags({"UPDATE 2", "UPDATE 5"}), "UPDATE 7");
  EXPECT_EQ(sum_command_tags({"CREATE TABLE", "CREATE TABLE"}), "CREATE TABLE");
  EXPECT_EQ(sum_command_tags({"COPY 10", "COPY 0"}), "COPY 10");
}

TEST(Decimal, AddsAndComparesExactly) {
  EXPECT_EQ(decimal_add("9223372036854775807", "1"), "9223372036854775808");
  EXPECT_EQ(decimal_add("-12.5", "3"), "-9.5");
  EXPECT_EQ(decimal_add("0.1", "0.2"), "0.3");
  EXPECT_EQ(decimal_add("-5", "5"), "0");
  EXPECT_EQ(decimal_add("1.50", "-0.25"), "1.25");
  EXPECT_LT(decimal_compare("-10", "-9"), 0);
  EXPECT_GT(decimal_compare("10.01", "10.001"), 0);
  EXPECT_EQ(decimal_compare("007", "7.000"), 0);
}

TEST(ResultMerger, AggregatesCombineExactlyAndNullsAreIgnored) {
  auto shard = [](std::optional<std::string> v, int type) {
    return ShardReply{"s", {row_description(type), data_row(v), complete("SELECT 1")}};
  };
  std::string err;
  auto sum = merge_aggregates({shard("10.5", 1700), shard(std::nullopt, 1700), shard("-0.5", 1700)},
                              {AggregateKind::Sum}, &err);
  ASSERT_TRUE(err.empty()) << err;
  EXPECT_EQ(value_of(sum[1]), "10.0");
  auto cnt = merge_aggregates({shard("4", 20), shard("0", 20)}, {AggregateKind::Count}, &err);
  EXPECT_EQ(value_of(cnt[1]), "4");
  auto mn = merge_aggregates({shard("5", 23), shard("-7", 23)}, {AggregateKind::Min}, &err);
  EXPECT_EQ(value_of(mn[1]), "-7");
  auto all_null = merge_aggregates({shard(std::nullopt, 23), shard(std::nullopt, 23)}, {AggregateKind::Max}, &err);
  EXPECT_EQ(value_of(all_null[1]), std::nullopt);
  // max() over text would need the column's collation: refused, never guessed.
  auto text = merge_aggregates({shard("a", 25), shard("b", 25)}, {AggregateKind::Max}, &err);
  EXPECT_TRUE(text.empty());
  EXPECT_NE(err.find("not supported"), std::string::npos);
}

}  // namespace
}  // namespace shardline::proxy::exec
