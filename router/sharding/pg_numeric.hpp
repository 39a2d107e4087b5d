#pragma once
// An exact decimal with PostgreSQL's `numeric` semantics where routing needs them: a literal
// such as 1.0, 1e3 or 99999999999999999999 is a numeric constant in PostgreSQL, and whether it
// equals an integer key, which integer it rounds to when assigned to an integer column, or the
// text it becomes when assigned to a text column decides the row's shard
// (src/backend/utils/adt/numeric.c: numeric_in, numeric_out, numeric_int8).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shardline::router {

class PgNumeric {
 public:
  enum class Special { None, NaN, PosInf, NegInf };

  /// numeric_in of PostgreSQL 15: optional whitespace, sign, digits with an optional point and
  /// exponent, or NaN / Infinity / inf in any case. On bad input returns nullopt and stores
  /// PostgreSQL's message (`invalid input syntax for type numeric: "x"`) in `error`.
  static std::optional<PgNumeric> parse(std::string_view text, std::string* error);
  static PgNumeric from_int(std::int64_t value);

  Special special() const { return special_; }
  bool is_zero() const { return special_ == Special::None && digits_.empty(); }
  bool is_integral() const;
  /// The value when it is an integer that fits int64.
  std::optional<std::int64_t> exact_int64() const;
  /// Rounded half away from zero (numeric -> integer casts); nullopt when outside int64 or special.
  std::optional<std::int64_t> rounded_int64() const;
  /// numeric_out: the display scale of the input is kept (1.50 stays "1.50", 1e3 is "1000").
  /// nullopt when the text would be unreasonably long (more than 10000 digits).
  std::optional<std::string> text() const;
  void negate();

 private:
  Special special_ = Special::None;
  bool negative_ = false;
  std::string digits_;  ///< significant digits without leading or trailing zeros; empty = 0
  std::int64_t exponent_ = 0;  ///< value = digits_ * 10^exponent_
  std::int64_t dscale_ = 0;    ///< digits shown after the point
};

}  // namespace shardline::router
