#pragma once
// The canonical text of a sharding key: PostgreSQL's output form of the value (int2out/int4out/
// int8out, uuid_out, the text itself), which is what a tenant pin stores (shardline.pins) and
// what the source shard's fence compares (`key::text`). The router, COPY splitting and RESHARD
// ISOLATE all derive it here from the same parsed value the hash is taken of, so ' +42', '042'
// and the binary 42 are all the tenant "42", and '{A0EEBC99-9C0B4EF8-BB6D6BB9-BD380A11}' is
// "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "router/sharding/key_type.hpp"

namespace shardline::router {

/// Decimal text of an integer key (int8out).
[[nodiscard]] std::string canonical_int_key(std::int64_t value);
/// uuid_out: lowercase hex, hyphens after 8, 12, 16 and 20 digits.
[[nodiscard]] std::string canonical_uuid_key(std::span<const unsigned char, 16> bytes);

/// The canonical text of `text` read by the key type's input function; nullopt with
/// PostgreSQL's SQLSTATE and message when the input function rejects it (e.g. 22003 for
/// 70000 as a smallint, 22P02 for "abc" as an integer).
[[nodiscard]] std::optional<std::string> canonical_key_of_text(KeyType type, std::string_view text,
                                                               std::string* sqlstate, std::string* error);

/// The canonical text of a binary value of the key type (a COPY binary field): 2, 4 or 8
/// big-endian bytes for the integer types, 16 for uuid, the raw bytes for text; nullopt when the
/// width does not fit the type (the splitter reports that error itself).
[[nodiscard]] std::optional<std::string> canonical_key_of_binary(KeyType type, std::span<const std::byte> value);

}  // namespace shardline::router
