#pragma once
// PostgreSQL's numeric, exactly: parsed from its text or binary wire form, compared, added and
// divided with the server's rules (display scale, NaN and infinities, rounding), and written
// back in either form, so merged sums and averages are digit for digit what one database gives.
// Digits are kept in base 10; the base-10000 layout is computed where PostgreSQL's rules or
// its binary format use it (weights, select_div_scale).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shardline::proxy::exec::ops {

struct Numeric {
  enum class Kind { Finite, NaN, PosInf, NegInf } kind = Kind::Finite;
  bool negative = false;  ///< Finite and not zero
  /// Decimal digits of |value| * 10^scale without leading zeros ("" is zero).
  std::string digits;
  int scale = 0;  ///< display scale (dscale): fractional digits written on output

  static Numeric from_int64(std::int64_t v);
  bool is_zero() const { return kind == Kind::Finite && digits.empty(); }
};

/// numeric_in's syntax: optional blanks and sign, digits with an optional point, an optional
/// exponent; NaN, Infinity, inf (any case). nullopt when `text` is not a number.
std::optional<Numeric> parse_numeric_text(std::string_view text);
/// numeric_recv's layout: ndigits, weight, sign, dscale, then base-10000 digits (all int16 BE).
std::optional<Numeric> parse_numeric_binary(std::string_view bytes);
/// numeric_out: "-12.50", "NaN", "Infinity", "-Infinity".
std::string numeric_to_text(const Numeric& n);
/// numeric_send: leading and trailing zero base-10000 digits stripped, as the server does.
std::string numeric_to_binary(const Numeric& n);

/// PostgreSQL's btree order: scale-insensitive (1.0 = 1.00), -Infinity < finite < Infinity <
/// NaN, NaN = NaN. Returns <0, 0, >0.
int numeric_compare(const Numeric& a, const Numeric& b);
/// numeric_add: display scale max(a, b); NaN with anything or +Inf with -Inf is NaN.
Numeric numeric_add(const Numeric& a, const Numeric& b);
/// numeric_div(a, count) as avg's final step computes it: result scale by select_div_scale,
/// rounded half away from zero. `count` > 0.
Numeric numeric_div_count(const Numeric& a, std::int64_t count);

}  // namespace shardline::proxy::exec::ops
