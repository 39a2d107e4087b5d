#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "router/sharding/key_type.hpp"

/// The logical shard of a sharding key: exactly the REMAINDER of the partition that a table
/// `PARTITION BY HASH (key)` with `MODULUS modulus` stores the key in (SPEC.md section 4), so
/// shardline and PostgreSQL's own `satisfies_hash_partition` always agree on where a row lives.
///
/// PostgreSQL computes rowHash = hash_combine64(0, hash_extended(key, kHashPartitionSeed)) and
/// takes rowHash % modulus (compute_partition_hash_value, get_partition_for_tuple). The key's
/// hash is taken from its *binary value*, so text input is parsed exactly as the type's input
/// function would parse it: ' 42' and '+42' are the integer 42, and so is the 8-byte binary 42.
///
/// Text keys are hashed as the bytes the server stores: the caller must hand over text in the
/// server encoding (client_encoding equal to the server's, as it is by default). A column with
/// a nondeterministic ICU collation hashes differently and is not supported as a key.
///
/// All functions require modulus >= 1 (PostgreSQL's MODULUS is a positive integer); the
/// returned shard is in [0, modulus).
namespace shardline::router {

/// Logical shard of a key given as PostgreSQL text (a literal or a text-format Bind parameter).
/// Integers accept what int2in/int4in/int8in accept in PostgreSQL 15: optional leading and
/// trailing whitespace, an optional sign, decimal digits, range-checked for the key's own type.
/// UUIDs accept what uuid_in accepts: 32 hex digits in either case, optionally split by a hyphen
/// after any group of four, optionally wrapped in braces. Text is taken as its bytes.
/// On bad input returns nullopt and, if `error` is not null, stores PostgreSQL's own message for
/// it (e.g. `value "70000" is out of range for type smallint`).
[[nodiscard]] std::optional<int> logical_shard_of_text(KeyType type, std::string_view text_value,
                                                       int modulus, std::string* error);

/// The integer `text` stands for, read as int2in/int4in/int8in read it (range-checked for
/// `type`, an integer key type). On bad input returns nullopt with PostgreSQL's SQLSTATE
/// (22P02 invalid syntax, 22003 out of range) and message.
[[nodiscard]] std::optional<std::int64_t> parse_integer_key(KeyType type, std::string_view text,
                                                            std::string* sqlstate, std::string* error);

/// The 16 bytes of a uuid as uuid_in reads `text`; nullopt with PostgreSQL's message (22P02).
[[nodiscard]] std::optional<std::array<unsigned char, 16>> parse_uuid_key(std::string_view text,
                                                                          std::string* error);

/// Logical shard of a binary-format Bind parameter. Integers are big-endian two's complement of
/// 2, 4 or 8 bytes: any of the three widths is accepted for every integer key type, because the
/// parameter's declared type (Parse) may be narrower or wider than the column and all integer
/// types hash alike; the value must still fit the key type. uuid is its 16 bytes; text is its
/// raw bytes (textrecv), which may not contain a zero byte.
[[nodiscard]] std::optional<int> logical_shard_of_binary(KeyType type,
                                                         std::span<const std::byte> value,
                                                         int modulus, std::string* error);

/// Logical shard of a key field of COPY ... FROM STDIN (FORMAT binary): the column type's own
/// binary format, which COPY hands to that type's receive function, so the width must be the
/// column's: exactly 2, 4 or 8 bytes for smallint, integer and bigint, 16 for uuid; text is its
/// raw bytes. On bad input returns nullopt with PostgreSQL's SQLSTATE and message: too few
/// bytes 08P01 `insufficient data left in message` (pq_copymsgbytes), too many 22P03
/// `incorrect binary data format` (CopyReadBinaryAttribute), a zero byte in text 22021. Other
/// invalid UTF-8 in text is hashed as it is: the shard's textrecv rejects it with its own error.
[[nodiscard]] std::optional<int> logical_shard_of_column_binary(KeyType type, std::span<const std::byte> value,
                                                                int modulus, std::string* sqlstate,
                                                                std::string* error);

/// Logical shard of an integer key of any integer type (smallint, integer and bigint hash
/// alike). Throws std::invalid_argument if modulus < 1: a validated config never gets there.
[[nodiscard]] int logical_shard_of_int(std::int64_t value, int modulus);

/// Logical shard of a NULL key. PostgreSQL skips NULL columns when it hashes a row, so a NULL
/// single-column key has rowHash 0 and always lands in the REMAINDER 0 partition (hash
/// partitioning, unlike list and range, accepts NULL keys without a default partition).
/// Throws std::invalid_argument if modulus < 1.
[[nodiscard]] int logical_shard_of_null(int modulus);

}  // namespace shardline::router
