#include "router/sharding/pg_numeric.hpp"

#include <limits>

namespace shardline::router {
namespace {

bool is_pg_space(char ch) {
  return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r';
}

bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }

/// pg_strncasecmp(text + pos, word, strlen(word)) == 0
bool starts_with_nocase(std::string_view text, std::size_t pos, std::string_view word) {
  if (text.size() - pos < word.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    char ch = text[pos + i];
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    char w = word[i];
    if (w >= 'A' && w <= 'Z') w = static_cast<char>(w - 'A' + 'a');
    if (ch != w) return false;
  }
  return true;
}

/// Magnitude of a digit string with `zeros` appended, if it is at most 2^63.
std::optional<std::uint64_t> magnitude_of(std::string_view digits, std::int64_t zeros) {
  constexpr std::uint64_t kLimit = std::uint64_t{1} << 63;
  if (digits.empty()) return 0;
  if (std::int64_t(digits.size()) + zeros > 19) return std::nullopt;
  std::uint64_t m = 0;
  auto push = [&](unsigned d) {
    if (m > (kLimit - d) / 10) return false;
    m = m * 10 + d;
    return true;
  };
  for (char c : digits)
    if (!push(unsigned(c - '0'))) return std::nullopt;
  for (std::int64_t i = 0; i < zeros; ++i)
    if (!push(0)) return std::nullopt;
  return m;
}

std::optional<std::int64_t> signed_of(bool negative, std::uint64_t m) {
  constexpr std::uint64_t kLimit = std::uint64_t{1} << 63;
  if (negative) {
    if (m > kLimit) return std::nullopt;
    return m == 0 ? 0 : -static_cast<std::int64_t>(m - 1) - 1;
  }
  if (m >= kLimit) return std::nullopt;
  return static_cast<std::int64_t>(m);
}

}  // namespace

std::optional<PgNumeric> PgNumeric::parse(std::string_view text, std::string* error) {
  auto bad = [&] {
    if (error) *error = "invalid input syntax for type numeric: \"" + std::string(text) + "\"";
    return std::nullopt;
  };
  PgNumeric n;
  std::size_t pos = 0;
  while (pos < text.size() && is_pg_space(text[pos])) ++pos;
  struct Word {
    std::string_view word;
    Special special;
  };
  static constexpr Word kWords[] = {{"NaN", Special::NaN},          {"Infinity", Special::PosInf},
                                    {"+Infinity", Special::PosInf}, {"-Infinity", Special::NegInf},
                                    {"inf", Special::PosInf},       {"+inf", Special::PosInf},
                                    {"-inf", Special::NegInf}};
  bool special = false;
  for (const auto& w : kWords) {
    if (starts_with_nocase(text, pos, w.word)) {
      n.special_ = w.special;
      pos += w.word.size();
      special = true;
      break;
    }
  }
  if (!special) {
    if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) n.negative_ = text[pos++] == '-';
    std::string mantissa;
    std::int64_t frac_digits = 0;
    bool have_digit = false, have_point = false;
    for (; pos < text.size(); ++pos) {
      const char c = text[pos];
      if (is_digit(c)) {
        have_digit = true;
        mantissa += c;
        if (have_point) ++frac_digits;
      } else if (c == '.' && !have_point) {
        have_point = true;
      } else {
        break;
      }
    }
    if (!have_digit) return bad();
    std::int64_t exponent = 0;
    if (pos < text.size() && (text[pos] == 'e' || text[pos] == 'E')) {
      ++pos;
      bool neg = false;
      if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) neg = text[pos++] == '-';
      if (pos >= text.size() || !is_digit(text[pos])) return bad();
      for (; pos < text.size() && is_digit(text[pos]); ++pos) {
        exponent = exponent * 10 + (text[pos] - '0');
        if (exponent >= std::numeric_limits<int>::max() / 2) {
          if (error) *error = "value overflows numeric format";
          return std::nullopt;
        }
      }
      if (neg) exponent = -exponent;
    }
    n.dscale_ = std::max<std::int64_t>(0, frac_digits - exponent);
    std::size_t first = mantissa.find_first_not_of('0');
    if (first == std::string::npos) {
      n.digits_.clear();
      n.exponent_ = 0;
    } else {
      std::size_t last = mantissa.find_last_not_of('0');
      n.digits_ = mantissa.substr(first, last + 1 - first);
      n.exponent_ = std::int64_t(mantissa.size() - 1 - last) - frac_digits + exponent;
      // numeric's storage limits (NUMERIC_WEIGHT_MAX base-10000 digits before the point,
      // NUMERIC_DSCALE_MAX after it).
      const std::int64_t int_digits = std::int64_t(n.digits_.size()) + n.exponent_;
      if (int_digits > 4 * 0x8000 || n.dscale_ > 0x3FFF) {
        if (error) *error = "value overflows numeric format";
        return std::nullopt;
      }
    }
  }
  while (pos < text.size() && is_pg_space(text[pos])) ++pos;
  if (pos != text.size()) return bad();
  return n;
}

PgNumeric PgNumeric::from_int(std::int64_t value) {
  PgNumeric n;
  n.negative_ = value < 0;
  std::uint64_t m = value < 0 ? std::uint64_t(0) - std::uint64_t(value) : std::uint64_t(value);
  std::string s = std::to_string(m);
  std::size_t last = s.find_last_not_of('0');
  if (last != std::string::npos) {
    n.exponent_ = std::int64_t(s.size() - 1 - last);
    n.digits_ = s.substr(0, last + 1);
  }
  return n;
}

bool PgNumeric::is_integral() const { return special_ == Special::None && (digits_.empty() || exponent_ >= 0); }

std::optional<std::int64_t> PgNumeric::exact_int64() const {
  if (!is_integral()) return std::nullopt;
  auto m = magnitude_of(digits_, exponent_);
  if (!m) return std::nullopt;
  return signed_of(negative_, *m);
}

std::optional<std::int64_t> PgNumeric::rounded_int64() const {
  if (special_ != Special::None) return std::nullopt;
  if (is_integral()) return exact_int64();
  const std::int64_t keep = std::int64_t(digits_.size()) + exponent_;  // digits before the point
  std::string_view digits(digits_);
  std::uint64_t m = 0;
  bool up = false;
  if (keep > 0) {
    auto whole = magnitude_of(digits.substr(0, std::size_t(keep)), 0);
    if (!whole) return std::nullopt;
    m = *whole;
    up = digits[std::size_t(keep)] >= '5';
  } else {
    up = keep == 0 && digits[0] >= '5';
  }
  if (up) {
    if (m == std::uint64_t{1} << 63) return std::nullopt;
    ++m;
  }
  return signed_of(negative_, m);
}

std::optional<std::string> PgNumeric::text() const {
  switch (special_) {
    case Special::NaN: return "NaN";
    case Special::PosInf: return "Infinity";
    case Special::NegInf: return "-Infinity";
    case Special::None: break;
  }
  const std::int64_t len = std::int64_t(digits_.size());
  if (len + std::max<std::int64_t>(exponent_, 0) + dscale_ > 10000) return std::nullopt;
  std::string whole, frac;
  if (exponent_ >= 0) {
    whole = digits_ + std::string(std::size_t(exponent_), '0');
  } else if (len + exponent_ > 0) {
    whole = digits_.substr(0, std::size_t(len + exponent_));
    frac = digits_.substr(std::size_t(len + exponent_));
  } else {
    frac = std::string(std::size_t(-(len + exponent_)), '0') + digits_;
  }
  if (whole.empty()) whole = "0";
  if (std::int64_t(frac.size()) < dscale_) frac.append(std::size_t(dscale_) - frac.size(), '0');
  std::string out = negative_ && !digits_.empty() ? "-" : "";
  out += whole;
  if (!frac.empty()) out += "." + frac;
  return out;
}

void PgNumeric::negate() {
  if (special_ == Special::PosInf) special_ = Special::NegInf;
  else if (special_ == Special::NegInf) special_ = Special::PosInf;
  else if (special_ == Special::None) negative_ = !negative_;
}

}  // namespace shardline::router
