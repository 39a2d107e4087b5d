#include "router/parser/literal_normalizer.hpp"

#include <cctype>
#include <cstdint>
#include <string_view>
#include <string>
#include <vector>

namespace shardline::router {

namespace {
bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$' || (c & 0x80); }

/// A word of the text, lower-cased, held without allocating: only keywords (all short) are
/// compared with it, so a longer word is kept as "long" and equals none of them.
class Word {
 public:
  void assign(std::string_view w) {
    n_ = w.size() < sizeof s_ ? w.size() : sizeof s_;
    if (n_ == sizeof s_) return;
    for (std::size_t i = 0; i < n_; ++i) s_[i] = char(std::tolower(static_cast<unsigned char>(w[i])));
  }
  bool operator==(std::string_view k) const { return n_ == k.size() && std::string_view(s_, n_) == k; }

 private:
  char s_[16];
  std::size_t n_ = 0;
};

/// by_list[depth] of normalize_literals as bits, so that no call allocates; a text nested deeper
/// than 63 parentheses is not normalized (push fails).
class ByList {
 public:
  bool back() const { return (bits_ >> depth_) & 1u; }
  void set_back(bool v) { bits_ = v ? bits_ | (std::uint64_t(1) << depth_) : bits_ & ~(std::uint64_t(1) << depth_); }
  bool push() {
    if (depth_ == 63) return false;
    ++depth_;
    set_back(false);
    return true;
  }
  void pop() {
    if (depth_ > 0) --depth_;
  }

 private:
  std::uint64_t bits_ = 0;
  int depth_ = 0;
};
}  // namespace

bool normalize_literals(std::string_view sql, NormalizedQuery& out) {
  out.text.clear();
  out.literals.clear();
  out.quoted.clear();
  if (sql.find('$') != std::string_view::npos) return false;  // parameters or dollar quoting
  out.text.reserve(sql.size() + 8);
  std::size_t i = 0;
  const std::size_t n = sql.size();
  auto placeholder = [&](std::string value, bool quoted) {
    out.literals.push_back(std::move(value));
    out.quoted.push_back(quoted);
    out.text += '$';
    out.text += std::to_string(out.literals.size());
  };
  // ORDER BY 2 and GROUP BY 2 are output positions, not constants: they stay in the text (a $n
  // there would sort by a parameter). by_list[depth]: inside an ORDER/GROUP BY list at that
  // parenthesis depth; after_by: the last word was that BY (or a ',' followed it in the list).
  ByList by_list;
  Word last_word, word_before;
  auto position_context = [&] {
    std::size_t b = out.text.size();
    while (b > 0 && std::isspace(static_cast<unsigned char>(out.text[b - 1]))) --b;
    if (!by_list.back() || b == 0) return false;
    if (out.text[b - 1] == ',') return true;
    return last_word == "by" && b >= 2 && std::tolower(static_cast<unsigned char>(out.text[b - 1])) == 'y';
  };
  while (i < n) {
    const char c = sql[i];
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_' || (c & 0x80)) {
      std::size_t j = i;
      while (j < n && ident_char(sql[j]) && sql[j] != '$') ++j;
      if (j < n && sql[j] == '\'') {  // a prefixed string (E'..', B'..'): its own branch below
        out.text.append(sql.substr(i, j - i));
        i = j;
        continue;
      }
      word_before = last_word;
      last_word.assign(sql.substr(i, j - i));
      const Word& w = last_word;
      if (w == "by" && (word_before == "order" || word_before == "group")) by_list.set_back(true);
      static const char* const kEnds[] = {"limit", "offset", "having", "window", "fetch", "for", "union", "intersect",
                                          "except", "returning", "select", "from", "where", "into", "on"};
      for (const char* k : kEnds)
        if (w == k) by_list.set_back(false);
      out.text.append(sql.substr(i, j - i));
      i = j;
      continue;
    }
    if (c == '(' && !by_list.push()) return false;
    if (c == ')') by_list.pop();
    if (c == '-' && i + 1 < n && sql[i + 1] == '-') {  // line comment
      std::size_t e = sql.find('\n', i);
      e = e == std::string_view::npos ? n : e + 1;
      out.text.append(sql.substr(i, e - i));
      i = e;
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {  // block comment (nested)
      int depth = 0;
      std::size_t j = i;
      while (j < n) {
        if (sql[j] == '/' && j + 1 < n && sql[j + 1] == '*') {
          ++depth;
          j += 2;
        } else if (sql[j] == '*' && j + 1 < n && sql[j + 1] == '/') {
          j += 2;
          if (--depth == 0) break;
        } else {
          ++j;
        }
      }
      if (depth != 0) return false;
      out.text.append(sql.substr(i, j - i));
      i = j;
    } else if (c == '"') {  // quoted identifier
      std::size_t j = i + 1;
      for (;;) {
        if (j >= n) return false;
        if (sql[j] == '"') {
          if (j + 1 < n && sql[j + 1] == '"') {
            j += 2;
            continue;
          }
          break;
        }
        ++j;
      }
      out.text.append(sql.substr(i, j + 1 - i));
      i = j + 1;
    } else if (c == '\'') {
      // A plain string constant; prefixed ones (E'', B'', X'', U&'') keep their text, and so
      // does a typed literal (DATE '...'), which only a constant may follow.
      std::size_t back = out.text.size();
      while (back > 0 && std::isspace(static_cast<unsigned char>(out.text[back - 1]))) --back;
      const bool after_word = back > 0 && ident_char(out.text[back - 1]) && back == out.text.size();
      bool typed = false;
      if (back > 0 && back != out.text.size() && ident_char(out.text[back - 1])) {
        // `word 'x'`: a typed literal unless the word is a keyword that takes an expression.
        std::size_t w = back;
        while (w > 0 && ident_char(out.text[w - 1])) --w;
        std::string word(out.text.substr(w, back - w));
        for (auto& ch : word) ch = char(std::tolower(static_cast<unsigned char>(ch)));
        static const char* const kExpr[] = {"and", "or", "not", "in", "is", "like", "ilike", "then", "else",
                                            "when", "select", "values", "set", "where", "by", "between",
                                            "return", "returning", "on", "as", "distinct", "all", "any", "some"};
        typed = true;
        for (const char* k : kExpr)
          if (word == k) typed = false;
      }
      std::string value;
      std::size_t j = i + 1;
      for (;;) {
        if (j >= n) return false;
        if (sql[j] == '\'') {
          if (j + 1 < n && sql[j + 1] == '\'') {
            value += '\'';
            j += 2;
            continue;
          }
          break;
        }
        value += sql[j++];
      }
      // Adjacent string constants separated by a newline are concatenated by PostgreSQL.
      std::size_t k = j + 1;
      bool continued = false;
      while (k < n && std::isspace(static_cast<unsigned char>(sql[k]))) {
        if (sql[k] == '\n') continued = true;
        ++k;
      }
      if ((k < n && sql[k] == '\'' && continued) || after_word || typed) {
        out.text.append(sql.substr(i, j + 1 - i));
      } else {
        placeholder(std::move(value), true);
      }
      i = j + 1;
    } else if (std::isdigit(static_cast<unsigned char>(c)) ||
               (c == '.' && i + 1 < n && std::isdigit(static_cast<unsigned char>(sql[i + 1])))) {
      if (!out.text.empty() && (ident_char(out.text.back()) || out.text.back() == '.')) {
        out.text += c;  // part of an identifier (t1) or a qualified name
        ++i;
        continue;
      }
      std::size_t j = i;
      while (j < n && std::isdigit(static_cast<unsigned char>(sql[j]))) ++j;
      if (j < n && sql[j] == '.' && !(j + 1 < n && sql[j + 1] == '.')) {
        ++j;
        while (j < n && std::isdigit(static_cast<unsigned char>(sql[j]))) ++j;
      }
      if (j < n && (sql[j] == 'e' || sql[j] == 'E')) {
        std::size_t k = j + 1;
        if (k < n && (sql[k] == '+' || sql[k] == '-')) ++k;
        if (k < n && std::isdigit(static_cast<unsigned char>(sql[k]))) {
          j = k;
          while (j < n && std::isdigit(static_cast<unsigned char>(sql[j]))) ++j;
        }
      }
      if (j < n && ident_char(sql[j])) return false;  // 1abc, 0x1F: not a plain number
      if (position_context()) {
        out.text.append(sql.substr(i, j - i));
        i = j;
        continue;
      }
      placeholder(std::string(sql.substr(i, j - i)), false);
      i = j;
    } else {
      out.text += c;
      ++i;
    }
  }
  return !out.literals.empty();
}

}  // namespace shardline::router
