#include "proxy/protocol/frame_reader.hpp"

#include <gtest/gtest.h>

#include <string>

namespace shardline::proxy::protocol {
namespace {

std::string header(char tag, std::uint32_t len) {
  std::string h(1, tag);
  for (int shift = 24; shift >= 0; shift -= 8) h.push_back(char((len >> shift) & 0xff));
  return h;
}

DecodeStatus decode(const std::string& bytes, const char** why = nullptr) {
  Frame f;
  return decode_client_frame(std::span<const char>(bytes.data(), bytes.size()), f, why);
}

TEST(DecodeClientFrame, RefusesAnUnknownTypeOnItsFirstByte) {
  const char* why = nullptr;
  EXPECT_EQ(decode(std::string(1, '\0'), &why), DecodeStatus::Malformed);
  EXPECT_STREQ(why, "invalid frontend message type");
  for (char t : {'Z', 'T', 'A', '\x7f', 'q'}) EXPECT_EQ(decode(std::string(1, t)), DecodeStatus::Malformed) << t;
}

TEST(DecodeClientFrame, RefusesAnImpossibleLengthOnTheHeaderAlone) {
  const char* why = nullptr;
  // A Query declaring 1 GB: refused before any of its body arrives.
  EXPECT_EQ(decode(header('Q', 0x40000000u), &why), DecodeStatus::Malformed);
  EXPECT_STREQ(why, "invalid message length");
  EXPECT_EQ(decode(header('Q', 3)), DecodeStatus::Malformed);
  // Messages without data have PostgreSQL's small limit.
  EXPECT_EQ(decode(header('S', 10001)), DecodeStatus::Malformed);
  EXPECT_EQ(decode(header('S', 10000)), DecodeStatus::NeedMoreData);
  EXPECT_EQ(decode(header('Q', 1u << 20)), DecodeStatus::NeedMoreData);
}

TEST(DecodeClientFrame, DecodesEveryFrontendType) {
  for (char t : {'Q', 'P', 'B', 'F', 'd', 'p', 'C', 'D', 'E', 'H', 'S', 'X', 'c', 'f'}) {
    std::string m = header(t, 5) + "x";
    Frame f;
    ASSERT_EQ(decode_client_frame(std::span<const char>(m.data(), m.size()), f), DecodeStatus::Ok) << t;
    EXPECT_EQ(f.tag, t);
    EXPECT_EQ(f.body.size(), 1u);
    EXPECT_EQ(f.total_size, 6u);
  }
  EXPECT_EQ(decode(std::string(1, 'Q')), DecodeStatus::NeedMoreData);
}

}  // namespace
}  // namespace shardline::proxy::protocol
