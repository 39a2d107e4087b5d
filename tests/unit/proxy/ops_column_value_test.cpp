// Type-aware comparison of column values in text and binary wire format.

#include "proxy/exec/ops/column_value.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tests/unit/proxy/ops_test_support.hpp"

namespace shardline::proxy::exec::ops {
namespace {

using namespace testing;

ColumnType type_of(std::uint32_t oid) {
  protocol::SqlError e;
  auto t = comparable_type(oid, MergeContext{true}, e);
  EXPECT_TRUE(t) << e.message;
  return t.value_or(ColumnType{});
}

int cmp(std::uint32_t oid, int format, std::string_view a, std::string_view b) {
  protocol::SqlError e;
  auto c = compare_values(type_of(oid), format, a, b, e);
  EXPECT_TRUE(c) << e.message;
  return c.value_or(99);
}

/// Every value sorts strictly after the one before it (and equals itself), in both directions.
void expect_ascending(std::uint32_t oid, int format, const std::vector<std::string>& vals) {
  for (std::size_t i = 0; i < vals.size(); ++i)
    for (std::size_t j = 0; j < vals.size(); ++j) {
      int want = i < j ? -1 : (i > j ? 1 : 0);
      EXPECT_EQ(cmp(oid, format, vals[i], vals[j]), want) << oid << " " << i << " " << j;
    }
}

TEST(OpsColumnValue, Integers) {
  expect_ascending(20, 0, {"-9223372036854775808", "-1", "0", "7", "10", "9223372036854775807"});
  expect_ascending(20, 1, {bin_i8(INT64_MIN), bin_i8(-1), bin_i8(0), bin_i8(10), bin_i8(INT64_MAX)});
  expect_ascending(23, 1, {bin_i4(INT32_MIN), bin_i4(-2), bin_i4(3), bin_i4(INT32_MAX)});
  expect_ascending(21, 1, {bin_i2(-32768), bin_i2(-1), bin_i2(0), bin_i2(32767)});
  expect_ascending(26, 1, {bin_i4(1), bin_i4(std::int32_t(0x7fffffff)), bin_i4(std::int32_t(0x80000000u)),
                           bin_i4(std::int32_t(0xffffffffu))});
  expect_ascending(26, 0, {"1", "2147483647", "2147483648", "4294967295"});
}

TEST(OpsColumnValue, NumericTextAndBinary) {
  expect_ascending(1700, 0, {"-Infinity", "-10.5", "-1", "-0.001", "0", "0.0001", "1.5", "2", "1e20", "Infinity",
                             "NaN"});
  EXPECT_EQ(cmp(1700, 0, "1.0", "1.00"), 0);
  std::vector<std::string> bin;
  for (auto s : {"-Infinity", "-10.5", "0", "1.25", "Infinity", "NaN"})
    bin.push_back(numeric_to_binary(*parse_numeric_text(s)));
  expect_ascending(1700, 1, bin);
}

TEST(OpsColumnValue, FloatsWithNaNAboveInfinityAndSignedZeroEqual) {
  expect_ascending(701, 0, {"-Infinity", "-1e+308", "-1.5", "0", "5e-324", "0.1", "1", "1.7976931348623157e+308",
                            "Infinity", "NaN"});
  EXPECT_EQ(cmp(701, 0, "-0", "0"), 0);
  EXPECT_EQ(cmp(701, 0, "NaN", "NaN"), 0);
  const double inf = std::numeric_limits<double>::infinity();
  expect_ascending(701, 1, {bin_f8(-inf), bin_f8(-2.5), bin_f8(0), bin_f8(0.30000000000000004), bin_f8(inf),
                            bin_f8(std::nan(""))});
  EXPECT_EQ(cmp(701, 1, bin_f8(-0.0), bin_f8(0.0)), 0);
  expect_ascending(700, 1, {bin_f4(-float(inf)), bin_f4(-1.5f), bin_f4(0.1f), bin_f4(std::nanf(""))});
  expect_ascending(700, 0, {"-Infinity", "-1.5", "0.1", "3.4028235e+38", "Infinity", "NaN"});
}

TEST(OpsColumnValue, BoolTextUuid) {
  expect_ascending(16, 0, {"f", "t"});
  expect_ascending(16, 1, {std::string(1, '\0'), std::string(1, '\1')});
  // Byte order: uppercase before lowercase, shorter prefix first, UTF-8 after ASCII.
  expect_ascending(25, 0, {"", "A", "B", "a", "ab", "b", "\xc3\xa9t\xc3\xa9", "\xe2\x82\xac"});
  expect_ascending(1042, 0, {"a", "ab ", "b"});
  EXPECT_EQ(cmp(1042, 0, "ab   ", "ab"), 0);
  EXPECT_NE(cmp(25, 0, "ab ", "ab"), 0);
  expect_ascending(2950, 0, {"00000000-0000-0000-0000-000000000000", "0fffffff-0000-0000-0000-000000000000",
                             "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "ffffffff-ffff-ffff-ffff-ffffffffffff"});
  EXPECT_EQ(cmp(2950, 0, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "{a0eebc999c0b4ef8bb6d6bb9bd380a11}"), 0);
  expect_ascending(2950, 1, {std::string(16, '\0'), std::string(15, '\0') + "\x80", std::string(16, '\xff')});
}

TEST(OpsColumnValue, DatesAndTimestampsInIsoStyle) {
  expect_ascending(1082, 0, {"-infinity", "4713-01-01 BC", "0001-12-31 BC", "0001-01-01", "1999-12-31", "2000-01-01",
                             "2024-02-29", "10000-01-01", "infinity"});
  expect_ascending(1082, 1, {bin_i4(INT32_MIN), bin_i4(-1), bin_i4(0), bin_i4(9000), bin_i4(INT32_MAX)});
  expect_ascending(1114, 0, {"-infinity", "0044-03-15 12:00:00 BC", "1970-01-01 00:00:00", "1970-01-01 00:00:00.000001",
                             "1970-01-01 00:00:00.5", "1999-12-31 23:59:59.999999", "2000-01-01 00:00:00",
                             "12345-06-07 08:09:10", "infinity"});
  expect_ascending(1184, 0, {"2000-01-01 00:00:00+05", "1999-12-31 23:30:00+00", "2000-01-01 00:00:00+00",
                             "1999-12-31 23:00:00-01:30", "2000-01-01 00:00:00-05:30:15"});
  EXPECT_EQ(cmp(1184, 0, "2000-01-01 05:00:00+05", "2000-01-01 00:00:00+00"), 0);
  // Text and binary agree: 2000-01-01 00:00:01 is 1000000 µs.
  protocol::SqlError e;
  auto t = type_of(1114);
  auto a = decode_value(t, "2000-01-01 00:00:01", 0, e);
  auto b = decode_value(t, bin_i8(1000000), 1, e);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(compare_decoded(*a, *b), 0);
  auto d1 = decode_value(type_of(1082), "1999-12-31", 0, e);
  auto d2 = decode_value(type_of(1082), bin_i4(-1), 1, e);
  ASSERT_TRUE(d1 && d2);
  EXPECT_EQ(compare_decoded(*d1, *d2), 0);
}

TEST(OpsColumnValue, ByteaAndTime) {
  expect_ascending(17, 0, {"\\x", "\\x00", "\\x0000", "\\x01", "\\x7f", "\\x80", "\\xff"});
  expect_ascending(17, 1, {"", std::string(1, '\0'), "\x7f", "\x80", std::string("\x80\x00", 2)});
  protocol::SqlError e;
  EXPECT_FALSE(decode_value(type_of(17), "abc\\000", 0, e));
  EXPECT_EQ(e.sqlstate, "0A000");
  EXPECT_NE(e.message.find("bytea_output = hex"), std::string::npos);
  expect_ascending(1083, 0, {"00:00:00", "00:00:00.000001", "09:59:59.5", "10:00:00", "23:59:59.999999", "24:00:00"});
  expect_ascending(1083, 1, {bin_i8(0), bin_i8(1), bin_i8(86400000000LL)});
  EXPECT_EQ(cmp(1083, 0, "12:00:00.5", "12:00:00.500000"), 0);
}

TEST(OpsColumnValue, NonIsoDateStyleIsRefused) {
  protocol::SqlError e;
  for (auto s : {"12/31/1999", "31.12.1999", "12-31-1999", "Fri Dec 31 00:00:00 1999"}) {
    EXPECT_FALSE(decode_value(type_of(1114), s, 0, e)) << s;
    EXPECT_EQ(e.sqlstate, "0A000");
    EXPECT_NE(e.message.find("DateStyle ISO"), std::string::npos);
    EXPECT_FALSE(decode_value(type_of(1082), s, 0, e)) << s;
  }
}

TEST(OpsColumnValue, UnsupportedTypesAreNamed) {
  protocol::SqlError e;
  EXPECT_FALSE(comparable_type(3802, MergeContext{true}, e));
  EXPECT_EQ(e.message, "cross-shard ORDER BY/GROUP BY on a column of type jsonb is not supported");
  EXPECT_FALSE(comparable_type(1007, MergeContext{true}, e));
  EXPECT_NE(e.message.find("integer[]"), std::string::npos);
  EXPECT_FALSE(comparable_type(99999, MergeContext{true}, e));
  EXPECT_NE(e.message.find("type OID 99999"), std::string::npos);
  EXPECT_FALSE(comparable_type(1043, MergeContext{false}, e));
  EXPECT_EQ(e.sqlstate, "0A000");
  EXPECT_TRUE(comparable_type(1043, MergeContext{true}, e));
}

TEST(OpsColumnValue, MalformedValuesFailWithTheType) {
  protocol::SqlError e;
  EXPECT_FALSE(decode_value(type_of(20), "12x", 0, e));
  EXPECT_EQ(e.sqlstate, "08P01");
  EXPECT_NE(e.message.find("bigint"), std::string::npos);
  EXPECT_FALSE(decode_value(type_of(20), "abc", 1, e));
  EXPECT_FALSE(decode_value(type_of(2950), "1234", 0, e));
  EXPECT_FALSE(decode_value(type_of(16), "maybe", 0, e));
  EXPECT_FALSE(decode_value(type_of(701), "1.5x", 0, e));
}

}  // namespace
}  // namespace shardline::proxy::exec::ops
