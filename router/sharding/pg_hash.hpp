#pragma once

#include <cstddef>
#include <cstdint>

/// PostgreSQL's own hash functions, reimplemented bit for bit, so that shardline's logical shard
/// of a key equals the REMAINDER of the hash partition PostgreSQL itself would store it in
/// (src/common/hashfn.c, src/include/common/hashfn.h, src/backend/access/hash/hashfunc.c).
///
/// PostgreSQL's hash of a byte string reads 32-bit words in the *server's* byte order, so its
/// values differ between little- and big-endian servers. These functions always compute the
/// little-endian result (every server platform PostgreSQL ships on today: x86-64, arm64,
/// ppc64le), whatever the byte order of the machine shardline runs on.
namespace shardline::router {

/// Seed PostgreSQL passes to every column's extended hash function when it routes a row to a
/// hash partition (HASH_PARTITION_SEED in src/include/catalog/partition.h).
inline constexpr std::uint64_t kHashPartitionSeed = 0x7A5B22367996DCFDULL;

/// hash_bytes_extended(): Bob Jenkins' lookup3 over `size` bytes, perturbed by a 64-bit seed
/// (0 = no seed); returns (b << 32) | c. PostgreSQL's length is an int, so inputs are at most
/// 1 GB there (the largest varlena); longer inputs are hashed with their length mod 2^32.
[[nodiscard]] std::uint64_t hash_bytes_extended(const unsigned char* data, std::size_t size,
                                                std::uint64_t seed);

/// hash_bytes_uint32_extended(): the same as hashing the 4 little-endian bytes of `value`.
[[nodiscard]] std::uint64_t hash_uint32_extended(std::uint32_t value, std::uint64_t seed);

/// hashint8extended(). It folds the high half into the low half so that equal values of
/// smallint, integer and bigint hash alike (hashint2extended/hashint4extended hash the
/// sign-extended value with hash_uint32_extended, which is what this yields for small values);
/// that is why one function serves every integer key type.
[[nodiscard]] std::uint64_t hash_int8_extended(std::int64_t value, std::uint64_t seed);

/// hash_combine64(): how PostgreSQL folds the hashes of the partition key's columns, starting
/// from 0 (compute_partition_hash_value in src/backend/partitioning/partbounds.c).
[[nodiscard]] std::uint64_t hash_combine64(std::uint64_t a, std::uint64_t b);

}  // namespace shardline::router
