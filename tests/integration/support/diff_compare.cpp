#include "tests/integration/support/diff_compare.hpp"

#include <arpa/inet.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace shardline::testing {

namespace {

/// The parts of an answer that must match, split out of its messages.
struct Parsed {
  std::string shape;  ///< message tags in order, a run of DataRows as one 'D' (ParameterStatus
                      ///< and NoticeResponse left out: they are not part of the answer)
  std::vector<std::string> fields;  ///< per RowDescription column: name, type, typlen, typmod, format
  std::vector<const RawMessage*> rows;
  std::vector<std::string> tags;
  std::string error_code, error_message;
};

std::uint32_t u32(const std::string& s, std::size_t at) {
  std::uint32_t v = 0;
  if (at + 4 <= s.size()) std::memcpy(&v, s.data() + at, 4);
  return ntohl(v);
}
std::uint16_t u16(const std::string& s, std::size_t at) {
  std::uint16_t v = 0;
  if (at + 2 <= s.size()) std::memcpy(&v, s.data() + at, 2);
  return ntohs(v);
}

/// RowDescription: per field name\0, table OID, attnum, type OID, typlen, typmod, format.
/// https://www.postgresql.org/docs/current/protocol-message-formats.html
std::vector<std::string> describe_fields(const std::string& body) {
  std::vector<std::string> out;
  const int n = u16(body, 0);
  std::size_t pos = 2;
  for (int i = 0; i < n; ++i) {
    const std::size_t z = body.find('\0', pos);
    if (z == std::string::npos || z + 19 > body.size()) {
      out.push_back("<malformed RowDescription>");
      break;
    }
    const std::string name = body.substr(pos, z - pos);
    pos = z + 1 + 6;  // skip table OID and attnum
    out.push_back(fmt::format("{}:type={}:len={}:typmod={}:format={}", name, u32(body, pos),
                              std::int16_t(u16(body, pos + 4)), std::int32_t(u32(body, pos + 6)),
                              u16(body, pos + 10)));
    pos += 12;
  }
  return out;
}

Parsed parse(const DiffAnswer& a) {
  Parsed p;
  for (const auto& m : a.messages) {
    if (m.tag == 'S' || m.tag == 'N') continue;
    if (m.tag != 'D' || p.shape.empty() || p.shape.back() != 'D') p.shape += m.tag;
    if (m.tag == 'T') p.fields = describe_fields(m.body);
    if (m.tag == 'D') p.rows.push_back(&m);
    if (m.tag == 'C') p.tags.push_back(m.command_tag());
    if (m.tag == 'E' && p.error_code.empty()) {
      p.error_code = m.sqlstate();
      p.error_message = m.message();
    }
  }
  return p;
}

bool valid_utf8(const std::string& v) {
  for (std::size_t i = 0; i < v.size();) {
    const unsigned char c = static_cast<unsigned char>(v[i]);
    const int n = c < 0x80 ? 0 : (c >> 5) == 0x6 ? 1 : (c >> 4) == 0xe ? 2 : (c >> 3) == 0x1e ? 3 : -1;
    if (n < 0 || i + std::size_t(n) >= v.size()) return false;
    for (int k = 1; k <= n; ++k)
      if ((static_cast<unsigned char>(v[i + std::size_t(k)]) >> 6) != 0x2) return false;
    i += std::size_t(n) + 1;
  }
  return true;
}

/// Text as it is (non-ASCII included); control bytes, and every non-ASCII byte of a value that
/// is not UTF-8 (binary format), as \xNN.
std::string escaped(const std::string& v) {
  const bool text = valid_utf8(v);
  std::string out;
  for (unsigned char c : v) {
    if (c >= 0x20 && c != 0x7f && c != '\\' && (c < 0x80 || text)) out += char(c);
    else out += fmt::format("\\x{:02x}", c);
  }
  return out;
}

std::string row_text(const RawMessage& m) {
  std::string s = "[";
  bool first = true;
  for (const auto& v : m.row()) {
    s += first ? "" : ",";
    first = false;
    s += v ? escaped(*v) : "NULL";
  }
  return s + "]";
}

/// The sort key of a row for DiffOrder::Runs: its `keys` columns, NULL distinct from ''.
std::string run_key(const RawMessage& m, const std::vector<int>& keys) {
  const auto values = m.row();
  std::string k;
  for (int c : keys) {
    if (c < 0 || std::size_t(c) >= values.size()) return "<no such column>";
    k += values[std::size_t(c)] ? fmt::format("V{}:{}", values[std::size_t(c)]->size(), *values[std::size_t(c)]) : "N";
  }
  return k;
}

/// Consecutive rows with equal keys, each run's rows sorted (a multiset).
std::vector<std::pair<std::string, std::vector<std::string>>> runs(const std::vector<const RawMessage*>& rows,
                                                                   const std::vector<int>& keys) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const RawMessage* m : rows) {
    std::string k = run_key(*m, keys);
    if (out.empty() || out.back().first != k) out.emplace_back(std::move(k), std::vector<std::string>{});
    out.back().second.push_back(m->body);
  }
  for (auto& r : out) std::sort(r.second.begin(), r.second.end());
  return out;
}

std::vector<std::string> bodies(const std::vector<const RawMessage*>& rows) {
  std::vector<std::string> out;
  for (const RawMessage* m : rows) out.push_back(m->body);
  return out;
}

/// "" if the rows agree as far as the query's order determines them, else what differs.
std::string compare_rows(const DiffQuery& q, const Parsed& o, const Parsed& p) {
  if (o.rows.size() != p.rows.size()) return fmt::format("{} rows, the database returned {}", p.rows.size(), o.rows.size());
  if (q.order == DiffOrder::Total) {
    for (std::size_t i = 0; i < o.rows.size(); ++i)
      if (o.rows[i]->body != p.rows[i]->body)
        return fmt::format("row {} is {}, the database's is {}", i, row_text(*p.rows[i]), row_text(*o.rows[i]));
    return "";
  }
  if (q.order == DiffOrder::Unordered) {
    auto a = bodies(o.rows), b = bodies(p.rows);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    return a == b ? "" : "a different multiset of rows";
  }
  const auto a = runs(o.rows, q.run_keys), b = runs(p.rows, q.run_keys);
  if (a.size() != b.size()) return fmt::format("{} runs of equal sort keys, the database's answer has {}", b.size(), a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].first != b[i].first) return fmt::format("sort-key run {} has another key (out of order)", i);
    if (a[i].second != b[i].second) return fmt::format("sort-key run {} holds other rows", i);
  }
  return "";
}

template <class T>
std::string joined(const std::vector<T>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " | ") + x;
  return s;
}

}  // namespace

const char* verdict_name(DiffVerdict v) {
  switch (v) {
    case DiffVerdict::Identical: return "identical";
    case DiffVerdict::Refused: return "refused 0A000";
    case DiffVerdict::Wrong: return "wrong";
  }
  return "?";
}

DiffOutcome compare_answers(const DiffQuery& q, const DiffAnswer& oracle, const DiffAnswer& proxy) {
  using V = DiffVerdict;
  if (!oracle.transport_error.empty()) return {V::Wrong, "the plain database did not answer: " + oracle.transport_error};
  if (!proxy.transport_error.empty()) return {V::Wrong, "the proxy did not answer: " + proxy.transport_error};
  const Parsed o = parse(oracle), p = parse(proxy);
  if (!p.error_code.empty()) {
    if (p.error_code == o.error_code) return {V::Identical, ""};
    if (p.error_code == "0A000") return {V::Refused, p.error_message};
    return {V::Wrong, o.error_code.empty() ? fmt::format("error {} ({}) where the database answered", p.error_code, p.error_message)
                                           : fmt::format("error {} ({}), the database's is {} ({})", p.error_code,
                                                         p.error_message, o.error_code, o.error_message)};
  }
  if (!o.error_code.empty()) return {V::Wrong, fmt::format("rows where the database failed with {} ({})", o.error_code, o.error_message)};
  // Every difference, not only the first: a missing ParseComplete says little about the rows.
  std::vector<std::string> why;
  if (o.shape != p.shape) why.push_back(fmt::format("message sequence {}, the database's is {}", p.shape, o.shape));
  if (o.fields != p.fields)
    why.push_back(fmt::format("RowDescription {}, the database's is {}", joined(p.fields), joined(o.fields)));
  if (o.tags != p.tags) why.push_back(fmt::format("CommandComplete {}, the database's is {}", joined(p.tags), joined(o.tags)));
  if (std::string rows = compare_rows(q, o, p); !rows.empty()) why.push_back(rows);
  if (!why.empty()) return {V::Wrong, fmt::format("{}", fmt::join(why, "; "))};
  return {V::Identical, ""};
}

std::string render_answer(const DiffAnswer& a, std::size_t max_rows, std::size_t max_chars) {
  if (!a.transport_error.empty()) return "<no answer: " + a.transport_error + ">";
  std::string s;
  std::size_t rows = 0, shown = 0;
  for (const auto& m : a.messages) {
    if (m.tag == 'S' || m.tag == 'N') continue;
    if (m.tag == 'D') {
      if (++rows > max_rows) continue;
      ++shown;
      s += " D" + row_text(m);
    } else if (m.tag == 'T') {
      s += " T{" + joined(describe_fields(m.body)) + "}";
    } else if (m.tag == 'E') {
      s += fmt::format(" E:{} {}", m.sqlstate(), m.message());
    } else {
      s += " " + m.summary();
    }
  }
  if (rows > shown) s += fmt::format(" (+{} more rows, {} in all)", rows - shown, rows);
  if (s.size() > max_chars) s = s.substr(0, max_chars) + "...";
  return s.empty() ? s : s.substr(1);
}

}  // namespace shardline::testing
