#include "proxy/exec/result_merger.hpp"

#include <cstdint>
#include <map>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>

#include "proxy/protocol/frame_reader.hpp"
#include "proxy/protocol/message_writer.hpp"

namespace shardline::proxy::exec {

namespace {

bool is_row(char tag) { return tag == 'D' || tag == 'd'; }
bool is_terminator(char tag) { return tag == 'C' || tag == 'I' || tag == 'E' || tag == 's'; }

std::string tag_of(const std::string& msg) {  // CommandComplete body without the NUL
  std::string t = msg.substr(5);
  if (!t.empty() && t.back() == '\0') t.pop_back();
  return t;
}

struct Segment {
  std::vector<const std::string*> prefix, rows, suffix;
  const std::string* terminator = nullptr;
};

std::vector<Segment> segments(const std::vector<std::string>& msgs) {
  std::vector<Segment> out;
  Segment cur;
  for (const auto& m : msgs) {
    if (m.empty()) continue;
    char tag = m[0];
    if (is_terminator(tag)) {
      cur.terminator = &m;
      out.push_back(std::move(cur));
      cur = Segment{};
    } else if (is_row(tag)) {
      for (auto* s : cur.suffix) cur.prefix.push_back(s);  // rows after a notice: keep order
      cur.suffix.clear();
      cur.rows.push_back(&m);
    } else if (cur.rows.empty()) {
      cur.prefix.push_back(&m);
    } else {
      cur.suffix.push_back(&m);
    }
  }
  if (!cur.prefix.empty() || !cur.rows.empty()) out.push_back(std::move(cur));
  return out;
}

}  // namespace

int ShardReply::error_index() const {
  for (std::size_t i = 0; i < messages.size(); ++i)
    if (!messages[i].empty() && messages[i][0] == 'E') return int(i);
  return -1;
}

std::string sum_command_tags(const std::vector<std::string>& tags) {
  if (tags.empty()) return {};
  const std::string& first = tags.front();
  auto sp = first.rfind(' ');
  if (sp == std::string::npos) return first;
  std::string head = first.substr(0, sp + 1);
  std::uint64_t total = 0;
  for (const auto& t : tags) {
    auto p = t.rfind(' ');
    if (p == std::string::npos || t.substr(0, p + 1) != head) return first;
    try {
      total += std::stoull(t.substr(p + 1));
    } catch (...) {
      return first;
    }
  }
  return head + std::to_string(total);
}

std::vector<std::string> merge_replies(const std::vector<ShardReply>& replies, MergeMode mode,
                                       const std::vector<std::vector<int>>& row_origin) {
  std::vector<std::string> out;
  if (replies.empty()) return out;
  std::vector<std::vector<Segment>> segs;
  for (const auto& r : replies) segs.push_back(segments(r.messages));
  const auto& first = segs.front();
  for (std::size_t k = 0; k < first.size(); ++k) {
    const Segment& s0 = first[k];
    for (auto* m : s0.prefix) out.push_back(*m);
    if (mode == MergeMode::SameRows) {
      for (auto* m : s0.rows) out.push_back(*m);
    } else if (mode == MergeMode::Reorder) {
      std::map<int, const std::string*> ordered;
      std::vector<const std::string*> unplaced;
      for (std::size_t sh = 0; sh < segs.size(); ++sh) {
        if (k >= segs[sh].size()) continue;
        const auto& rows = segs[sh][k].rows;
        for (std::size_t i = 0; i < rows.size(); ++i) {
          if (sh < row_origin.size() && i < row_origin[sh].size()) ordered[row_origin[sh][i]] = rows[i];
          else unplaced.push_back(rows[i]);
        }
      }
      for (auto& [idx, m] : ordered) out.push_back(*m);
      for (auto* m : unplaced) out.push_back(*m);
    } else {
      for (std::size_t sh = 0; sh < segs.size(); ++sh)
        if (k < segs[sh].size())
          for (auto* m : segs[sh][k].rows) out.push_back(*m);
    }
    for (auto* m : s0.suffix) out.push_back(*m);
    if (s0.terminator) {
      if ((*s0.terminator)[0] == 'C' && mode != MergeMode::SameRows) {
        std::vector<std::string> tags;
        for (const auto& sg : segs)
          if (k < sg.size() && sg[k].terminator && (*sg[k].terminator)[0] == 'C') tags.push_back(tag_of(*sg[k].terminator));
        std::string msg;
        protocol::MessageWriter(msg).command_complete(sum_command_tags(tags));
        out.push_back(std::move(msg));
      } else {
        out.push_back(*s0.terminator);
      }
    }
  }
  return out;
}

namespace {

struct Decimal {
  bool negative = false;
  std::string int_part;   ///< digits, no leading zeros ("" = 0)
  std::string frac_part;  ///< digits, no trailing zeros
};

std::optional<Decimal> parse_decimal(const std::string& s) {
  Decimal d;
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) d.negative = s[i++] == '-';
  std::size_t dot = s.find('.', i);
  std::string ip = s.substr(i, dot == std::string::npos ? std::string::npos : dot - i);
  std::string fp = dot == std::string::npos ? "" : s.substr(dot + 1);
  if (ip.empty() && fp.empty()) return std::nullopt;
  for (char c : ip + fp)
    if (c < '0' || c > '9') return std::nullopt;
  ip.erase(0, std::min(ip.find_first_not_of('0'), ip.size()));
  while (!fp.empty() && fp.back() == '0') fp.pop_back();
  d.int_part = ip;
  d.frac_part = fp;
  if (ip.empty() && fp.empty()) d.negative = false;
  return d;
}

/// |a| compared with |b|.
int compare_magnitude(const Decimal& a, const Decimal& b) {
  if (a.int_part.size() != b.int_part.size()) return a.int_part.size() < b.int_part.size() ? -1 : 1;
  if (int c = a.int_part.compare(b.int_part)) return c < 0 ? -1 : 1;
  std::size_t n = std::max(a.frac_part.size(), b.frac_part.size());
  std::string fa = a.frac_part, fb = b.frac_part;
  fa.resize(n, '0');
  fb.resize(n, '0');
  if (int c = fa.compare(fb)) return c < 0 ? -1 : 1;
  return 0;
}

/// Digits of |a| +/- |b| with `scale` fraction digits (subtraction requires |a| >= |b|).
std::string add_or_sub(const Decimal& a, const Decimal& b, bool subtract, std::size_t& scale) {
  scale = std::max(a.frac_part.size(), b.frac_part.size());
  std::string x = a.int_part + a.frac_part + std::string(scale - a.frac_part.size(), '0');
  std::string y = b.int_part + b.frac_part + std::string(scale - b.frac_part.size(), '0');
  std::size_t n = std::max(x.size(), y.size()) + 1;
  x.insert(0, n - x.size(), '0');
  y.insert(0, n - y.size(), '0');
  std::string r(n, '0');
  int carry = 0;
  for (std::size_t k = n; k-- > 0;) {
    int v = subtract ? (x[k] - '0') - (y[k] - '0') - carry : (x[k] - '0') + (y[k] - '0') + carry;
    carry = 0;
    if (v < 0) {
      v += 10;
      carry = 1;
    } else if (v >= 10) {
      v -= 10;
      carry = 1;
    }
    r[k] = char('0' + v);
  }
  return r;
}

std::string format_decimal(bool negative, const std::string& digits, std::size_t scale) {
  std::string ip = digits.substr(0, digits.size() - scale);
  std::string fp = digits.substr(digits.size() - scale);
  ip.erase(0, std::min(ip.find_first_not_of('0'), ip.size()));
  if (ip.empty()) ip = "0";
  bool zero = ip == "0" && fp.find_first_not_of('0') == std::string::npos;
  return (negative && !zero ? "-" : "") + ip + (scale ? "." + fp : "");
}

bool is_float_type(int oid) { return oid == 700 || oid == 701; }
bool is_exact_numeric(int oid) { return oid == 20 || oid == 21 || oid == 23 || oid == 26 || oid == 1700; }

std::string format_double(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

double parse_double(const std::string& s) {
  if (s == "NaN") return NAN;
  if (s == "Infinity") return INFINITY;
  if (s == "-Infinity") return -INFINITY;
  return std::strtod(s.c_str(), nullptr);
}

}  // namespace

std::string decimal_add(const std::string& a, const std::string& b) {
  auto x = parse_decimal(a), y = parse_decimal(b);
  if (!x || !y) return a;
  std::size_t scale = 0;
  if (x->negative == y->negative) {
    std::string r = add_or_sub(*x, *y, false, scale);
    return format_decimal(x->negative, r, scale);
  }
  // (The digits are computed first: `scale` is only known afterwards.)
  if (compare_magnitude(*x, *y) >= 0) {
    std::string r = add_or_sub(*x, *y, true, scale);
    return format_decimal(x->negative, r, scale);
  }
  std::string r = add_or_sub(*y, *x, true, scale);
  return format_decimal(y->negative, r, scale);
}

int decimal_compare(const std::string& a, const std::string& b) {
  auto x = parse_decimal(a), y = parse_decimal(b);
  if (!x || !y) return a.compare(b);
  if (x->negative != y->negative) return x->negative ? -1 : 1;
  int m = compare_magnitude(*x, *y);
  return x->negative ? -m : m;
}

std::vector<std::string> merge_aggregates(const std::vector<ShardReply>& replies,
                                          const std::vector<AggregateKind>& kinds, std::string* error) {
  std::vector<std::string> out;
  if (replies.empty()) return out;
  // Column types from shard 0's RowDescription.
  std::vector<int> types;
  const std::string* row_description = nullptr;
  for (const auto& m : replies.front().messages)
    if (!m.empty() && m[0] == 'T') row_description = &m;
  if (!row_description) {
    if (error) *error = "aggregate reply without a row description";
    return {};
  }
  protocol::BodyReader rd({row_description->data() + 5, row_description->size() - 5});
  int n = rd.i16().value_or(0);
  for (int i = 0; i < n; ++i) {
    rd.cstr();
    rd.i32();
    rd.i16();
    types.push_back(rd.i32().value_or(0));
    rd.i16();
    rd.i32();
    rd.i16();
  }
  if (!rd.ok() || std::size_t(n) != kinds.size()) {
    if (error) *error = "aggregate reply does not match the query";
    return {};
  }
  std::vector<std::optional<std::string>> acc(kinds.size());
  for (const auto& r : replies) {
    for (const auto& m : r.messages) {
      if (m.empty() || m[0] != 'D') continue;
      protocol::BodyReader dr({m.data() + 5, m.size() - 5});
      int cols = dr.i16().value_or(0);
      for (int c = 0; c < cols && std::size_t(c) < kinds.size(); ++c) {
        auto len = dr.i32();
        if (!len || *len < 0) continue;  // NULL: ignored by every aggregate here
        std::string v(dr.bytes(std::size_t(*len)).value_or(""));
        auto& a = acc[std::size_t(c)];
        const int type = types[std::size_t(c)];
        if (!a) {
          a = v;
          continue;
        }
        switch (kinds[std::size_t(c)]) {
          case AggregateKind::Count:
            a = decimal_add(*a, v);
            break;
          case AggregateKind::Sum:
            if (is_float_type(type)) a = format_double(parse_double(*a) + parse_double(v));
            else if (is_exact_numeric(type)) a = decimal_add(*a, v);
            else {
              if (error) *error = "cross-shard sum() over a column of type oid " + std::to_string(type) + " is not supported";
              return {};
            }
            break;
          case AggregateKind::Min:
          case AggregateKind::Max: {
            int cmp;
            if (is_float_type(type)) {
              double x = parse_double(v), y = parse_double(*a);
              cmp = x < y ? -1 : x > y ? 1 : 0;
            } else if (is_exact_numeric(type)) {
              cmp = decimal_compare(v, *a);
            } else {
              if (error) *error = "cross-shard min()/max() over a column of type oid " + std::to_string(type) + " is not supported";
              return {};
            }
            if ((kinds[std::size_t(c)] == AggregateKind::Min && cmp < 0) ||
                (kinds[std::size_t(c)] == AggregateKind::Max && cmp > 0))
              a = v;
            break;
          }
        }
      }
    }
  }
  out.push_back(*row_description);
  std::string row;
  protocol::MessageWriter w(row);
  w.begin('D').i16(std::int16_t(kinds.size()));
  for (std::size_t c = 0; c < kinds.size(); ++c) {
    if (!acc[c] && kinds[c] == AggregateKind::Count) acc[c] = "0";
    if (acc[c]) w.i32(std::int32_t(acc[c]->size())).raw(*acc[c]);
    else w.i32(-1);
  }
  w.end();
  out.push_back(std::move(row));
  std::string done;
  protocol::MessageWriter(done).command_complete("SELECT 1");
  out.push_back(std::move(done));
  return out;
}

}  // namespace shardline::proxy::exec
