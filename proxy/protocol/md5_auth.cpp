#include "proxy/protocol/md5_auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <stdexcept>

namespace shardline::proxy::protocol {
namespace {

/// Lowercase hex of the MD5 digest of `data`. EVP rather than MD5(), which OpenSSL 3 deprecates.
std::string md5_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_md5(), nullptr) != 1) {
    // Only possible when the crypto provider has no MD5 (e.g. a FIPS-only OpenSSL config).
    throw std::runtime_error("MD5 is unavailable in this OpenSSL configuration");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0x0F];
  }
  return out;
}

}  // namespace

std::string md5_password_response(std::string_view user, std::string_view password,
                                  std::array<unsigned char, 4> salt) {
  std::string inner_input;
  inner_input.reserve(password.size() + user.size());
  inner_input.append(password).append(user);
  std::string outer_input = md5_hex(inner_input);
  OPENSSL_cleanse(inner_input.data(), inner_input.size());
  outer_input.append(reinterpret_cast<const char*>(salt.data()), salt.size());
  std::string response = "md5" + md5_hex(outer_input);
  OPENSSL_cleanse(outer_input.data(), outer_input.size());
  return response;
}

bool md5_response_matches(std::string_view expected, std::string_view given) {
  // A length mismatch reveals only the length, which is public (always 35 for a valid response).
  if (expected.size() != given.size() || expected.empty()) return false;
  return CRYPTO_memcmp(expected.data(), given.data(), expected.size()) == 0;
}

}  // namespace shardline::proxy::protocol
