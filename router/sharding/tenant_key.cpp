#include "router/sharding/tenant_key.hpp"

#include "router/sharding/shard_key.hpp"

namespace shardline::router {

std::string canonical_int_key(std::int64_t value) { return std::to_string(value); }

std::string canonical_uuid_key(std::span<const unsigned char, 16> bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 0x0f];
  }
  return out;
}

std::optional<std::string> canonical_key_of_text(KeyType type, std::string_view text, std::string* sqlstate,
                                                 std::string* error) {
  switch (type) {
    case KeyType::Text:
      if (text.find('\0') != std::string_view::npos) {
        if (sqlstate) *sqlstate = "22021";
        if (error) *error = "invalid byte sequence for encoding \"UTF8\": 0x00";
        return std::nullopt;
      }
      return std::string(text);
    case KeyType::Uuid: {
      auto u = parse_uuid_key(text, error);
      if (!u) {
        if (sqlstate) *sqlstate = "22P02";
        return std::nullopt;
      }
      return canonical_uuid_key(*u);
    }
    default: {
      auto v = parse_integer_key(type, text, sqlstate, error);
      if (!v) return std::nullopt;
      return canonical_int_key(*v);
    }
  }
}

std::optional<std::string> canonical_key_of_binary(KeyType type, std::span<const std::byte> value) {
  if (type == KeyType::Text) return std::string(reinterpret_cast<const char*>(value.data()), value.size());
  if (type == KeyType::Uuid) {
    if (value.size() != 16) return std::nullopt;
    std::array<unsigned char, 16> b{};
    for (std::size_t i = 0; i < 16; ++i) b[i] = static_cast<unsigned char>(value[i]);
    return canonical_uuid_key(b);
  }
  if (value.size() != 2 && value.size() != 4 && value.size() != 8) return std::nullopt;
  std::uint64_t u = 0;
  for (std::byte b : value) u = (u << 8) | std::uint64_t(b);
  // Sign-extend the big-endian two's complement of its width.
  const int bits = int(value.size()) * 8;
  std::int64_t v = bits == 64 ? std::int64_t(u) : std::int64_t(u << (64 - bits)) >> (64 - bits);
  return canonical_int_key(v);
}

}  // namespace shardline::router
