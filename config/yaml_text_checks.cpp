// The pre-parse checks of a config file's raw text (yaml_text_checks.hpp): invalid UTF-8 and
// control bytes, and the document starts that yaml-cpp 0.7 never returns from.
#include "config/yaml_text_checks.hpp"

#include <algorithm>
#include <cstdint>

namespace shardline::config::detail {

std::optional<BytePosition> first_non_text_byte(std::string_view s) {
  BytePosition pos;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 1;
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return BytePosition{i, pos.line, pos.column};
    } else {
      std::uint32_t cp = 0;
      if (c >= 0xc2 && c <= 0xdf) len = 2, cp = c & 0x1f;
      else if (c >= 0xe0 && c <= 0xef) len = 3, cp = c & 0x0f;
      else if (c >= 0xf0 && c <= 0xf4) len = 4, cp = c & 0x07;
      else return BytePosition{i, pos.line, pos.column};
      if (i + len > s.size()) return BytePosition{i, pos.line, pos.column};
      for (std::size_t k = 1; k < len; ++k) {
        const auto cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xc0) != 0x80) return BytePosition{i, pos.line, pos.column};
        cp = (cp << 6) | (cc & 0x3f);
      }
      const bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
      if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return BytePosition{i, pos.line, pos.column};
    }
    if (c == '\n') {
      ++pos.line;
      pos.column = 1;
    } else {
      ++pos.column;
    }
    i += len;
  }
  return std::nullopt;
}

std::optional<BytePosition> document_start_problem(std::string_view s) {
  bool at_start = true;
  int line = 1;
  for (std::size_t i = 0; i < s.size(); ++line) {
    const std::size_t eol = std::min(s.find('\n', i), s.size());
    std::string_view l = s.substr(i, eol - i);
    const bool marker = l.substr(0, 3) == "---" || l.substr(0, 3) == "...";
    std::size_t k = marker ? 3 : 0;
    // `---`, `...` and a directive line (`%` in column 1, which yaml-cpp takes as one even
    // inside a document) start the next document.
    if (marker || l.substr(0, 1) == "%") at_start = true;
    const auto blank = [&] {
      while (k < l.size() && (l[k] == ' ' || l[k] == '\t' || l[k] == '\r')) ++k;
    };
    blank();
    // A root node's properties (a tag `!x`, an anchor `&a`) come before it, on its line or above.
    while (at_start && k < l.size() && (l[k] == '!' || l[k] == '&')) {
      // A tag or anchor name ends at a blank or a flow indicator (`!,` is the tag `!`, then `,`).
      while (k < l.size() && l[k] != ' ' && l[k] != '\t' && l[k] != '\r' && l[k] != ',' && l[k] != '[' &&
             l[k] != ']' && l[k] != '{' && l[k] != '}')
        ++k;
      blank();
    }
    if (at_start && k < l.size() && l[k] != '#' && !(k == 0 && l[k] == '%')) {
      if (l[k] == ',' || l[k] == '"' || l[k] == '\'') return BytePosition{i + k, line, int(k) + 1};
      at_start = false;
    }
    i = eol + 1;
  }
  return std::nullopt;
}

}  // namespace shardline::config::detail
