#include "router/parser/parse_tree.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <pg_query.h>

namespace shardline::router {
namespace {

/// 1-based character (not byte) position of byte offset `offset`, as PostgreSQL reports
/// positions: UTF-8 continuation bytes do not start a character.
int character_position(std::string_view sql, std::size_t offset) {
  int chars = 0;
  for (std::size_t i = 0; i < offset && i < sql.size(); ++i) {
    if ((static_cast<unsigned char>(sql[i]) & 0xC0) != 0x80) ++chars;
  }
  return chars + 1;
}

bool is_ident_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '$' || c >= 0x80;
}

bool is_operator_char(char c) {
  switch (c) {
    case '~': case '!': case '@': case '#': case '^': case '&': case '|': case '`': case '?':
    case '+': case '-': case '*': case '/': case '%': case '<': case '>': case '=':
      return true;
    default:
      return false;
  }
}

bool word_is(std::string_view word, std::string_view lower) {
  if (word.size() != lower.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    char c = word[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

/// Words that start a new operand list (boolean connectives are flattened into lists by the
/// grammar, so `a = 1 OR a = 2 OR ...` is shallow however long it is).
bool resets_chain(std::string_view w) {
  for (std::string_view k : {"and", "or", "when", "then", "else", "select", "from", "where",
                             "values", "set", "returning"}) {
    if (word_is(w, k)) return true;
  }
  return false;
}

/// Keyword operators that nest to the left like binary operators do.
bool chains(std::string_view w) {
  for (std::string_view k : {"is", "isnull", "notnull", "collate", "at", "like", "ilike",
                             "similar", "between", "overlaps"}) {
    if (word_is(w, k)) return true;
  }
  return false;
}

/// The index just past the quoted run opening at `i` (a string or quoted identifier closed by
/// `quote`, a doubled quote standing for itself; with `escapes`, backslash escapes as in E'..').
std::size_t skip_quoted(std::string_view sql, std::size_t i, char quote, bool escapes) {
  const std::size_t n = sql.size();
  for (++i; i < n;) {
    if (escapes && sql[i] == '\\') {
      i += 2;
    } else if (sql[i] == quote) {
      if (i + 1 < n && sql[i + 1] == quote) i += 2;
      else return i + 1;
    } else {
      ++i;
    }
  }
  return n;
}

/// Counts operators chained inside one expression (per parenthesis level, restarted by ',' and
/// by connectives) and the parenthesis depth, skipping literals, quoted identifiers and comments
/// the way PostgreSQL's scanner does (standard_conforming_strings = on). Left-deep chains are
/// the one shape that the grammar's own 10000-entry stack does not bound; nested sub-selects
/// are bounded by it, but only after libpg_query has already overflowed an 8 MB stack.
std::optional<ParseError> check_operator_chains(std::string_view sql) {
  thread_local std::vector<int> levels;
  levels.assign(1, 0);
  const std::size_t n = sql.size();
  std::size_t i = 0;
  auto bump = [&](std::size_t at) -> std::optional<ParseError> {
    if (++levels.back() > ParseTree::kMaxChainedOperators) {
      return ParseError{"expression nests more than " +
                            std::to_string(ParseTree::kMaxChainedOperators) +
                            " chained operators, too deep to parse safely",
                        character_position(sql, at)};
    }
    return std::nullopt;
  };
  while (i < n) {
    const char c = sql[i];
    const char next = i + 1 < n ? sql[i + 1] : '\0';
    if (c == '-' && next == '-') {
      while (i < n && sql[i] != '\n') ++i;
    } else if (c == '/' && next == '*') {
      int depth = 0;
      while (i < n) {
        if (sql[i] == '/' && i + 1 < n && sql[i + 1] == '*') {
          ++depth;
          i += 2;
        } else if (sql[i] == '*' && i + 1 < n && sql[i + 1] == '/') {
          i += 2;
          if (--depth == 0) break;
        } else {
          ++i;
        }
      }
    } else if (c == '\'') {
      const bool escapes = i > 0 && (sql[i - 1] == 'e' || sql[i - 1] == 'E') &&
                           (i < 2 || !is_ident_char(static_cast<unsigned char>(sql[i - 2])));
      i = skip_quoted(sql, i, '\'', escapes);
    } else if (c == '"') {
      i = skip_quoted(sql, i, '"', false);
    } else if (c == '$') {
      // $n parameter, or a dollar-quoted string $tag$...$tag$.
      std::size_t j = i + 1;
      if (j < n && !(sql[j] >= '0' && sql[j] <= '9')) {
        while (j < n && sql[j] != '$' && is_ident_char(static_cast<unsigned char>(sql[j]))) ++j;
      }
      if (j < n && sql[j] == '$') {
        const std::string_view tag = sql.substr(i, j - i + 1);
        const std::size_t close = sql.find(tag, j + 1);
        i = close == std::string_view::npos ? n : close + tag.size();
      } else {
        i = j;
      }
    } else if (is_ident_char(static_cast<unsigned char>(c))) {
      const std::size_t start = i;
      if (c >= '0' && c <= '9') {
        // a number: digits, '.', exponent with its sign
        while (i < n) {
          const char d = sql[i];
          if ((d == 'e' || d == 'E') && i + 1 < n && (sql[i + 1] == '+' || sql[i + 1] == '-')) {
            i += 2;
          } else if (is_ident_char(static_cast<unsigned char>(d)) || d == '.') {
            ++i;
          } else {
            break;
          }
        }
        continue;
      }
      while (i < n && is_ident_char(static_cast<unsigned char>(sql[i]))) ++i;
      const std::string_view word = sql.substr(start, i - start);
      if (resets_chain(word)) {
        levels.back() = 0;
      } else if (chains(word)) {
        if (auto e = bump(start)) return e;
      }
    } else if (c == '(' || c == '[') {
      if (static_cast<int>(levels.size()) > ParseTree::kMaxParenthesisDepth) {
        return ParseError{"statement nests parentheses more than " +
                              std::to_string(ParseTree::kMaxParenthesisDepth) +
                              " deep, too deep to parse safely",
                          character_position(sql, i)};
      }
      levels.push_back(0);
      ++i;
    } else if (c == ')' || c == ']') {
      if (levels.size() > 1) levels.pop_back();
      ++i;
    } else if (c == ',' || c == ';') {
      levels.back() = 0;
      ++i;
    } else if (c == ':' && next == ':') {
      if (auto e = bump(i)) return e;
      i += 2;
    } else if (is_operator_char(c)) {
      if (auto e = bump(i)) return e;
      while (i < n && is_operator_char(sql[i]) &&
             !(sql[i] == '-' && i + 1 < n && sql[i + 1] == '-') &&
             !(sql[i] == '/' && i + 1 < n && sql[i + 1] == '*')) {
        ++i;
      }
    } else {
      ++i;
    }
  }
  return std::nullopt;
}

std::optional<std::uint64_t> read_varint(const std::uint8_t*& p, const std::uint8_t* end) {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64 && p < end; shift += 7) {
    const std::uint8_t b = *p++;
    v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) return v;
  }
  return std::nullopt;
}

enum class DepthCheck { Ok, TooDeep, Malformed };

/// Walks the protobuf wire format iteratively (guided by the descriptors, to know which
/// length-delimited fields are sub-messages) and measures message nesting, so that the
/// recursive unpacker only ever sees trees it can handle.
DepthCheck check_protobuf_depth(const std::uint8_t* data, std::size_t len) {
  struct Frame {
    const ProtobufCMessageDescriptor* descriptor;
    const std::uint8_t* end;
  };
  thread_local std::vector<Frame> stack;
  stack.clear();
  const std::uint8_t* p = data;
  stack.push_back({&pg_query__parse_result__descriptor, data + len});
  while (!stack.empty()) {
    if (p == stack.back().end) {
      stack.pop_back();
      continue;
    }
    const auto tag = read_varint(p, stack.back().end);
    if (!tag) return DepthCheck::Malformed;
    const auto field = static_cast<unsigned>(*tag >> 3);
    switch (*tag & 7) {
      case 0:
        if (!read_varint(p, stack.back().end)) return DepthCheck::Malformed;
        break;
      case 1:
        if (stack.back().end - p < 8) return DepthCheck::Malformed;
        p += 8;
        break;
      case 5:
        if (stack.back().end - p < 4) return DepthCheck::Malformed;
        p += 4;
        break;
      case 2: {
        const auto size = read_varint(p, stack.back().end);
        if (!size || *size > static_cast<std::uint64_t>(stack.back().end - p)) {
          return DepthCheck::Malformed;
        }
        const ProtobufCFieldDescriptor* f =
            protobuf_c_message_descriptor_get_field(stack.back().descriptor, field);
        if (f != nullptr && f->type == PROTOBUF_C_TYPE_MESSAGE) {
          if (static_cast<int>(stack.size()) >= ParseTree::kMaxTreeDepth) return DepthCheck::TooDeep;
          stack.push_back({static_cast<const ProtobufCMessageDescriptor*>(f->descriptor),
                           p + *size});
        } else {
          p += *size;
        }
        break;
      }
      default:
        return DepthCheck::Malformed;
    }
  }
  return p == data + len ? DepthCheck::Ok : DepthCheck::Malformed;
}

/// Frees libpg_query's result however the parse ended.
struct ProtobufResultGuard {
  PgQueryProtobufParseResult result;
  ~ProtobufResultGuard() { pg_query_free_protobuf_parse_result(result); }
};

}  // namespace

ParseTree ParseTree::parse(std::string_view sql) {
  ParseTree tree;
  if (const auto nul = sql.find('\0'); nul != std::string_view::npos) {
    tree.error_ = ParseError{"statement text contains a NUL byte", character_position(sql, nul)};
    return tree;
  }
  // libpg_query wants a C string; reuse one buffer per thread so that the hot path does not
  // allocate once the buffer has grown to the usual statement size.
  if (auto e = check_operator_chains(sql)) {
    tree.error_ = std::move(*e);
    return tree;
  }
  thread_local std::string buffer;
  buffer.assign(sql);
  const ProtobufResultGuard parsed{pg_query_parse_protobuf(buffer.c_str())};
  if (parsed.result.error != nullptr) {
    const PgQueryError& e = *parsed.result.error;
    tree.error_ = ParseError{e.message != nullptr ? e.message : "syntax error", e.cursorpos};
    return tree;
  }
  const auto* data = reinterpret_cast<const std::uint8_t*>(parsed.result.parse_tree.data);
  const std::size_t len = parsed.result.parse_tree.len;
  switch (check_protobuf_depth(data, len)) {
    case DepthCheck::Ok:
      break;
    case DepthCheck::TooDeep:
      tree.error_ = ParseError{"statement nests more than " +
                                   std::to_string(ParseTree::kMaxTreeDepth) +
                                   " levels deep, too deep to analyze safely",
                               0};
      return tree;
    case DepthCheck::Malformed:
      tree.error_ = ParseError{"libpg_query returned a malformed parse tree", 0};
      return tree;
  }
  // protobuf-c copies every string out of the buffer, so the tree outlives `parsed`.
  tree.result_ = pg_query__parse_result__unpack(
      nullptr, len, data);
  if (tree.result_ == nullptr) {
    tree.error_ = ParseError{"libpg_query returned a parse tree that protobuf-c cannot unpack", 0};
  }
  return tree;
}

ParseTree::ParseTree(ParseTree&& other) noexcept
    : result_(std::exchange(other.result_, nullptr)),
      error_(std::exchange(other.error_, std::nullopt)) {}

ParseTree& ParseTree::operator=(ParseTree&& other) noexcept {
  if (this != &other) {
    reset();
    result_ = std::exchange(other.result_, nullptr);
    error_ = std::exchange(other.error_, std::nullopt);
  }
  return *this;
}

ParseTree::~ParseTree() { reset(); }

void ParseTree::reset() noexcept {
  if (result_ != nullptr) {
    pg_query__parse_result__free_unpacked(result_, nullptr);
    result_ = nullptr;
  }
}

std::span<PgQuery__RawStmt* const> ParseTree::statements() const {
  if (result_ == nullptr || result_->n_stmts == 0) return {};
  return {result_->stmts, result_->n_stmts};
}

namespace {

bool any_in_message(const ProtobufCMessage* m, const std::function<bool(const PgQuery__Node*)>& visit);

bool any_in(const ProtobufCMessage* c, const std::function<bool(const PgQuery__Node*)>& visit) {
  if (!c) return false;
  if (c->descriptor == &pg_query__node__descriptor) return visit(reinterpret_cast<const PgQuery__Node*>(c));
  return any_in_message(c, visit);
}

bool any_in_message(const ProtobufCMessage* m, const std::function<bool(const PgQuery__Node*)>& visit) {
  const ProtobufCMessageDescriptor* d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; ++i) {
    const ProtobufCFieldDescriptor& f = d->fields[i];
    if (f.type != PROTOBUF_C_TYPE_MESSAGE) continue;
    const char* base = reinterpret_cast<const char*>(m) + f.offset;
    if (f.label == PROTOBUF_C_LABEL_REPEATED) {
      std::size_t count = *reinterpret_cast<const std::size_t*>(reinterpret_cast<const char*>(m) + f.quantifier_offset);
      auto* const* items = *reinterpret_cast<ProtobufCMessage* const* const*>(base);
      for (std::size_t k = 0; k < count; ++k)
        if (any_in(items[k], visit)) return true;
    } else if (any_in(*reinterpret_cast<ProtobufCMessage* const*>(base), visit)) {
      return true;
    }
  }
  return false;
}

}  // namespace

bool any_child(const PgQuery__Node* n, const std::function<bool(const PgQuery__Node*)>& visit) {
  if (!n) return false;
  const ProtobufCMessageDescriptor* d = n->base.descriptor;
  for (unsigned i = 0; i < d->n_fields; ++i) {
    if (d->fields[i].id != unsigned(n->node_case)) continue;
    const auto* m = *reinterpret_cast<ProtobufCMessage* const*>(reinterpret_cast<const char*>(n) + d->fields[i].offset);
    return m && any_in_message(m, visit);
  }
  return false;
}

}  // namespace shardline::router
