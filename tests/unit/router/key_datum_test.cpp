// KeyDatum and PgNumeric: values typed and coerced the way PostgreSQL 15 does (the expected
// results were taken from a PostgreSQL 15 server; the integration test key_range_test checks
// the routing end to end against the server's own satisfies_hash_partition).

#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>

#include "router/sharding/key_datum.hpp"
#include "router/sharding/pg_numeric.hpp"
#include "router/sharding/shard_key.hpp"

namespace shardline::router {
namespace {

constexpr int kModulus = 1024;
using Kind = KeyOutcome::Kind;

std::string numeric_text(std::string_view in) {
  std::string err;
  auto n = PgNumeric::parse(in, &err);
  return n ? n->text().value_or("?") : "error: " + err;
}

TEST(PgNumeric, TextKeepsTheDisplayScale) {
  EXPECT_EQ(numeric_text("1.50"), "1.50");
  EXPECT_EQ(numeric_text("-0.0"), "0.0");
  EXPECT_EQ(numeric_text("1e3"), "1000");
  EXPECT_EQ(numeric_text("1.5e1"), "15");
  EXPECT_EQ(numeric_text("1.50e1"), "15.0");
  EXPECT_EQ(numeric_text("1e-2"), "0.01");
  EXPECT_EQ(numeric_text(" +007.10 "), "7.10");
  EXPECT_EQ(numeric_text(".5"), "0.5");
  EXPECT_EQ(numeric_text("nan"), "NaN");
  EXPECT_EQ(numeric_text("-inf"), "-Infinity");
  EXPECT_EQ(numeric_text("1.2.3"), "error: invalid input syntax for type numeric: \"1.2.3\"");
  EXPECT_EQ(numeric_text("e5"), "error: invalid input syntax for type numeric: \"e5\"");
  EXPECT_EQ(numeric_text("1e"), "error: invalid input syntax for type numeric: \"1e\"");
}

TEST(PgNumeric, RoundsHalfAwayFromZero) {
  auto rounded = [](std::string_view in) { return PgNumeric::parse(in, nullptr)->rounded_int64(); };
  EXPECT_EQ(rounded("1.5"), 2);
  EXPECT_EQ(rounded("2.5"), 3);
  EXPECT_EQ(rounded("-2.5"), -3);
  EXPECT_EQ(rounded("0.49"), 0);
  EXPECT_EQ(rounded("0.5"), 1);
  EXPECT_EQ(rounded("0.05"), 0);
  EXPECT_EQ(rounded("9223372036854775807.4"), INT64_MAX);
  EXPECT_EQ(rounded("9223372036854775807.5"), std::nullopt);
  EXPECT_EQ(rounded("-9223372036854775808.5"), std::nullopt);
  EXPECT_EQ(rounded("-9223372036854775808.4"), INT64_MIN);
  EXPECT_EQ(rounded("1e30"), std::nullopt);
  EXPECT_EQ(PgNumeric::parse("1.0", nullptr)->exact_int64(), 1);
  EXPECT_EQ(PgNumeric::parse("1.5", nullptr)->exact_int64(), std::nullopt);
  EXPECT_EQ(PgNumeric::parse("12e2", nullptr)->exact_int64(), 1200);
}

KeyOutcome literal(std::string_view number, KeyType key, KeyUse use) {
  return KeyDatum::number_literal(number).outcome(key, use, kModulus);
}
KeyOutcome quoted(std::string_view text, KeyType key, KeyUse use) {
  return KeyDatum::unknown_text(text).outcome(key, use, kModulus);
}
int shard_of(std::int64_t v) { return logical_shard_of_int(v, kModulus); }

TEST(KeyDatum, NumberLiteralsCompareAcrossIntegerTypes) {
  EXPECT_EQ(literal("2147483648", KeyType::Integer, KeyUse::Compare).kind, Kind::NoMatch);
  EXPECT_EQ(literal("2147483648", KeyType::BigInt, KeyUse::Compare).logical, shard_of(2147483648));
  EXPECT_EQ(literal("-9223372036854775808", KeyType::BigInt, KeyUse::Compare).logical, shard_of(INT64_MIN));
  EXPECT_EQ(literal("9223372036854775808", KeyType::BigInt, KeyUse::Compare).kind, Kind::NoMatch);
  EXPECT_EQ(literal("70000", KeyType::SmallInt, KeyUse::Compare).kind, Kind::NoMatch);
  EXPECT_EQ(literal("1.0", KeyType::Integer, KeyUse::Compare).logical, shard_of(1));
  EXPECT_EQ(literal("1.5", KeyType::Integer, KeyUse::Compare).kind, Kind::NoMatch);
  EXPECT_EQ(literal("42", KeyType::Text, KeyUse::Compare).sqlstate, "42883");
  EXPECT_EQ(literal("42", KeyType::Uuid, KeyUse::Compare).sqlstate, "42883");
}

TEST(KeyDatum, AssignmentRangeChecksAndRounds) {
  auto e = literal("2147483648", KeyType::Integer, KeyUse::Assign);
  EXPECT_EQ(e.kind, Kind::ServerError);
  EXPECT_EQ(e.sqlstate, "22003");
  EXPECT_EQ(e.message, "integer out of range");
  EXPECT_EQ(literal("1.5", KeyType::Integer, KeyUse::Assign).logical, shard_of(2));
  EXPECT_EQ(literal("-2.5", KeyType::BigInt, KeyUse::Assign).logical, shard_of(-3));
  EXPECT_EQ(literal("32768", KeyType::SmallInt, KeyUse::Assign).message, "smallint out of range");
  EXPECT_EQ(literal("42", KeyType::Text, KeyUse::Assign).logical, quoted("42", KeyType::Text, KeyUse::Assign).logical);
  EXPECT_EQ(literal("1.50", KeyType::Text, KeyUse::Assign).logical, quoted("1.50", KeyType::Text, KeyUse::Assign).logical);
  EXPECT_EQ(literal("1e3", KeyType::Text, KeyUse::Assign).logical, quoted("1000", KeyType::Text, KeyUse::Assign).logical);
  EXPECT_EQ(literal("42", KeyType::Uuid, KeyUse::Assign).sqlstate, "42804");
}

TEST(KeyDatum, QuotedValuesTakeTheKeyType) {
  auto e = quoted("2147483648", KeyType::Integer, KeyUse::Compare);
  EXPECT_EQ(e.kind, Kind::ServerError);
  EXPECT_EQ(e.sqlstate, "22003");
  EXPECT_EQ(e.message, "value \"2147483648\" is out of range for type integer");
  EXPECT_EQ(quoted("abc", KeyType::Integer, KeyUse::Compare).sqlstate, "22P02");
  EXPECT_EQ(quoted(" -42 ", KeyType::SmallInt, KeyUse::Assign).logical, shard_of(-42));
  EXPECT_EQ(quoted("{A0EEBC999C0B4EF8BB6D6BB9BD380A11}", KeyType::Uuid, KeyUse::Compare).logical,
            quoted("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", KeyType::Uuid, KeyUse::Compare).logical);
  EXPECT_EQ(quoted("", KeyType::Text, KeyUse::Compare).kind, Kind::Logical);
}

TEST(KeyDatum, OperatorsAndCasts) {
  KeyDatum d = KeyDatum::number_literal("9223372036854775808");
  d.cast(SqlType::Int8);  // -9223372036854775808::bigint casts before it negates
  EXPECT_EQ(d.outcome(KeyType::BigInt, KeyUse::Compare, kModulus).message, "bigint out of range");
  KeyDatum m = KeyDatum::number_literal("-2147483648");
  m.negate();  // int4um overflows
  EXPECT_EQ(m.outcome(KeyType::BigInt, KeyUse::Compare, kModulus).sqlstate, "22003");
  KeyDatum u = KeyDatum::unknown_text("5");
  u.negate();
  EXPECT_EQ(u.outcome(KeyType::BigInt, KeyUse::Compare, kModulus).sqlstate, "42725");
  KeyDatum p = KeyDatum::unknown_text("2.5");
  p.unary_plus();  // float8, rint rounds half to even
  EXPECT_EQ(p.outcome(KeyType::Integer, KeyUse::Assign, kModulus).logical, shard_of(2));
  KeyDatum v = KeyDatum::unknown_text("abcdef");
  v.cast(SqlType::Text, 3);
  EXPECT_EQ(v.outcome(KeyType::Text, KeyUse::Compare, kModulus).logical, quoted("abc", KeyType::Text, KeyUse::Compare).logical);
  KeyDatum id = KeyDatum::unknown_text("{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}");
  id.cast(SqlType::Uuid);
  id.cast(SqlType::Text);  // canonical spelling
  EXPECT_EQ(id.outcome(KeyType::Text, KeyUse::Assign, kModulus).logical,
            quoted("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", KeyType::Text, KeyUse::Assign).logical);
}

TEST(KeyDatum, DeclaredAndBinaryParameters) {
  const std::array<std::byte, 8> big{std::byte{0},    std::byte{0}, std::byte{0}, std::byte{0},
                                     std::byte{0x80}, std::byte{0}, std::byte{0}, std::byte{0}};  // 2^31
  std::string_view bytes(reinterpret_cast<const char*>(big.data()), big.size());
  auto declared = KeyDatum::parameter(SqlType::Int8, bytes, true);
  EXPECT_EQ(declared.outcome(KeyType::Integer, KeyUse::Compare, kModulus).kind, Kind::NoMatch);
  EXPECT_EQ(declared.outcome(KeyType::BigInt, KeyUse::Compare, kModulus).logical, shard_of(2147483648));
  EXPECT_EQ(KeyDatum::parameter(SqlType::Numeric, "1.5", false).outcome(KeyType::Integer, KeyUse::Assign, kModulus).logical,
            shard_of(2));
  // numeric 1.5 in binary: ndigits 2, weight 0, sign +, dscale 1, digits 1 and 5000.
  const std::array<unsigned char, 12> num{0, 2, 0, 0, 0, 0, 0, 1, 0, 1, 0x13, 0x88};
  auto n = KeyDatum::parameter(SqlType::Numeric, std::string_view(reinterpret_cast<const char*>(num.data()), num.size()), true);
  EXPECT_EQ(n.outcome(KeyType::Integer, KeyUse::Assign, kModulus).logical, shard_of(2));
  EXPECT_EQ(n.outcome(KeyType::Integer, KeyUse::Compare, kModulus).kind, Kind::NoMatch);
  // Without the declared type, a bad value may be fine for the type the client declared: a
  // comparison drops it rather than send the statement for the error.
  auto guessed = KeyDatum::parameter(SqlType::Unknown, "2147483648", false);
  guessed.set_uncertain();
  EXPECT_EQ(guessed.outcome(KeyType::Integer, KeyUse::Compare, kModulus).kind, Kind::NoMatch);
  EXPECT_EQ(guessed.outcome(KeyType::Integer, KeyUse::Assign, kModulus).kind, Kind::ServerError);
}

TEST(KeyDatum, FloatsThatEqualSeveralBigintsAreUnconstrained) {
  auto f = KeyDatum::parameter(SqlType::Float8, "9007199254740992", false);
  EXPECT_EQ(f.outcome(KeyType::BigInt, KeyUse::Compare, kModulus).kind, Kind::Unconstrained);
  EXPECT_EQ(f.outcome(KeyType::Integer, KeyUse::Compare, kModulus).kind, Kind::NoMatch);
  EXPECT_EQ(f.outcome(KeyType::BigInt, KeyUse::Assign, kModulus).logical, shard_of(9007199254740992));
  EXPECT_EQ(KeyDatum::parameter(SqlType::Float8, "42", false).outcome(KeyType::BigInt, KeyUse::Compare, kModulus).logical,
            shard_of(42));
}

}  // namespace
}  // namespace shardline::router
