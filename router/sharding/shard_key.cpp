#include "router/sharding/shard_key.hpp"

#include <array>
#include <limits>
#include <stdexcept>

#include "router/sharding/pg_hash.hpp"

namespace shardline::router {
namespace {

using Uuid = std::array<unsigned char, 16>;

void set_error(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
}

bool check_modulus(int modulus, std::string* error) {
  if (modulus >= 1) return true;
  set_error(error, "modulus for hash partitioning must be a positive integer, got " +
                       std::to_string(modulus));
  return false;
}

/// The remainder PostgreSQL derives from a single non-NULL column's extended hash.
int remainder_of_column_hash(std::uint64_t column_hash, int modulus) {
  std::uint64_t row_hash = hash_combine64(0, column_hash);
  return static_cast<int>(row_hash % static_cast<std::uint64_t>(modulus));
}

/// isspace() in the C locale; glibc's UTF-8 locales classify no other single byte as space.
bool is_pg_space(char ch) {
  return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r';
}

bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }

std::string invalid_syntax(KeyType type, std::string_view text) {
  std::string message = "invalid input syntax for type ";
  message += key_type_name(type);
  message += ": \"";
  message += text;
  message += '"';
  return message;
}

std::string out_of_range(KeyType type, std::string_view text) {
  std::string message = "value \"";
  message += text;
  message += "\" is out of range for type ";
  message += key_type_name(type);
  return message;
}

struct IntRange {
  std::int64_t min;
  std::int64_t max;
};

IntRange range_of(KeyType type) {
  switch (type) {
    case KeyType::SmallInt:
      return {std::numeric_limits<std::int16_t>::min(), std::numeric_limits<std::int16_t>::max()};
    case KeyType::Integer:
      return {std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max()};
    default:
      return {std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()};
  }
}

/// pg_strtoint16/32/64 of PostgreSQL 15, in the same order of checks: an overflow is reported
/// as out of range as soon as the digits overflow, even if garbage follows them.
std::optional<std::int64_t> parse_integer(KeyType type, std::string_view text,
                                          std::string* error, std::string* sqlstate = nullptr) {
  auto fail = [&](const char* code, std::string message) {
    set_error(error, std::move(message));
    if (sqlstate != nullptr) *sqlstate = code;
    return std::nullopt;
  };
  const IntRange range = range_of(type);
  std::size_t pos = 0;
  while (pos < text.size() && is_pg_space(text[pos])) ++pos;
  bool negative = false;
  if (pos < text.size() && (text[pos] == '-' || text[pos] == '+')) {
    negative = text[pos] == '-';
    ++pos;
  }
  if (pos >= text.size() || !is_digit(text[pos])) return fail("22P02", invalid_syntax(type, text));
  // Magnitude in uint64, bounded by |min| for negatives and max for positives.
  const std::uint64_t limit = negative ? static_cast<std::uint64_t>(-(range.min + 1)) + 1
                                       : static_cast<std::uint64_t>(range.max);
  std::uint64_t magnitude = 0;
  while (pos < text.size() && is_digit(text[pos])) {
    const auto digit = static_cast<std::uint64_t>(text[pos] - '0');
    if (magnitude > (limit - digit) / 10) return fail("22003", out_of_range(type, text));
    magnitude = magnitude * 10 + digit;
    ++pos;
  }
  while (pos < text.size() && is_pg_space(text[pos])) ++pos;
  if (pos != text.size()) return fail("22P02", invalid_syntax(type, text));
  if (!negative) return static_cast<std::int64_t>(magnitude);
  // -(magnitude) without overflow when magnitude == 2^63.
  return magnitude == 0 ? 0 : -static_cast<std::int64_t>(magnitude - 1) - 1;
}

int hex_value(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/// string_to_uuid() of uuid.c: 16 hex pairs; after the 2nd, 4th, ... 14th byte one optional
/// hyphen; the whole optionally in braces; nothing else, not even whitespace.
std::optional<Uuid> parse_uuid(std::string_view text, std::string* error) {
  Uuid uuid{};
  std::size_t pos = 0;
  const bool braces = !text.empty() && text[0] == '{';
  if (braces) ++pos;
  for (std::size_t i = 0; i < uuid.size(); ++i) {
    if (pos + 1 >= text.size()) {
      set_error(error, invalid_syntax(KeyType::Uuid, text));
      return std::nullopt;
    }
    const int high = hex_value(text[pos]);
    const int low = hex_value(text[pos + 1]);
    if (high < 0 || low < 0) {
      set_error(error, invalid_syntax(KeyType::Uuid, text));
      return std::nullopt;
    }
    uuid[i] = static_cast<unsigned char>(high * 16 + low);
    pos += 2;
    if (pos < text.size() && text[pos] == '-' && i % 2 == 1 && i < uuid.size() - 1) ++pos;
  }
  if (braces) {
    if (pos >= text.size() || text[pos] != '}') {
      set_error(error, invalid_syntax(KeyType::Uuid, text));
      return std::nullopt;
    }
    ++pos;
  }
  if (pos != text.size()) {
    set_error(error, invalid_syntax(KeyType::Uuid, text));
    return std::nullopt;
  }
  return uuid;
}

bool check_text_bytes(const unsigned char* data, std::size_t size, std::string* error) {
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      set_error(error, "text key contains a zero byte at offset " + std::to_string(i) +
                           ", which PostgreSQL never accepts in text");
      return false;
    }
  }
  return true;
}

std::optional<int> shard_of_integer(KeyType type, std::int64_t value, std::string_view shown,
                                    int modulus, std::string* error) {
  const IntRange range = range_of(type);
  if (value < range.min || value > range.max) {
    set_error(error, out_of_range(type, shown));
    return std::nullopt;
  }
  return remainder_of_column_hash(hash_int8_extended(value, kHashPartitionSeed), modulus);
}

}  // namespace

std::optional<std::int64_t> parse_integer_key(KeyType type, std::string_view text, std::string* sqlstate,
                                              std::string* error) {
  return parse_integer(type, text, error, sqlstate);
}

std::optional<std::array<unsigned char, 16>> parse_uuid_key(std::string_view text, std::string* error) {
  return parse_uuid(text, error);
}

std::optional<int> logical_shard_of_text(KeyType type, std::string_view text_value, int modulus,
                                         std::string* error) {
  if (!check_modulus(modulus, error)) return std::nullopt;
  switch (type) {
    case KeyType::SmallInt:
    case KeyType::Integer:
    case KeyType::BigInt: {
      std::optional<std::int64_t> value = parse_integer(type, text_value, error);
      if (!value) return std::nullopt;
      return remainder_of_column_hash(hash_int8_extended(*value, kHashPartitionSeed), modulus);
    }
    case KeyType::Text: {
      const auto* data = reinterpret_cast<const unsigned char*>(text_value.data());
      if (!check_text_bytes(data, text_value.size(), error)) return std::nullopt;
      return remainder_of_column_hash(
          hash_bytes_extended(data, text_value.size(), kHashPartitionSeed), modulus);
    }
    case KeyType::Uuid: {
      std::optional<Uuid> uuid = parse_uuid(text_value, error);
      if (!uuid) return std::nullopt;
      return remainder_of_column_hash(
          hash_bytes_extended(uuid->data(), uuid->size(), kHashPartitionSeed), modulus);
    }
  }
  set_error(error, "unknown key type");
  return std::nullopt;
}

std::optional<int> logical_shard_of_binary(KeyType type, std::span<const std::byte> value,
                                           int modulus, std::string* error) {
  if (!check_modulus(modulus, error)) return std::nullopt;
  const auto* data = reinterpret_cast<const unsigned char*>(value.data());
  switch (type) {
    case KeyType::SmallInt:
    case KeyType::Integer:
    case KeyType::BigInt: {
      if (value.size() != 2 && value.size() != 4 && value.size() != 8) {
        set_error(error, "incorrect binary data format for type " +
                             std::string(key_type_name(type)) +
                             ": expected a 2, 4 or 8 byte integer, got " +
                             std::to_string(value.size()) + " bytes");
        return std::nullopt;
      }
      std::uint64_t bits = 0;
      for (std::size_t i = 0; i < value.size(); ++i) bits = (bits << 8) | data[i];
      // Sign-extend from the wire width.
      const unsigned shift = static_cast<unsigned>(64 - 8 * value.size());
      const auto number = static_cast<std::int64_t>(bits << shift) >> shift;
      return shard_of_integer(type, number, std::to_string(number), modulus, error);
    }
    case KeyType::Text:
      if (!check_text_bytes(data, value.size(), error)) return std::nullopt;
      return remainder_of_column_hash(hash_bytes_extended(data, value.size(), kHashPartitionSeed),
                                      modulus);
    case KeyType::Uuid:
      if (value.size() != 16) {
        set_error(error, "incorrect binary data format for type uuid: expected 16 bytes, got " +
                             std::to_string(value.size()));
        return std::nullopt;
      }
      return remainder_of_column_hash(hash_bytes_extended(data, value.size(), kHashPartitionSeed),
                                      modulus);
  }
  set_error(error, "unknown key type");
  return std::nullopt;
}

std::optional<int> logical_shard_of_column_binary(KeyType type, std::span<const std::byte> value,
                                                  int modulus, std::string* sqlstate, std::string* error) {
  std::size_t width = 0;
  switch (type) {
    case KeyType::SmallInt: width = 2; break;
    case KeyType::Integer: width = 4; break;
    case KeyType::BigInt: width = 8; break;
    case KeyType::Uuid: width = 16; break;
    case KeyType::Text: break;
  }
  const auto reject = [&](const char* code, std::string message) -> std::optional<int> {
    if (sqlstate) *sqlstate = code;
    set_error(error, std::move(message));
    return std::nullopt;
  };
  if (width != 0 && value.size() < width) return reject("08P01", "insufficient data left in message");
  if (width != 0 && value.size() > width) return reject("22P03", "incorrect binary data format");
  if (type == KeyType::Text)
    for (std::byte b : value)
      if (b == std::byte{0}) return reject("22021", "invalid byte sequence for encoding \"UTF8\": 0x00");
  auto l = logical_shard_of_binary(type, value, modulus, error);
  if (!l && sqlstate) *sqlstate = "22P03";
  return l;
}

int logical_shard_of_int(std::int64_t value, int modulus) {
  if (modulus < 1) {
    throw std::invalid_argument("modulus for hash partitioning must be a positive integer, got " +
                                std::to_string(modulus));
  }
  return remainder_of_column_hash(hash_int8_extended(value, kHashPartitionSeed), modulus);
}

int logical_shard_of_null(int modulus) {
  if (modulus < 1) {
    throw std::invalid_argument("modulus for hash partitioning must be a positive integer, got " +
                                std::to_string(modulus));
  }
  // No column contributes a hash, so rowHash stays at its initial 0.
  return static_cast<int>(std::uint64_t{0} % static_cast<std::uint64_t>(modulus));
}

}  // namespace shardline::router
