// substitute_literals (declared in merge_plan.hpp): the inverse of literal_normalizer for the
// shard SQL of a statement cached by its shape. It scans the text the way PostgreSQL's lexer
// does (standard_conforming_strings on) so that only real parameter symbols are replaced.

#include <cctype>
#include <string>

#include "router/plan/merge_plan.hpp"

namespace shardline::router {

namespace {

bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$' || (c & 0x80); }

/// End (one past) of the token starting at `i` that must be copied verbatim: a string, quoted
/// identifier, comment or dollar-quoted string; `i` itself when there is none there.
std::size_t skip_verbatim(std::string_view s, std::size_t i) {
  const std::size_t n = s.size();
  const char c = s[i];
  if (c == '-' && i + 1 < n && s[i + 1] == '-') {
    std::size_t e = s.find('\n', i);
    return e == std::string_view::npos ? n : e + 1;
  }
  if (c == '/' && i + 1 < n && s[i + 1] == '*') {  // block comments nest
    int depth = 0;
    std::size_t j = i;
    while (j < n) {
      if (s[j] == '/' && j + 1 < n && s[j + 1] == '*') {
        ++depth;
        j += 2;
      } else if (s[j] == '*' && j + 1 < n && s[j + 1] == '/') {
        j += 2;
        if (--depth == 0) return j;
      } else {
        ++j;
      }
    }
    return n;
  }
  if (c == '\'' || c == '"') {
    // E'...' strings take backslash escapes; others only the doubled quote.
    const bool escapes = c == '\'' && i > 0 && (s[i - 1] == 'e' || s[i - 1] == 'E') && (i < 2 || !ident_char(s[i - 2]));
    std::size_t j = i + 1;
    while (j < n) {
      if (escapes && s[j] == '\\') {
        j += 2;
        continue;
      }
      if (s[j] == c) {
        if (j + 1 < n && s[j + 1] == c) {
          j += 2;
          continue;
        }
        return j + 1;
      }
      ++j;
    }
    return n;
  }
  if (c == '$' && (i == 0 || !ident_char(s[i - 1])) && i + 1 < n && !std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
    // $tag$ ... $tag$ (the tag may be empty)
    std::size_t j = i + 1;
    while (j < n && ident_char(s[j]) && s[j] != '$') ++j;
    if (j >= n || s[j] != '$') return i;
    std::string_view tag = s.substr(i, j + 1 - i);
    std::size_t close = s.find(tag, j + 1);
    return close == std::string_view::npos ? n : close + tag.size();
  }
  return i;
}

}  // namespace

std::string substitute_literals(std::string_view sql, const std::vector<std::string>& literals,
                                const std::vector<bool>& quoted) {
  std::string out;
  out.reserve(sql.size() + 16);
  std::size_t i = 0;
  const std::size_t n = sql.size();
  while (i < n) {
    if (std::size_t e = skip_verbatim(sql, i); e != i) {
      out.append(sql.substr(i, e - i));
      i = e;
      continue;
    }
    const char c = sql[i];
    if (c == '$' && (i == 0 || !ident_char(sql[i - 1])) && i + 1 < n && std::isdigit(static_cast<unsigned char>(sql[i + 1]))) {
      std::size_t j = i + 1;
      std::size_t number = 0;
      while (j < n && std::isdigit(static_cast<unsigned char>(sql[j])) && number <= literals.size()) number = number * 10 + std::size_t(sql[j++] - '0');
      while (j < n && std::isdigit(static_cast<unsigned char>(sql[j]))) ++j;  // beyond any literal
      if (number >= 1 && number <= literals.size()) {
        const std::string& lit = literals[number - 1];
        if (number - 1 < quoted.size() && quoted[number - 1]) {
          out += '\'';
          for (char ch : lit) out += ch == '\'' ? std::string("''") : std::string(1, ch);
          out += '\'';
        } else {
          out += lit;
        }
      } else {
        out.append(sql.substr(i, j - i));
      }
      i = j;
      continue;
    }
    // A word is copied whole, so the `$` inside an identifier (a$1) is never a parameter.
    if (ident_char(c)) {
      std::size_t j = i;
      while (j < n && ident_char(sql[j])) ++j;
      out.append(sql.substr(i, j - i));
      i = j;
      continue;
    }
    out += c;
    ++i;
  }
  return out;
}

}  // namespace shardline::router
