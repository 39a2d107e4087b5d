#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace shardline::router {

/// The column types a sharding key may have. smallint, integer and bigint are kept apart even
/// though they hash alike, because a key's text must be range-checked as PostgreSQL's input
/// function for the column's own type would (70000 is a fine integer and a bad smallint).
/// varchar is Text: it has no hash opclass of its own and uses text's.
enum class KeyType { SmallInt, Integer, BigInt, Text, Uuid };

/// A type name as written in config or DDL: smallint/int2, integer/int/int4, bigint/int8, text,
/// varchar/character varying, uuid. ASCII case-insensitive, as unquoted SQL identifiers are.
/// A length modifier such as varchar(64) is not accepted: the caller strips it on purpose.
[[nodiscard]] inline std::optional<KeyType> key_type_from_name(std::string_view name) {
  auto equals = [name](std::string_view candidate) {
    if (name.size() != candidate.size()) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
      char ch = name[i];
      if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
      if (ch != candidate[i]) return false;
    }
    return true;
  };
  if (equals("smallint") || equals("int2")) return KeyType::SmallInt;
  if (equals("integer") || equals("int") || equals("int4")) return KeyType::Integer;
  if (equals("bigint") || equals("int8")) return KeyType::BigInt;
  if (equals("text") || equals("varchar") || equals("character varying")) return KeyType::Text;
  if (equals("uuid")) return KeyType::Uuid;
  return std::nullopt;
}

/// PostgreSQL's canonical name of the type, the one its error messages use.
[[nodiscard]] constexpr std::string_view key_type_name(KeyType type) {
  switch (type) {
    case KeyType::SmallInt: return "smallint";
    case KeyType::Integer: return "integer";
    case KeyType::BigInt: return "bigint";
    case KeyType::Text: return "text";
    case KeyType::Uuid: return "uuid";
  }
  return "unknown";
}

}  // namespace shardline::router
