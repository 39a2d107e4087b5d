// Exact numeric arithmetic with PostgreSQL's display-scale and special-value rules.

#include "proxy/exec/ops/numeric_text.hpp"

#include <gtest/gtest.h>

#include "tests/unit/proxy/ops_test_support.hpp"

namespace shardline::proxy::exec::ops {
namespace {

using testing::bin_i2;

Numeric num(std::string_view s) {
  auto n = parse_numeric_text(s);
  EXPECT_TRUE(n) << s;
  return n.value_or(Numeric{});
}
std::string text(const Numeric& n) { return numeric_to_text(n); }

TEST(OpsNumeric, TextRoundTripKeepsDisplayScale) {
  for (auto s : {"0", "0.00", "-1.50", "123456789012345678901234567890.000000001", "0.0001", "-0.0001234",
                 "NaN", "Infinity", "-Infinity", "10000", "9999.9999"})
    EXPECT_EQ(text(num(s)), s);
  EXPECT_EQ(text(num("-0.00")), "0.00");
  EXPECT_EQ(text(num(" +1.5e3 ")), "1500");
  EXPECT_EQ(text(num("1.5e-3")), "0.0015");
  EXPECT_EQ(text(num("12e-1")), "1.2");
  EXPECT_EQ(text(num("inf")), "Infinity");
  EXPECT_EQ(text(num("nan")), "NaN");
  EXPECT_EQ(text(num(".5")), "0.5");
  for (auto bad : {"", "abc", "1.2.3", "1e", "--1", "1 2"}) EXPECT_FALSE(parse_numeric_text(bad)) << bad;
}

TEST(OpsNumeric, BinaryLayoutIsTheServers) {
  // 1234.5678 (dscale 4): ndigits 2, weight 0, sign +, dscale 4, digits 1234 5678.
  EXPECT_EQ(numeric_to_binary(num("1234.5678")),
            bin_i2(2) + bin_i2(0) + bin_i2(0) + bin_i2(4) + bin_i2(1234) + bin_i2(5678));
  // -0.00012 (dscale 5): weight -1, digits 0001 2000 -> leading zero digit kept? no: 0.0001|2000
  EXPECT_EQ(numeric_to_binary(num("-0.00012")),
            bin_i2(2) + bin_i2(-1) + bin_i2(0x4000) + bin_i2(5) + bin_i2(1) + bin_i2(2000));
  // 10000000 (dscale 0): digits 1000 0000 -> trailing zero digit stripped: ndigits 1, weight 1.
  EXPECT_EQ(numeric_to_binary(num("10000000")), bin_i2(1) + bin_i2(1) + bin_i2(0) + bin_i2(0) + bin_i2(1000));
  EXPECT_EQ(numeric_to_binary(num("0.000")), bin_i2(0) + bin_i2(0) + bin_i2(0) + bin_i2(3));
  EXPECT_EQ(numeric_to_binary(num("NaN")), bin_i2(0) + bin_i2(0) + bin_i2(std::int16_t(0xC000)) + bin_i2(0));
  EXPECT_EQ(numeric_to_binary(num("-Infinity")), bin_i2(0) + bin_i2(0) + bin_i2(std::int16_t(0xF000)) + bin_i2(32));
  for (auto s : {"1234.5678", "-0.00012", "10000000", "0.000", "NaN", "Infinity", "-Infinity", "5", "0.5",
                 "-99999999.00000001", "1e40"}) {
    auto b = numeric_to_binary(num(s));
    auto back = parse_numeric_binary(b);
    ASSERT_TRUE(back) << s;
    EXPECT_EQ(text(*back), text(num(s)));
  }
  EXPECT_FALSE(parse_numeric_binary("abc"));
  EXPECT_FALSE(parse_numeric_binary(bin_i2(1) + bin_i2(0) + bin_i2(0) + bin_i2(0) + bin_i2(10000)));
}

TEST(OpsNumeric, CompareIsScaleInsensitiveWithSpecialsAtTheEnds) {
  EXPECT_EQ(numeric_compare(num("1.0"), num("1.00")), 0);
  EXPECT_EQ(numeric_compare(num("0"), num("-0.000")), 0);
  EXPECT_LT(numeric_compare(num("-2"), num("-1.999")), 0);
  EXPECT_LT(numeric_compare(num("0.09"), num("0.1")), 0);
  EXPECT_GT(numeric_compare(num("10"), num("9.99999")), 0);
  EXPECT_LT(numeric_compare(num("-Infinity"), num("-1e100")), 0);
  EXPECT_LT(numeric_compare(num("1e100"), num("Infinity")), 0);
  EXPECT_LT(numeric_compare(num("Infinity"), num("NaN")), 0);
  EXPECT_EQ(numeric_compare(num("NaN"), num("NaN")), 0);
}

TEST(OpsNumeric, AddKeepsTheLargerScaleAndPropagatesSpecials) {
  EXPECT_EQ(text(numeric_add(num("1.5"), num("2.25"))), "3.75");
  EXPECT_EQ(text(numeric_add(num("1.50"), num("-1.5"))), "0.00");
  EXPECT_EQ(text(numeric_add(num("-10"), num("0.001"))), "-9.999");
  EXPECT_EQ(text(numeric_add(num("99999999999999999999"), num("1"))), "100000000000000000000");
  EXPECT_EQ(text(numeric_add(num("NaN"), num("1"))), "NaN");
  EXPECT_EQ(text(numeric_add(num("Infinity"), num("-Infinity"))), "NaN");
  EXPECT_EQ(text(numeric_add(num("Infinity"), num("5"))), "Infinity");
  EXPECT_EQ(text(numeric_add(num("-3"), num("-Infinity"))), "-Infinity");
}

TEST(OpsNumeric, DivisionByCountUsesSelectDivScale) {
  // Values checked against PostgreSQL 15 (SELECT x::numeric / n).
  EXPECT_EQ(text(numeric_div_count(num("10"), 4)), "2.5000000000000000");
  EXPECT_EQ(text(numeric_div_count(num("1"), 3)), "0.33333333333333333333");
  EXPECT_EQ(text(numeric_div_count(num("2"), 3)), "0.66666666666666666667");
  EXPECT_EQ(text(numeric_div_count(num("-2"), 3)), "-0.66666666666666666667");
  EXPECT_EQ(text(numeric_div_count(num("0"), 7)), "0.00000000000000000000");
  EXPECT_EQ(text(numeric_div_count(num("123456789"), 2)), "61728394.500000000000");
  EXPECT_EQ(text(numeric_div_count(num("1.123456789012345678901"), 1)), "1.123456789012345678901");
  EXPECT_EQ(text(numeric_div_count(num("NaN"), 2)), "NaN");
  EXPECT_EQ(text(numeric_div_count(num("-Infinity"), 2)), "-Infinity");
}

}  // namespace
}  // namespace shardline::proxy::exec::ops
