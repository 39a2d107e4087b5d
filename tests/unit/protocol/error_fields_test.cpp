#include "proxy/protocol/error_fields.hpp"

#include <gtest/gtest.h>

#include <string>

#include "proxy/protocol/frame_reader.hpp"

namespace {

using shardline::proxy::protocol::decode_backend_frame;
using shardline::proxy::protocol::DecodeStatus;
using shardline::proxy::protocol::error_sqlstate;
using shardline::proxy::protocol::error_with_sqlstate;
using shardline::proxy::protocol::Frame;

std::string fields(std::initializer_list<std::string> f) {
  std::string out;
  for (const auto& s : f) out += s + '\0';
  return out + '\0';
}

TEST(ErrorFields, FindsTheSqlstate) {
  EXPECT_EQ(error_sqlstate(fields({"SERROR", "C42P01", "Mno such table"})), "42P01");
  EXPECT_EQ(error_sqlstate(fields({"SERROR", "Mno code"})), "");
  EXPECT_EQ(error_sqlstate(std::string("\0", 1)), "");
  EXPECT_EQ(error_sqlstate(std::string("SERR")), "");  // truncated
}

TEST(ErrorFields, AddsASqlstateKeepingTheFields) {
  const std::string m = error_with_sqlstate(fields({"SERROR", "Mboom"}), "XX000");
  Frame f;
  ASSERT_EQ(decode_backend_frame(m, f), DecodeStatus::Ok);
  EXPECT_EQ(f.tag, 'E');
  EXPECT_EQ(f.total_size, m.size());
  const std::string body(f.body.data(), f.body.size());
  EXPECT_EQ(body, fields({"CXX000", "SERROR", "Mboom"}));
  // No fields at all, or a body cut short: still one well-formed message.
  const std::string empty = error_with_sqlstate(std::string("\0", 1), "XX000");
  ASSERT_EQ(decode_backend_frame(empty, f), DecodeStatus::Ok);
  EXPECT_EQ(std::string(f.body.data(), f.body.size()), fields({"CXX000"}));
  const std::string cut = error_with_sqlstate("Mhalf", "XX000");
  ASSERT_EQ(decode_backend_frame(cut, f), DecodeStatus::Ok);
  EXPECT_EQ(std::string(f.body.data(), f.body.size()), fields({"CXX000", "Mhalf"}));
}

TEST(BackendFrames, UnknownTypeIsMalformedOnItsFirstByte) {
  Frame f;
  EXPECT_EQ(decode_backend_frame(std::string("t"), f), DecodeStatus::NeedMoreData);  // ParameterDescription
  EXPECT_EQ(decode_backend_frame(std::string("h"), f), DecodeStatus::Malformed);
  EXPECT_EQ(decode_backend_frame(std::string("this is not the protocol"), f), DecodeStatus::Malformed);
  EXPECT_EQ(decode_backend_frame(std::string("Z\0\0\0\5I", 6), f), DecodeStatus::Ok);
}

}  // namespace
