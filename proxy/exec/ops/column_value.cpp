#include "proxy/exec/ops/column_value.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

namespace shardline::proxy::exec::ops {

namespace {

namespace oid {
constexpr std::uint32_t kBool = 16, kName = 19, kInt8 = 20, kInt2 = 21, kInt4 = 23, kText = 25, kOid = 26,
                        kFloat4 = 700, kFloat8 = 701, kBpchar = 1042, kVarchar = 1043, kDate = 1082,
                        kTimestamp = 1114, kTimestampTz = 1184, kNumeric = 1700, kUuid = 2950,
                        kBytea = 17, kTime = 1083;
}

constexpr std::int64_t kPostgresEpochJulian = 2451545;  // 2000-01-01
constexpr std::int64_t kUsecPerDay = 86400LL * 1000000;

protocol::SqlError bad_value(const ColumnType& t, std::string_view data, int format) {
  std::string shown = format == 0 ? "'" + std::string(data.substr(0, 64)) + "'"
                                  : std::to_string(data.size()) + " bytes in binary format";
  return protocol::SqlError::error(protocol::sqlstate::kProtocolViolation,
                                   "cannot read a " + type_name(t.oid) + " value from a shard row: " + shown);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

std::uint64_t be(std::string_view d) {
  std::uint64_t v = 0;
  for (char c : d) v = (v << 8) | std::uint8_t(c);
  return v;
}

std::optional<std::int64_t> parse_int_text(std::string_view s) {
  s = trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<Value> decode_float(std::string_view d, int format, bool float4) {
  Value v{.cls = TypeClass::Float};
  if (format == 1) {
    if (d.size() != (float4 ? 4u : 8u)) return std::nullopt;
    if (float4) {
      auto bits = std::uint32_t(be(d));
      float f;
      std::memcpy(&f, &bits, 4);
      v.f = f;
    } else {
      auto bits = be(d);
      std::memcpy(&v.f, &bits, 8);
    }
  } else {
    std::string_view s = trim(d);
    if (!s.empty() && s.front() == '+') s.remove_prefix(1);
    if (iequals(s, "nan")) {
      v.nan = true;
      return v;
    }
    if (iequals(s, "infinity") || iequals(s, "inf")) v.f = std::numeric_limits<double>::infinity();
    else if (iequals(s, "-infinity") || iequals(s, "-inf")) v.f = -std::numeric_limits<double>::infinity();
    else if (float4) {  // straight to float: no double rounding
      float f = 0;
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), f);
      if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
      v.f = f;
    } else {
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v.f);
      if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
    }
  }
  v.nan = std::isnan(v.f);
  if (v.nan) v.f = 0;
  return v;
}

std::optional<Value> decode_bool(std::string_view d, int format) {
  Value v{.cls = TypeClass::Bool};
  if (format == 1) {
    if (d.size() != 1) return std::nullopt;
    v.i = d[0] != 0;
    return v;
  }
  std::string s(trim(d));
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  auto prefix_of = [&](std::string_view word, std::size_t min) {
    return s.size() >= min && s.size() <= word.size() && word.substr(0, s.size()) == s;
  };
  if (prefix_of("true", 1) || prefix_of("yes", 1) || s == "on" || s == "1") v.i = 1;
  else if (prefix_of("false", 1) || prefix_of("no", 1) || prefix_of("off", 2) || s == "0") v.i = 0;
  else return std::nullopt;
  return v;
}

/// Julian day number of a proleptic Gregorian date (astronomical year: 1 BC is 0).
std::int64_t julian_day(std::int64_t y, std::int64_t m, std::int64_t d) {
  if (m > 2) {
    m += 1;
    y += 4800;
  } else {
    m += 13;
    y += 4799;
  }
  std::int64_t century = y / 100;
  return y * 365 - 32167 + y / 4 - century + century / 4 + 7834 * m / 256 + d;
}

bool take_digits(std::string_view& s, std::size_t min, std::size_t max, std::int64_t& out) {
  std::size_t n = 0;
  out = 0;
  while (n < s.size() && n < max && std::isdigit(static_cast<unsigned char>(s[n]))) out = out * 10 + (s[n++] - '0');
  if (n < min) return false;
  s.remove_prefix(n);
  return true;
}

bool take(std::string_view& s, char c) {
  if (s.empty() || s.front() != c) return false;
  s.remove_prefix(1);
  return true;
}

/// DateStyle ISO output: YYYY-MM-DD[ HH:MM:SS[.ffffff][+-HH[:MM[:SS]]]][ BC]. Returns days
/// since 2000-01-01 (date) or microseconds since 2000-01-01 00:00 UTC (timestamps).
/// "HH:MM:SS[.ffffff]" at the front of `s` (consumed); the fraction in microseconds.
bool take_clock(std::string_view& s, std::int64_t& h, std::int64_t& mi, std::int64_t& sec, std::int64_t& usec) {
  if (!take_digits(s, 2, 2, h) || !take(s, ':') || !take_digits(s, 2, 2, mi) || !take(s, ':') ||
      !take_digits(s, 2, 2, sec))
    return false;
  usec = 0;
  if (!take(s, '.')) return true;
  const std::size_t before = s.size();
  if (!take_digits(s, 1, 6, usec)) return false;
  for (std::size_t n = before - s.size(); n < 6; ++n) usec *= 10;
  return true;
}

std::optional<std::int64_t> parse_iso(std::string_view s, bool with_time, bool with_zone) {
  s = trim(s);
  if (iequals(s, "infinity") || iequals(s, "+infinity")) return std::numeric_limits<std::int64_t>::max();
  if (iequals(s, "-infinity")) return std::numeric_limits<std::int64_t>::min();
  std::int64_t y, mo, d, h = 0, mi = 0, sec = 0, usec = 0, zone = 0;
  if (!take_digits(s, 4, 9, y) || !take(s, '-') || !take_digits(s, 2, 2, mo) || !take(s, '-') ||
      !take_digits(s, 2, 2, d))
    return std::nullopt;
  if (with_time) {
    if (!take(s, ' ') || !take_clock(s, h, mi, sec, usec)) return std::nullopt;
    if (with_zone) {
      if (s.empty() || (s.front() != '+' && s.front() != '-')) return std::nullopt;
      const bool west = s.front() == '-';
      s.remove_prefix(1);
      std::int64_t zh, zm = 0, zs = 0;
      if (!take_digits(s, 2, 2, zh)) return std::nullopt;
      if (take(s, ':') && !take_digits(s, 2, 2, zm)) return std::nullopt;
      if (take(s, ':') && !take_digits(s, 2, 2, zs)) return std::nullopt;
      zone = (zh * 3600 + zm * 60 + zs) * (west ? -1 : 1);
    }
  }
  if (s == " BC") {
    y = 1 - y;
    s = {};
  }
  if (!s.empty() || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 24 || mi > 59 || sec > 60) return std::nullopt;
  std::int64_t days = julian_day(y, mo, d) - kPostgresEpochJulian;
  if (!with_time) return days;
  return days * kUsecPerDay + ((h * 60 + mi) * 60 + sec - zone) * 1000000 + usec;
}

std::optional<Value> decode_datetime(const ColumnType& t, std::string_view d, int format) {
  Value v{.cls = t.cls};
  if (format == 1) {
    if (t.cls == TypeClass::Date) {
      if (d.size() != 4) return std::nullopt;
      auto days = std::int32_t(std::uint32_t(be(d)));
      if (days == std::numeric_limits<std::int32_t>::min()) v.i = std::numeric_limits<std::int64_t>::min();
      else if (days == std::numeric_limits<std::int32_t>::max()) v.i = std::numeric_limits<std::int64_t>::max();
      else v.i = days;
    } else {
      if (d.size() != 8) return std::nullopt;
      v.i = std::int64_t(be(d));
    }
    return v;
  }
  auto parsed = parse_iso(d, t.cls == TypeClass::Timestamp, t.with_zone);
  if (!parsed) return std::nullopt;
  v.i = *parsed;
  return v;
}

std::optional<Value> decode_uuid(std::string_view d, int format) {
  Value v{.cls = TypeClass::Uuid};
  if (format == 1) {
    if (d.size() != 16) return std::nullopt;
    v.bytes = std::string(d);
    return v;
  }
  std::string_view s = trim(d);
  if (s.size() >= 2 && s.front() == '{' && s.back() == '}') s = s.substr(1, s.size() - 2);
  int nibble = -1;
  for (char c : s) {
    if (c == '-') continue;
    int x = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
            : (c >= 'a' && c <= 'f')                     ? c - 'a' + 10
            : (c >= 'A' && c <= 'F')                     ? c - 'A' + 10
                                                         : -1;
    if (x < 0) return std::nullopt;
    if (nibble < 0) nibble = x;
    else {
      v.bytes.push_back(char(nibble * 16 + x));
      nibble = -1;
    }
  }
  if (v.bytes.size() != 16 || nibble >= 0) return std::nullopt;
  return v;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// bytea_output = hex (a backslash, "x", two hex digits per byte); escape format is refused.
std::optional<Value> decode_bytea(std::string_view d, int format) {
  Value v{.cls = TypeClass::Bytea};
  if (format == 1) {
    v.bytes = std::string(d);
    return v;
  }
  if (d.size() < 2 || d[0] != '\\' || (d[1] != 'x' && d[1] != 'X') || d.size() % 2) return std::nullopt;
  for (std::size_t i = 2; i < d.size(); i += 2) {
    int hi = hex_digit(d[i]), lo = hex_digit(d[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    v.bytes.push_back(char(hi * 16 + lo));
  }
  return v;
}

/// time: HH:MM:SS[.ffffff] (the same in every DateStyle), or int64 microseconds.
std::optional<Value> decode_time(std::string_view d, int format) {
  Value v{.cls = TypeClass::Time};
  if (format == 1) {
    if (d.size() != 8) return std::nullopt;
    v.i = std::int64_t(be(d));
    return v;
  }
  std::string_view s = trim(d);
  std::int64_t h, m, sec, usec;
  if (!take_clock(s, h, m, sec, usec)) return std::nullopt;
  if (!s.empty() || h > 24 || m > 59 || sec > 60) return std::nullopt;
  v.i = ((h * 60 + m) * 60 + sec) * 1000000 + usec;
  return v;
}

std::optional<Value> decode_any(const ColumnType& t, std::string_view d, int format) {
  Value v{.cls = t.cls};
  switch (t.cls) {
    case TypeClass::Integer:
      if (format == 1) {
        if (t.oid == oid::kOid) {
          if (d.size() != 4) return std::nullopt;
          v.i = std::int64_t(be(d));
        } else if (d.size() == 2) v.i = std::int16_t(std::uint16_t(be(d)));
        else if (d.size() == 4) v.i = std::int32_t(std::uint32_t(be(d)));
        else if (d.size() == 8) v.i = std::int64_t(be(d));
        else return std::nullopt;
        return v;
      } else {
        auto i = parse_int_text(d);
        if (!i) return std::nullopt;
        v.i = *i;
        return v;
      }
    case TypeClass::Numeric: {
      auto n = format == 1 ? parse_numeric_binary(d) : parse_numeric_text(d);
      if (!n) return std::nullopt;
      v.n = std::move(*n);
      return v;
    }
    case TypeClass::Float: return decode_float(d, format, t.oid == oid::kFloat4);
    case TypeClass::Bool: return decode_bool(d, format);
    case TypeClass::Text: v.bytes = std::string(d); return v;
    case TypeClass::Bpchar: {
      while (!d.empty() && d.back() == ' ') d.remove_suffix(1);
      v.bytes = std::string(d);
      return v;
    }
    case TypeClass::Date:
    case TypeClass::Timestamp: return decode_datetime(t, d, format);
    case TypeClass::Uuid: return decode_uuid(d, format);
    case TypeClass::Bytea: return decode_bytea(d, format);
    case TypeClass::Time: return decode_time(d, format);
  }
  return std::nullopt;
}

template <class T>
int three_way(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

}  // namespace

std::string type_name(std::uint32_t t) {
  switch (t) {
    case 16: return "boolean";
    case 17: return "bytea";
    case 18: return "\"char\"";
    case 19: return "name";
    case 20: return "bigint";
    case 21: return "smallint";
    case 23: return "integer";
    case 25: return "text";
    case 26: return "oid";
    case 114: return "json";
    case 142: return "xml";
    case 650: return "cidr";
    case 700: return "real";
    case 701: return "double precision";
    case 790: return "money";
    case 829: return "macaddr";
    case 869: return "inet";
    case 1042: return "character";
    case 1043: return "character varying";
    case 1082: return "date";
    case 1083: return "time without time zone";
    case 1114: return "timestamp without time zone";
    case 1184: return "timestamp with time zone";
    case 1186: return "interval";
    case 1266: return "time with time zone";
    case 1700: return "numeric";
    case 2950: return "uuid";
    case 3802: return "jsonb";
    case 1007: return "integer[]";
    case 1009: return "text[]";
    case 1016: return "bigint[]";
    default: return "type OID " + std::to_string(t);
  }
}

std::optional<ColumnType> comparable_type(std::uint32_t t, const MergeContext& ctx, protocol::SqlError& error,
                                          std::string_view construct) {
  const std::string what = "cross-shard " + std::string(construct) + " on a column of type " + type_name(t);
  ColumnType ct;
  ct.oid = t;
  switch (t) {
    case oid::kInt2:
    case oid::kInt4:
    case oid::kInt8:
    case oid::kOid: ct.cls = TypeClass::Integer; return ct;
    case oid::kNumeric: ct.cls = TypeClass::Numeric; return ct;
    case oid::kFloat4:
    case oid::kFloat8: ct.cls = TypeClass::Float; return ct;
    case oid::kBool: ct.cls = TypeClass::Bool; return ct;
    case oid::kDate: ct.cls = TypeClass::Date; return ct;
    case oid::kTimestamp: ct.cls = TypeClass::Timestamp; return ct;
    case oid::kTimestampTz: ct.cls = TypeClass::Timestamp, ct.with_zone = true; return ct;
    case oid::kUuid: ct.cls = TypeClass::Uuid; return ct;
    case oid::kBytea: ct.cls = TypeClass::Bytea; return ct;
    case oid::kTime: ct.cls = TypeClass::Time; return ct;
    case oid::kText:
    case oid::kVarchar:
    case oid::kName:
    case oid::kBpchar:
      if (!ctx.bytewise_collation) {
        error = protocol::SqlError::error(
            protocol::sqlstate::kFeatureNotSupported,
            what + " is not supported under this database's collation (only C/POSIX byte order can be merged)");
        return std::nullopt;
      }
      ct.cls = t == oid::kBpchar ? TypeClass::Bpchar : TypeClass::Text;
      return ct;
    default:
      error = protocol::SqlError::error(protocol::sqlstate::kFeatureNotSupported, what + " is not supported");
      return std::nullopt;
  }
}

std::optional<Value> decode_value(const ColumnType& type, std::string_view data, int format,
                                  protocol::SqlError& error) {
  auto v = decode_any(type, data, format);
  if (v) return v;
  if (format == 0 && type.cls == TypeClass::Bytea && !(data.size() >= 2 && data[0] == '\\' && data[1] == 'x')) {
    error = protocol::SqlError::error(protocol::sqlstate::kFeatureNotSupported,
                                      "cross-shard ORDER BY/GROUP BY on a bytea column needs bytea_output = hex");
  } else if (format == 0 && (type.cls == TypeClass::Date || type.cls == TypeClass::Timestamp)) {
    error = protocol::SqlError::error(
        protocol::sqlstate::kFeatureNotSupported,
        "cross-shard ORDER BY/GROUP BY on a " + type_name(type.oid) + " column needs DateStyle ISO (got '" +
            std::string(data.substr(0, 64)) + "')");
  } else {
    error = bad_value(type, data, format);
  }
  return std::nullopt;
}

int compare_decoded(const Value& a, const Value& b) {
  switch (a.cls) {
    case TypeClass::Integer:
    case TypeClass::Bool:
    case TypeClass::Date:
    case TypeClass::Timestamp:
    case TypeClass::Time: return three_way(a.i, b.i);
    case TypeClass::Numeric: return numeric_compare(a.n, b.n);
    case TypeClass::Float:
      if (a.nan || b.nan) return a.nan == b.nan ? 0 : (a.nan ? 1 : -1);
      return three_way(a.f, b.f);
    case TypeClass::Text:
    case TypeClass::Bpchar:
    case TypeClass::Uuid:
    case TypeClass::Bytea: {
      int c = std::memcmp(a.bytes.data(), b.bytes.data(), std::min(a.bytes.size(), b.bytes.size()));
      if (c != 0) return c < 0 ? -1 : 1;
      return three_way(a.bytes.size(), b.bytes.size());
    }
  }
  return 0;
}

std::optional<int> compare_values(const ColumnType& type, int format, std::string_view a, std::string_view b,
                                  protocol::SqlError& error) {
  auto x = decode_value(type, a, format, error);
  if (!x) return std::nullopt;
  auto y = decode_value(type, b, format, error);
  if (!y) return std::nullopt;
  return compare_decoded(*x, *y);
}

}  // namespace shardline::proxy::exec::ops
