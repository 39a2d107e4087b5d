// KeyDatum: a tenant key value as the statement gives it (literal, parameter, cast, sign) and
// the logical shard it hashes to. A little over our usual ~500 lines: input, cast and outcome
// share the type helpers below, and splitting them would put those helpers in a header.

#include "router/sharding/key_datum.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "router/sharding/shard_key.hpp"
#include "router/sharding/tenant_key.hpp"

namespace shardline::router {
namespace {

std::string_view type_name(SqlType t) {
  switch (t) {
    case SqlType::Unknown: return "unknown";
    case SqlType::Int2: return "smallint";
    case SqlType::Int4: return "integer";
    case SqlType::Int8: return "bigint";
    case SqlType::Numeric: return "numeric";
    case SqlType::Float4: return "real";
    case SqlType::Float8: return "double precision";
    case SqlType::Text: return "text";
    case SqlType::Uuid: return "uuid";
  }
  return "unknown";
}

bool is_int(SqlType t) { return t == SqlType::Int2 || t == SqlType::Int4 || t == SqlType::Int8; }
bool is_float(SqlType t) { return t == SqlType::Float4 || t == SqlType::Float8; }

KeyType key_type_of_int(SqlType t) {
  return t == SqlType::Int2 ? KeyType::SmallInt : t == SqlType::Int4 ? KeyType::Integer : KeyType::BigInt;
}

bool fits(SqlType t, std::int64_t v) {
  switch (t) {
    case SqlType::Int2: return v >= std::numeric_limits<std::int16_t>::min() && v <= std::numeric_limits<std::int16_t>::max();
    case SqlType::Int4: return v >= std::numeric_limits<std::int32_t>::min() && v <= std::numeric_limits<std::int32_t>::max();
    default: return true;
  }
}

/// FLOAT8_FITS_IN_INT16/32/64 of c.h, applied after rint().
bool float_fits(SqlType t, double r) {
  switch (t) {
    case SqlType::Int2: return r >= -32768.0 && r < 32768.0;
    case SqlType::Int4: return r >= -2147483648.0 && r < 2147483648.0;
    default: return r >= -9223372036854775808.0 && r < 9223372036854775808.0;
  }
}

bool is_pg_space(char ch) {
  return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r';
}

bool looks_integer(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size() && is_pg_space(s[i])) ++i;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  std::size_t digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  while (i < s.size() && is_pg_space(s[i])) ++i;
  return digits > 0 && i == s.size();
}

/// float8in / float4in: strtod with PostgreSQL's checks.
std::optional<double> parse_float(SqlType t, std::string_view text, std::string* sqlstate, std::string* error) {
  const std::string s(text);
  const std::string name(type_name(t));
  const char* p = s.c_str();
  while (*p && is_pg_space(*p)) ++p;
  char* end = nullptr;
  errno = 0;
  double v = t == SqlType::Float4 ? double(std::strtof(p, &end)) : std::strtod(p, &end);
  if (*p == '\0' || end == p) {
    *sqlstate = "22P02";
    *error = "invalid input syntax for type " + name + ": \"" + s + "\"";
    return std::nullopt;
  }
  if (errno == ERANGE && (v == 0.0 || std::isinf(v))) {
    *sqlstate = "22003";
    *error = "\"" + s + "\" is out of range for type " + name;
    return std::nullopt;
  }
  while (*end && is_pg_space(*end)) ++end;
  if (*end != '\0') {
    *sqlstate = "22P02";
    *error = "invalid input syntax for type " + name + ": \"" + s + "\"";
    return std::nullopt;
  }
  return v;
}

std::uint64_t big_endian(std::span<const std::byte> b) {
  std::uint64_t bits = 0;
  for (std::byte x : b) bits = (bits << 8) | std::uint64_t(x);
  return bits;
}

/// numeric_recv: ndigits, weight, sign, dscale (int16 each), then base-10000 digits.
std::optional<PgNumeric> numeric_recv(std::span<const std::byte> b, std::string* error) {
  auto i16 = [&](std::size_t at) { return std::int16_t(std::uint16_t(big_endian(b.subspan(at, 2)))); };
  if (b.size() < 8) return std::nullopt;
  const int ndigits = i16(0), weight = i16(2), dscale = i16(6);
  const std::uint16_t sign = std::uint16_t(i16(4));
  if (ndigits < 0 || b.size() != 8 + 2 * std::size_t(ndigits) || dscale < 0) return std::nullopt;
  if (sign == 0xC000) return PgNumeric::parse("NaN", error);
  if (sign == 0xD000) return PgNumeric::parse("Infinity", error);
  if (sign == 0xF000) return PgNumeric::parse("-Infinity", error);
  if (sign != 0 && sign != 0x4000) return std::nullopt;
  auto digit = [&](int i) -> int { return i >= 0 && i < ndigits ? i16(8 + 2 * std::size_t(i)) : 0; };
  for (int i = 0; i < ndigits; ++i)
    if (digit(i) < 0 || digit(i) > 9999) return std::nullopt;
  char group[8];
  std::string whole, frac;
  for (int e = weight; e >= 0; --e) {
    std::snprintf(group, sizeof group, "%04d", digit(weight - e));
    whole += group;
  }
  for (int j = 1; weight + j < ndigits; ++j) {
    std::snprintf(group, sizeof group, "%04d", digit(weight + j));
    frac += group;
  }
  if (int(frac.size()) > dscale) frac.resize(std::size_t(dscale));
  frac.append(std::size_t(dscale) - frac.size(), '0');
  std::string text = (sign == 0x4000 ? "-" : "") + (whole.empty() ? std::string("0") : whole);
  if (!frac.empty()) text += "." + frac;
  return PgNumeric::parse(text, error);
}

std::string uuid_text(std::string_view bytes) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[(static_cast<unsigned char>(bytes[i]) >> 4) & 15];
    out += kHex[static_cast<unsigned char>(bytes[i]) & 15];
  }
  return out;
}

/// The first `chars` characters of UTF-8 text (an explicit cast to varchar(n) truncates).
void truncate_chars(std::string& s, int chars) {
  if (chars < 0) return;
  int seen = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue;
    if (seen++ == chars) {
      s.resize(i);
      return;
    }
  }
}

KeyOutcome logical(int l) { return KeyOutcome{KeyOutcome::Kind::Logical, l, {}, {}}; }
KeyOutcome no_match() { return KeyOutcome{KeyOutcome::Kind::NoMatch, 0, {}, {}}; }
KeyOutcome server_error(std::string code, std::string message) {
  return KeyOutcome{KeyOutcome::Kind::ServerError, 0, std::move(code), std::move(message)};
}

KeyOutcome hash_text(std::string_view s, int modulus) {
  std::string err;
  auto l = logical_shard_of_text(KeyType::Text, s, modulus, &err);
  if (!l) return server_error("22021", err);
  return logical(*l);
}

}  // namespace

SqlType sql_type_of(KeyType k) {
  switch (k) {
    case KeyType::SmallInt: return SqlType::Int2;
    case KeyType::Integer: return SqlType::Int4;
    case KeyType::BigInt: return SqlType::Int8;
    case KeyType::Text: return SqlType::Text;
    case KeyType::Uuid: return SqlType::Uuid;
  }
  return SqlType::Unknown;
}

std::optional<SqlType> sql_type_from_oid(std::uint32_t oid) {
  switch (oid) {
    case 0: case 705: return SqlType::Unknown;
    case 21: return SqlType::Int2;
    case 23: return SqlType::Int4;
    case 20: return SqlType::Int8;
    case 1700: return SqlType::Numeric;
    case 700: return SqlType::Float4;
    case 701: return SqlType::Float8;
    case 25: case 1043: return SqlType::Text;
    case 2950: return SqlType::Uuid;
    default: return std::nullopt;
  }
}

KeyDatum KeyDatum::unknown_text(std::string_view text) {
  KeyDatum d;
  d.str_ = std::string(text);
  return d;
}

KeyDatum KeyDatum::unknown_binary(std::span<const std::byte> bytes) {
  KeyDatum d;
  d.binary_ = true;
  d.str_.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return d;
}

KeyDatum KeyDatum::number_literal(std::string_view text) {
  KeyDatum d;
  std::string code, err;
  bool integer = !text.empty();
  for (std::size_t i = 0; i < text.size(); ++i)
    if (!((text[i] >= '0' && text[i] <= '9') || (i == 0 && text[i] == '-' && text.size() > 1))) integer = false;
  if (integer) {
    if (auto v = parse_integer_key(KeyType::BigInt, text, &code, &err)) {
      d.type_ = fits(SqlType::Int4, *v) ? SqlType::Int4 : SqlType::Int8;
      d.int_ = *v;
      return d;
    }
  }
  d.type_ = SqlType::Numeric;
  if (auto n = PgNumeric::parse(text, &err)) d.num_ = *n;
  else d.fail("22P02", err);
  return d;
}

KeyDatum KeyDatum::null() {
  KeyDatum d;
  d.null_ = true;
  return d;
}

KeyDatum KeyDatum::parameter(SqlType type, std::string_view value, bool binary) {
  KeyDatum d = binary ? unknown_binary(std::as_bytes(std::span<const char>(value.data(), value.size())))
                      : unknown_text(value);
  if (type != SqlType::Unknown) d.input(type);
  return d;
}

void KeyDatum::fail(std::string sqlstate, std::string message) {
  if (failed_ || unsupported_) return;
  failed_ = true;
  sqlstate_ = std::move(sqlstate);
  message_ = std::move(message);
}

void KeyDatum::unsupported(std::string why) {
  if (failed_ || unsupported_) return;
  unsupported_ = true;
  message_ = std::move(why);
}

void KeyDatum::input(SqlType to) {
  if (null_ || failed_ || unsupported_ || type_ != SqlType::Unknown || to == SqlType::Unknown) return;
  std::string code, err;
  const auto name = [to] { return std::string(type_name(to)); };
  if (binary_) {
    const auto bytes = std::as_bytes(std::span<const char>(str_.data(), str_.size()));
    const auto bad_format = [&] { fail("22P03", "incorrect binary data format in bind parameter of type " + name()); };
    if (is_int(to)) {
      if (bytes.size() != 2 && bytes.size() != 4 && bytes.size() != 8) return bad_format();
      // Any width: the client may have declared a narrower or wider integer type.
      const unsigned shift = unsigned(64 - 8 * bytes.size());
      const auto v = static_cast<std::int64_t>(big_endian(bytes) << shift) >> shift;
      if (!fits(to, v)) return fail("22003", name() + " out of range");
      int_ = v;
    } else if (to == SqlType::Numeric) {
      auto n = numeric_recv(bytes, &err);
      if (!n) return bad_format();
      num_ = *n;
    } else if (to == SqlType::Float8) {
      if (bytes.size() != 8) return bad_format();
      std::uint64_t bits = big_endian(bytes);
      std::memcpy(&float_, &bits, sizeof float_);
    } else if (to == SqlType::Float4) {
      if (bytes.size() != 4) return bad_format();
      auto bits = std::uint32_t(big_endian(bytes));
      float f;
      std::memcpy(&f, &bits, sizeof f);
      float_ = f;
    } else if (to == SqlType::Uuid) {
      if (bytes.size() != 16) return bad_format();
    } else if (str_.find('\0') != std::string::npos) {
      return fail("22021", "invalid byte sequence for encoding \"UTF8\": 0x00");
    }
    type_ = to;
    binary_ = false;
    return;
  }
  switch (to) {
    case SqlType::Int2:
    case SqlType::Int4:
    case SqlType::Int8: {
      auto v = parse_integer_key(key_type_of_int(to), str_, &code, &err);
      if (!v) return fail(code, err);
      int_ = *v;
      break;
    }
    case SqlType::Numeric: {
      auto n = PgNumeric::parse(str_, &err);
      if (!n) return fail(err.rfind("value overflows", 0) == 0 ? "22003" : "22P02", err);
      num_ = *n;
      break;
    }
    case SqlType::Float4:
    case SqlType::Float8: {
      auto f = parse_float(to, str_, &code, &err);
      if (!f) return fail(code, err);
      float_ = *f;
      break;
    }
    case SqlType::Uuid: {
      auto u = parse_uuid_key(str_, &err);
      if (!u) return fail("22P02", err);
      str_.assign(reinterpret_cast<const char*>(u->data()), u->size());
      break;
    }
    case SqlType::Text:
    case SqlType::Unknown:
      break;
  }
  type_ = to;
}

void KeyDatum::negate() {
  if (null_ || failed_ || unsupported_) return;
  switch (type_) {
    case SqlType::Unknown:
      return fail("42725", "operator is not unique: - unknown");
    case SqlType::Int2:
    case SqlType::Int4:
    case SqlType::Int8:
      if (int_ == std::numeric_limits<std::int64_t>::min() || !fits(type_, -int_))
        return fail("22003", std::string(type_name(type_)) + " out of range");
      int_ = -int_;
      return;
    case SqlType::Numeric: num_.negate(); return;
    case SqlType::Float4:
    case SqlType::Float8: float_ = -float_; return;
    case SqlType::Text:
    case SqlType::Uuid:
      return fail("42883", "operator does not exist: - " + std::string(type_name(type_)));
  }
}

void KeyDatum::unary_plus() {
  if (null_ || failed_ || unsupported_) return;
  if (type_ == SqlType::Unknown) return input(SqlType::Float8);  // `+ unknown` resolves to float8
  if (type_ == SqlType::Text || type_ == SqlType::Uuid)
    fail("42883", "operator does not exist: + " + std::string(type_name(type_)));
}

void KeyDatum::cast(SqlType to, int typmod) {
  if (failed_ || unsupported_ || to == SqlType::Unknown) return;
  if (null_) {
    type_ = to;
    return;
  }
  const SqlType from = type_;
  const std::string_view to_name = type_name(to);
  const auto no_cast = [&] { fail("42846", "cannot cast type " + std::string(type_name(from)) + " to " + std::string(to_name)); };
  if (type_ == SqlType::Text && to != SqlType::Text) type_ = SqlType::Unknown;  // an I/O conversion cast
  if (type_ == SqlType::Unknown) {
    input(to);
  } else if (is_int(type_)) {
    if (is_int(to)) {
      if (!fits(to, int_)) return fail("22003", std::string(to_name) + " out of range");
    } else if (to == SqlType::Numeric) {
      num_ = PgNumeric::from_int(int_);
    } else if (is_float(to)) {
      float_ = to == SqlType::Float4 ? double(float(int_)) : double(int_);
    } else if (to == SqlType::Text) {
      str_ = std::to_string(int_);
    } else {
      return no_cast();
    }
  } else if (type_ == SqlType::Numeric) {
    if (is_int(to)) {
      if (num_.special() == PgNumeric::Special::NaN) return fail("0A000", "cannot convert NaN to " + std::string(to_name));
      if (num_.special() != PgNumeric::Special::None)
        return fail("0A000", "cannot convert infinity to " + std::string(to_name));
      auto v = num_.rounded_int64();
      if (!v || !fits(to, *v)) return fail("22003", std::string(to_name) + " out of range");
      int_ = *v;
    } else if (is_float(to) || to == SqlType::Text) {
      auto t = num_.text();
      if (!t) return unsupported("a numeric value too long to convert");
      if (to == SqlType::Text) {
        str_ = *t;
      } else {
        std::string code, err;
        auto f = parse_float(to, *t, &code, &err);
        if (!f) return fail(code, err);
        float_ = *f;
      }
    } else if (to != SqlType::Numeric) {
      return no_cast();
    }
  } else if (is_float(type_)) {
    if (is_int(to)) {
      const double r = std::nearbyint(float_);
      if (std::isnan(r) || !float_fits(to, r)) return fail("22003", std::string(to_name) + " out of range");
      int_ = static_cast<std::int64_t>(r);
    } else if (to == SqlType::Numeric) {
      char buf[64];
      if (std::isnan(float_)) std::snprintf(buf, sizeof buf, "NaN");
      else if (std::isinf(float_)) std::snprintf(buf, sizeof buf, float_ < 0 ? "-Infinity" : "Infinity");
      else std::snprintf(buf, sizeof buf, "%.*g", type_ == SqlType::Float4 ? 6 : 15, float_);  // FLT_DIG, DBL_DIG
      std::string err;
      auto n = PgNumeric::parse(buf, &err);
      if (!n) return fail("22P02", err);
      num_ = *n;
    } else if (to == SqlType::Float4) {
      const float f = float(float_);
      if (std::isinf(f) && !std::isinf(float_)) return fail("22003", "value out of range: overflow");
      if (f == 0.0f && float_ != 0.0) return fail("22003", "value out of range: underflow");
      float_ = f;
    } else if (to == SqlType::Text) {
      return unsupported("the text of a floating-point key value");
    } else if (to != SqlType::Float8) {
      return no_cast();
    }
  } else if (type_ == SqlType::Text) {  // to text: only the length changes
  } else if (type_ == SqlType::Uuid) {
    if (to == SqlType::Text) str_ = uuid_text(str_);
    else if (to != SqlType::Uuid) return no_cast();
  }
  if (failed_ || unsupported_) return;
  type_ = to;
  if (to == SqlType::Text) truncate_chars(str_, typmod);
}

KeyType KeyDatum::guess_key_type() const {
  switch (type_) {
    case SqlType::Unknown:
      if (binary_) return str_.size() == 16 ? KeyType::Uuid : str_.size() <= 8 ? KeyType::BigInt : KeyType::Text;
      return looks_integer(str_) ? KeyType::BigInt : KeyType::Text;
    case SqlType::Text: return KeyType::Text;
    case SqlType::Uuid: return KeyType::Uuid;
    default: return KeyType::BigInt;
  }
}

KeyOutcome KeyDatum::outcome(KeyType key, KeyUse use, int modulus, bool want_key) const {
  // The canonical text of the value the hash was taken of, when asked for.
  const auto keyed = [want_key](KeyOutcome o, auto&& text) {
    if (want_key && o.kind == KeyOutcome::Kind::Logical) o.key = text();
    return o;
  };
  const auto of_int = [](std::int64_t v) { return [v] { return canonical_int_key(v); }; };
  const auto of_str = [this] { return str_; };
  const auto of_uuid = [this] {
    std::array<unsigned char, 16> b{};
    std::memcpy(b.data(), str_.data(), std::min<std::size_t>(16, str_.size()));
    return canonical_uuid_key(b);
  };
  if (unsupported_) return KeyOutcome{KeyOutcome::Kind::Unconstrained, 0, {}, message_};
  if (failed_) return !certain_ && use == KeyUse::Compare ? no_match() : server_error(sqlstate_, message_);
  if (null_) return logical(logical_shard_of_null(modulus));
  const SqlType k = sql_type_of(key);
  if (type_ == SqlType::Unknown && !binary_) {  // an untyped text value takes the key's type
    std::string code, err;
    const auto rejected = [&](std::string c, std::string m) {
      return !certain_ && use == KeyUse::Compare ? no_match() : server_error(std::move(c), std::move(m));
    };
    if (is_int(k)) {
      auto v = parse_integer_key(key, str_, &code, &err);
      return v ? keyed(logical(logical_shard_of_int(*v, modulus)), of_int(*v)) : rejected(code, err);
    }
    if (k == SqlType::Text) return keyed(hash_text(str_, modulus), of_str);
    auto l = logical_shard_of_text(KeyType::Uuid, str_, modulus, &err);
    if (!l) return rejected("22P02", err);
    return keyed(logical(*l), [this] { return canonical_uuid_key(*parse_uuid_key(str_, nullptr)); });
  }
  if (type_ == SqlType::Unknown) {  // binary: the key type's receive function
    KeyDatum d = *this;
    d.input(k);
    return d.outcome(key, use, modulus, want_key);
  }
  const std::string_view key_name = key_type_name(key);
  const std::string_view value_name = type_name(type_);
  const auto mismatch = [&] {
    if (use == KeyUse::Compare)
      return server_error("42883", fmt::format("operator does not exist: {} = {}", key_name, value_name));
    return server_error("42804", fmt::format("the key column is of type {} but the value is of type {}", key_name, value_name));
  };
  if (is_int(k)) {
    if (is_int(type_)) {
      if (fits(k, int_)) return keyed(logical(logical_shard_of_int(int_, modulus)), of_int(int_));
      return use == KeyUse::Compare ? no_match() : server_error("22003", std::string(key_name) + " out of range");
    }
    if (type_ == SqlType::Numeric && use == KeyUse::Compare) {
      auto v = num_.exact_int64();
      return v && fits(k, *v) ? keyed(logical(logical_shard_of_int(*v, modulus)), of_int(*v)) : no_match();
    }
    if (is_float(type_) && use == KeyUse::Compare) {
      const double v = float_;
      if (!std::isfinite(v) || v != std::trunc(v)) return no_match();
      const double exact_below = type_ == SqlType::Float4 ? 16777216.0 : 9007199254740992.0;
      if (std::fabs(v) < exact_below) {
        const auto i = static_cast<std::int64_t>(v);
        return fits(k, i) ? keyed(logical(logical_shard_of_int(i, modulus)), of_int(i)) : no_match();
      }
      if (type_ == SqlType::Float8 && k != SqlType::Int8) return no_match();  // beyond int2/int4
      return KeyOutcome{KeyOutcome::Kind::Unconstrained, 0, {},
                        "a floating-point value that equals several " + std::string(key_name) + " keys"};
    }
    if (type_ == SqlType::Numeric || is_float(type_)) {  // assignment: cast to the key type
      KeyDatum d = *this;
      d.cast(k);
      return d.outcome(key, use, modulus, want_key);
    }
    return mismatch();
  }
  if (k == SqlType::Text) {
    if (type_ == SqlType::Text) return keyed(hash_text(str_, modulus), of_str);
    if (use == KeyUse::Compare || !(is_int(type_) || type_ == SqlType::Numeric || is_float(type_) || type_ == SqlType::Uuid))
      return mismatch();
    KeyDatum d = *this;  // assignment to text: the value's output text
    d.cast(SqlType::Text);
    return d.outcome(key, use, modulus, want_key);
  }
  if (type_ != SqlType::Uuid) return mismatch();
  std::string err;
  auto l = logical_shard_of_binary(KeyType::Uuid, std::as_bytes(std::span<const char>(str_.data(), str_.size())), modulus, &err);
  if (!l) return server_error("22P03", err);
  return keyed(logical(*l), of_uuid);
}

}  // namespace shardline::router
