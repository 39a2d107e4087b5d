#include "proxy/exec/ops/numeric_text.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

namespace shardline::proxy::exec::ops {

namespace {

constexpr int kMinSigDigits = 16;      // NUMERIC_MIN_SIG_DIGITS
constexpr int kMaxDisplayScale = 1000;  // NUMERIC_MAX_DISPLAY_SCALE
constexpr int kMaxExponent = 100000;    // beyond anything numeric_in accepts

void strip_leading_zeros(std::string& d) {
  std::size_t i = 0;
  while (i < d.size() && d[i] == '0') ++i;
  d.erase(0, i);
}

Numeric special(Numeric::Kind k) {
  Numeric n;
  n.kind = k;
  return n;
}

/// Digits of |n| * 10^scale (scale >= n.scale).
std::string scaled_digits(const Numeric& n, int scale) { return n.digits + std::string(std::size_t(scale - n.scale), '0'); }

/// Compares magnitudes of two digit strings at the same scale.
int compare_magnitude(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  int c = a.compare(b);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

std::string add_magnitude(const std::string& a, const std::string& b) {
  std::string out;
  out.reserve(std::max(a.size(), b.size()) + 1);
  int carry = 0;
  for (std::size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    int s = carry;
    if (i < a.size()) s += a[a.size() - 1 - i] - '0';
    if (i < b.size()) s += b[b.size() - 1 - i] - '0';
    out.push_back(char('0' + s % 10));
    carry = s / 10;
  }
  if (carry) out.push_back(char('0' + carry));
  std::reverse(out.begin(), out.end());
  strip_leading_zeros(out);
  return out;
}

/// a - b for |a| >= |b|.
std::string sub_magnitude(const std::string& a, const std::string& b) {
  std::string out;
  out.reserve(a.size());
  int borrow = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    int s = (a[a.size() - 1 - i] - '0') - borrow;
    if (i < b.size()) s -= b[b.size() - 1 - i] - '0';
    borrow = s < 0;
    if (s < 0) s += 10;
    out.push_back(char('0' + s));
  }
  std::reverse(out.begin(), out.end());
  strip_leading_zeros(out);
  return out;
}

/// The base-10000 layout PostgreSQL stores: digits with the weight of the first, leading and
/// trailing zero digits stripped (zero: no digits, weight 0).
struct BaseDigits {
  std::vector<std::int16_t> digits;
  int weight = 0;
};

BaseDigits base_digits(const Numeric& n) {
  BaseDigits out;
  const std::size_t len = n.digits.size(), scale = std::size_t(n.scale);
  std::string int_part = len > scale ? n.digits.substr(0, len - scale) : std::string();
  std::string frac = len > scale ? n.digits.substr(len - scale) : std::string(scale - len, '0') + n.digits;
  int_part.insert(0, (4 - int_part.size() % 4) % 4, '0');
  frac.append((4 - frac.size() % 4) % 4, '0');
  std::string all = int_part + frac;
  int weight = int(int_part.size() / 4) - 1;
  for (std::size_t i = 0; i < all.size(); i += 4) out.digits.push_back(std::int16_t(std::stoi(all.substr(i, 4))));
  std::size_t lead = 0;
  while (lead < out.digits.size() && out.digits[lead] == 0) ++lead;
  out.digits.erase(out.digits.begin(), out.digits.begin() + std::ptrdiff_t(lead));
  weight -= int(lead);
  while (!out.digits.empty() && out.digits.back() == 0) out.digits.pop_back();
  out.weight = out.digits.empty() ? 0 : weight;
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

void put16(std::string& out, std::uint16_t v) {
  out.push_back(char(v >> 8));
  out.push_back(char(v & 0xff));
}

std::uint16_t get16(std::string_view s, std::size_t at) {
  return std::uint16_t((std::uint8_t(s[at]) << 8) | std::uint8_t(s[at + 1]));
}

}  // namespace

Numeric Numeric::from_int64(std::int64_t v) {
  Numeric n;
  n.negative = v < 0;
  unsigned __int128 m = v < 0 ? (unsigned __int128)(-(__int128)v) : (unsigned __int128)v;
  while (m) {
    n.digits.push_back(char('0' + int(m % 10)));
    m /= 10;
  }
  std::reverse(n.digits.begin(), n.digits.end());
  return n;
}

std::optional<Numeric> parse_numeric_text(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  if (iequals(text, "nan")) return special(Numeric::Kind::NaN);
  for (std::string_view inf : {"infinity", "+infinity", "inf", "+inf"})
    if (iequals(text, inf)) return special(Numeric::Kind::PosInf);
  for (std::string_view inf : {"-infinity", "-inf"})
    if (iequals(text, inf)) return special(Numeric::Kind::NegInf);
  Numeric n;
  std::size_t i = 0;
  bool negative = false;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) negative = text[i++] == '-';
  std::string digits;
  int frac = 0;
  bool point = false;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      digits.push_back(c);
      if (point) ++frac;
    } else if (c == '.' && !point) {
      point = true;
    } else {
      break;
    }
  }
  if (digits.empty()) return std::nullopt;
  long exponent = 0;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    bool eneg = false;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) eneg = text[i++] == '-';
    if (i == text.size()) return std::nullopt;
    for (; i < text.size(); ++i) {
      if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
      exponent = exponent * 10 + (text[i] - '0');
      if (exponent > kMaxExponent) return std::nullopt;
    }
    if (eneg) exponent = -exponent;
  }
  if (i != text.size()) return std::nullopt;
  long shift = exponent - frac;  // value = digits * 10^shift
  if (shift >= 0) {
    n.digits = digits + std::string(std::size_t(shift), '0');
    n.scale = 0;
  } else {
    n.digits = digits;
    n.scale = int(-shift);
  }
  strip_leading_zeros(n.digits);
  n.negative = negative && !n.digits.empty();
  return n;
}

std::optional<Numeric> parse_numeric_binary(std::string_view b) {
  if (b.size() < 8) return std::nullopt;
  const int ndigits = std::int16_t(get16(b, 0));
  const int weight = std::int16_t(get16(b, 2));
  const std::uint16_t sign = get16(b, 4);
  const int dscale = std::int16_t(get16(b, 6));
  if (ndigits < 0 || dscale < 0 || dscale > 0x3FFF || b.size() != 8 + 2 * std::size_t(ndigits)) return std::nullopt;
  if (sign == 0xC000) return special(Numeric::Kind::NaN);
  if (sign == 0xD000) return special(Numeric::Kind::PosInf);
  if (sign == 0xF000) return special(Numeric::Kind::NegInf);
  if (sign != 0x0000 && sign != 0x4000) return std::nullopt;
  const int low = std::min(0, weight - ndigits + 1);  // weight of the last group written
  std::string all;
  for (int w = std::max(weight, 0); w >= low; --w) {
    int idx = weight - w;
    int d = idx >= 0 && idx < ndigits ? std::int16_t(get16(b, 8 + 2 * std::size_t(idx))) : 0;
    if (d < 0 || d > 9999) return std::nullopt;
    std::string g = std::to_string(d);
    all += std::string(4 - g.size(), '0') + g;
  }
  const int have = -low * 4;  // fractional digits in `all`
  if (have > dscale) all.resize(all.size() - std::size_t(have - dscale));  // beyond dscale: not displayed
  else all.append(std::size_t(dscale - have), '0');
  Numeric n;
  n.digits = std::move(all);
  n.scale = dscale;
  strip_leading_zeros(n.digits);
  n.negative = sign == 0x4000 && !n.digits.empty();
  return n;
}

std::string numeric_to_text(const Numeric& n) {
  switch (n.kind) {
    case Numeric::Kind::NaN: return "NaN";
    case Numeric::Kind::PosInf: return "Infinity";
    case Numeric::Kind::NegInf: return "-Infinity";
    case Numeric::Kind::Finite: break;
  }
  std::string d = n.digits;
  const std::size_t scale = std::size_t(n.scale);
  if (d.size() < scale + 1) d.insert(0, scale + 1 - d.size(), '0');
  if (scale) d.insert(d.size() - scale, 1, '.');
  if (n.negative && !n.digits.empty()) d.insert(0, 1, '-');
  return d;
}

std::string numeric_to_binary(const Numeric& n) {
  std::string out;
  std::uint16_t sign = 0;
  switch (n.kind) {
    case Numeric::Kind::NaN: sign = 0xC000; break;
    case Numeric::Kind::PosInf: sign = 0xD000; break;
    case Numeric::Kind::NegInf: sign = 0xF000; break;
    case Numeric::Kind::Finite: sign = n.negative && !n.digits.empty() ? 0x4000 : 0; break;
  }
  if (n.kind != Numeric::Kind::Finite) {
    // The server stores specials in a short header whose dscale bits numeric_send reads back:
    // 0 for NaN (0xC000) but 32 for the infinities (0xD000 / 0xF000 & 0x1F80, >> 7).
    put16(out, 0), put16(out, 0), put16(out, sign), put16(out, n.kind == Numeric::Kind::NaN ? 0 : 32);
    return out;
  }
  BaseDigits bd = base_digits(n);
  put16(out, std::uint16_t(bd.digits.size()));
  put16(out, std::uint16_t(std::int16_t(bd.weight)));
  put16(out, sign);
  put16(out, std::uint16_t(n.scale));
  for (auto d : bd.digits) put16(out, std::uint16_t(d));
  return out;
}

int numeric_compare(const Numeric& a, const Numeric& b) {
  auto rank = [](const Numeric& n) {
    switch (n.kind) {
      case Numeric::Kind::NegInf: return 0;
      case Numeric::Kind::Finite: return 1;
      case Numeric::Kind::PosInf: return 2;
      case Numeric::Kind::NaN: return 3;
    }
    return 3;
  };
  if (rank(a) != rank(b)) return rank(a) < rank(b) ? -1 : 1;
  if (a.kind != Numeric::Kind::Finite) return 0;
  const int sa = a.digits.empty() ? 0 : (a.negative ? -1 : 1);
  const int sb = b.digits.empty() ? 0 : (b.negative ? -1 : 1);
  if (sa != sb) return sa < sb ? -1 : 1;
  if (sa == 0) return 0;
  const int scale = std::max(a.scale, b.scale);
  int m = compare_magnitude(scaled_digits(a, scale), scaled_digits(b, scale));
  return sa < 0 ? -m : m;
}

Numeric numeric_add(const Numeric& a, const Numeric& b) {
  using K = Numeric::Kind;
  if (a.kind == K::NaN || b.kind == K::NaN) return special(K::NaN);
  if (a.kind != K::Finite || b.kind != K::Finite) {
    if ((a.kind == K::PosInf && b.kind == K::NegInf) || (a.kind == K::NegInf && b.kind == K::PosInf))
      return special(K::NaN);
    return special(a.kind != K::Finite ? a.kind : b.kind);
  }
  Numeric r;
  r.scale = std::max(a.scale, b.scale);
  std::string x = scaled_digits(a, r.scale), y = scaled_digits(b, r.scale);
  if (a.negative == b.negative) {
    r.digits = add_magnitude(x, y);
    r.negative = a.negative;
  } else if (compare_magnitude(x, y) >= 0) {
    r.digits = sub_magnitude(x, y);
    r.negative = a.negative;
  } else {
    r.digits = sub_magnitude(y, x);
    r.negative = b.negative;
  }
  r.negative = r.negative && !r.digits.empty();
  return r;
}

Numeric numeric_div_count(const Numeric& a, std::int64_t count) {
  if (a.kind != Numeric::Kind::Finite) return a;
  // select_div_scale: estimate the quotient's base-10000 weight from both first digits.
  BaseDigits x = base_digits(a), y = base_digits(Numeric::from_int64(count));
  const int w1 = x.digits.empty() ? 0 : x.weight, f1 = x.digits.empty() ? 0 : x.digits.front();
  const int w2 = y.digits.empty() ? 0 : y.weight, f2 = y.digits.empty() ? 0 : y.digits.front();
  int qweight = w1 - w2;
  if (f1 <= f2) --qweight;
  int rscale = kMinSigDigits - qweight * 4;
  rscale = std::min(std::max({rscale, a.scale, 0}), kMaxDisplayScale);
  // The exact quotient at rscale, rounded half away from zero (div_var with round = true).
  const std::string dividend = a.digits + std::string(std::size_t(rscale - a.scale), '0');
  const auto divisor = (unsigned __int128)count;
  std::string q;
  unsigned __int128 rem = 0;
  for (char c : dividend) {
    rem = rem * 10 + unsigned(c - '0');
    q.push_back(char('0' + int(rem / divisor)));
    rem %= divisor;
  }
  strip_leading_zeros(q);
  if (rem * 2 >= divisor) q = add_magnitude(q, "1");
  Numeric r;
  r.digits = std::move(q);
  r.scale = rscale;
  r.negative = a.negative && !r.digits.empty();
  return r;
}

}  // namespace shardline::proxy::exec::ops
