#include "proxy/protocol/md5_auth.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <string>

namespace shardline::proxy::protocol {
namespace {

// Both expected values were computed by a real PostgreSQL 15 server:
//   SELECT 'md5' || md5(convert_to(md5('pw' || 'x'), 'UTF8') || '\x931f00c8'::bytea);
//   SELECT 'md5' || md5(md5('pw' || 'x') || 'salt');
TEST(Md5Auth, MatchesPostgresWithBinarySalt) {
  EXPECT_EQ(md5_password_response("x", "pw", {0x93, 0x1f, 0x00, 0xc8}),
            "md547f4664f55a24f719ca20f94f48e5b59");
}

TEST(Md5Auth, MatchesPostgresWithAsciiSalt) {
  EXPECT_EQ(md5_password_response("x", "pw", {'s', 'a', 'l', 't'}),
            "md5fb12b880d7b52e2ba1e55afe59ba4d3b");
}

// A real server stored "md55cd54d0fec19d1894dba02b32ee85469" for
//   SET password_encryption='md5'; CREATE ROLE y PASSWORD 'pw';
// The wire response is "md5" + md5hex(<stored hex> + salt); computing that here independently
// ties our inner hash (password + user) to the server's stored one.
TEST(Md5Auth, InnerHashMatchesPostgresStoredMd5Password) {
  const std::array<unsigned char, 4> salt{0x01, 0xfe, 0x7f, 0x80};
  std::string input = "5cd54d0fec19d1894dba02b32ee85469";
  input.append(reinterpret_cast<const char*>(salt.data()), salt.size());
  unsigned char digest[16];
  unsigned int length = 0;
  ASSERT_EQ(1, EVP_Digest(input.data(), input.size(), digest, &length, EVP_md5(), nullptr));
  std::string expected = "md5";
  for (unsigned char b : digest) {
    static constexpr char kHex[] = "0123456789abcdef";
    expected += kHex[b >> 4];
    expected += kHex[b & 15];
  }
  EXPECT_EQ(md5_password_response("y", "pw", salt), expected);
  EXPECT_NE(md5_password_response("x", "pw", salt), expected);  // the user name is salt too
}

TEST(Md5Auth, ResponseShapeAndSensitivity) {
  const std::string r = md5_password_response("alice", "secret", {1, 2, 3, 4});
  EXPECT_EQ(r.size(), 35u);
  EXPECT_TRUE(r.starts_with("md5"));
  EXPECT_EQ(r.find_first_not_of("0123456789abcdef", 3), std::string::npos);
  EXPECT_NE(r, md5_password_response("alice", "secret", {1, 2, 3, 5}));
  EXPECT_NE(r, md5_password_response("alice", "Secret", {1, 2, 3, 4}));
  EXPECT_NE(r, md5_password_response("alicf", "secret", {1, 2, 3, 4}));
}

TEST(Md5Auth, ResponseMatches) {
  const std::string r = md5_password_response("x", "pw", {'s', 'a', 'l', 't'});
  EXPECT_TRUE(md5_response_matches(r, "md5fb12b880d7b52e2ba1e55afe59ba4d3b"));
  EXPECT_FALSE(md5_response_matches(r, "md5fb12b880d7b52e2ba1e55afe59ba4d3c"));
  EXPECT_FALSE(md5_response_matches(r, "nd5fb12b880d7b52e2ba1e55afe59ba4d3b"));
  EXPECT_FALSE(md5_response_matches(r, "md5fb12b880d7b52e2ba1e55afe59ba4d3"));
  EXPECT_FALSE(md5_response_matches(r, r + "0"));
  EXPECT_FALSE(md5_response_matches(r, ""));
  EXPECT_FALSE(md5_response_matches("", ""));
}

}  // namespace
}  // namespace shardline::proxy::protocol
