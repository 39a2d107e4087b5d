#include "router/sharding/pg_hash.hpp"

namespace shardline::router {
namespace {

constexpr std::uint32_t kGoldenRatio = 0x9e3779b9U;
constexpr std::uint32_t kLengthSalt = 3923095U;

constexpr std::uint32_t rotl(std::uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

/// lookup3's mix(): reversible mixing of three 32-bit words.
constexpr void mix(std::uint32_t& a, std::uint32_t& b, std::uint32_t& c) {
  a -= c; a ^= rotl(c, 4);  c += b;
  b -= a; b ^= rotl(a, 6);  a += c;
  c -= b; c ^= rotl(b, 8);  b += a;
  a -= c; a ^= rotl(c, 16); c += b;
  b -= a; b ^= rotl(a, 19); a += c;
  c -= b; c ^= rotl(b, 4);  b += a;
}

/// lookup3's final(): last avalanche of (a, b, c) into c (and b, which the 64-bit variant keeps).
constexpr void final_mix(std::uint32_t& a, std::uint32_t& b, std::uint32_t& c) {
  c ^= b; c -= rotl(b, 14);
  a ^= c; a -= rotl(c, 11);
  b ^= a; b -= rotl(a, 25);
  c ^= b; c -= rotl(b, 16);
  a ^= c; a -= rotl(c, 4);
  b ^= a; b -= rotl(a, 14);
  c ^= b; c -= rotl(b, 24);
}

/// Up to 4 bytes as a little-endian word. PostgreSQL's aligned path loads whole words and its
/// unaligned path assembles them byte by byte; on a little-endian server both equal this.
std::uint32_t load_le(const unsigned char* p, std::size_t n) {
  std::uint32_t word = 0;
  for (std::size_t i = 0; i < n; ++i) word |= static_cast<std::uint32_t>(p[i]) << (8 * i);
  return word;
}

void seed_state(std::uint32_t& a, std::uint32_t& b, std::uint32_t& c, std::uint64_t seed) {
  // The seed acts as a leading 12-byte chunk: high half, low half, four zero bytes.
  if (seed != 0) {
    a += static_cast<std::uint32_t>(seed >> 32);
    b += static_cast<std::uint32_t>(seed);
    mix(a, b, c);
  }
}

}  // namespace

std::uint64_t hash_bytes_extended(const unsigned char* data, std::size_t size,
                                  std::uint64_t seed) {
  std::uint32_t a = kGoldenRatio + static_cast<std::uint32_t>(size) + kLengthSalt;
  std::uint32_t b = a;
  std::uint32_t c = a;
  seed_state(a, b, c, seed);

  std::size_t left = size;
  const unsigned char* k = data;
  while (left >= 12) {
    a += load_le(k, 4);
    b += load_le(k + 4, 4);
    c += load_le(k + 8, 4);
    mix(a, b, c);
    k += 12;
    left -= 12;
  }
  // The last 0..11 bytes: a gets bytes 0-3, b bytes 4-7, c bytes 8-10 shifted up one byte,
  // because the lowest byte of c is "reserved for the length" in lookup3.
  if (left > 8) c += load_le(k + 8, left - 8) << 8;
  if (left > 4) b += load_le(k + 4, left >= 8 ? 4 : left - 4);
  if (left > 0) a += load_le(k, left >= 4 ? 4 : left);

  final_mix(a, b, c);
  return (static_cast<std::uint64_t>(b) << 32) | c;
}

std::uint64_t hash_uint32_extended(std::uint32_t value, std::uint64_t seed) {
  std::uint32_t a = kGoldenRatio + static_cast<std::uint32_t>(sizeof(std::uint32_t)) + kLengthSalt;
  std::uint32_t b = a;
  std::uint32_t c = a;
  seed_state(a, b, c, seed);
  a += value;
  final_mix(a, b, c);
  return (static_cast<std::uint64_t>(b) << 32) | c;
}

std::uint64_t hash_int8_extended(std::int64_t value, std::uint64_t seed) {
  auto lo = static_cast<std::uint32_t>(static_cast<std::uint64_t>(value));
  auto hi = static_cast<std::uint32_t>(static_cast<std::uint64_t>(value) >> 32);
  lo ^= value >= 0 ? hi : ~hi;
  return hash_uint32_extended(lo, seed);
}

std::uint64_t hash_combine64(std::uint64_t a, std::uint64_t b) {
  a ^= b + 0x49a0f4dd15e5a8e3ULL + (a << 54) + (a >> 7);
  return a;
}

}  // namespace shardline::router
