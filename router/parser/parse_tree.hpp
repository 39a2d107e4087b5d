#pragma once
// RAII owner of one libpg_query parse: the protobuf tree unpacked by protobuf-c, or the error
// PostgreSQL's grammar reported. We walk the protobuf structs (not libpg_query's JSON) because
// they come with C types and reflection descriptors, so analysis needs no JSON parser and no
// string matching on node names.

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <pg_query/pg_query.pb-c.h>

namespace shardline::router {

/// Why libpg_query rejected a string.
struct ParseError {
  std::string message;  ///< e.g. `syntax error at or near "FORM"`
  int cursor_pos = 0;   ///< 1-based character position, 0 when unknown (ErrorResponse 'P')
};

/// Owns a PgQuery__ParseResult and frees it in the destructor. Move-only.
///
/// Deeply nested input is refused with an error instead of being parsed: libpg_query's output
/// functions and protobuf-c's unpacker recurse once per tree level and overflow an 8 MB thread
/// stack on expressions like `1+1+...+1` with a few thousand terms (a client could otherwise
/// crash the proxy), and on ~2500 nested sub-selects. Cheap linear checks bound that
/// recursion: chained operators per expression and parenthesis nesting in the SQL text before
/// parsing (the grammar's own 10000-entry stack bounds the other right-nested shapes), and the
/// message nesting depth of libpg_query's protobuf output before unpacking. The limits keep
/// the worst accepted statement well inside a 2 MB thread stack, and are far beyond what
/// PostgreSQL itself accepts with its default max_stack_depth of 2 MB.
///
/// libpg_query keeps a memory context per thread and reuses it across calls; we never call
/// pg_query_exit() (it would only tear that context down for the next call to rebuild).
class ParseTree {
 public:
  static constexpr int kMaxChainedOperators = 1000;
  static constexpr int kMaxParenthesisDepth = 256;
  static constexpr int kMaxTreeDepth = 2000;

  /// Parses `sql` (which need not be NUL-terminated; a NUL byte inside it is an error, as
  /// PostgreSQL's protocol strings cannot contain one). Never throws on bad SQL.
  [[nodiscard]] static ParseTree parse(std::string_view sql);

  ParseTree(ParseTree&& other) noexcept;
  ParseTree& operator=(ParseTree&& other) noexcept;
  ParseTree(const ParseTree&) = delete;
  ParseTree& operator=(const ParseTree&) = delete;
  ~ParseTree();

  [[nodiscard]] bool ok() const { return !error_.has_value(); }
  [[nodiscard]] const std::optional<ParseError>& error() const { return error_; }
  /// The unpacked tree; null when !ok().
  [[nodiscard]] const PgQuery__ParseResult* result() const { return result_; }
  /// The top-level statements (RawStmt: node, stmt_location, stmt_len); empty when !ok() and
  /// for a string with only whitespace and comments.
  [[nodiscard]] std::span<PgQuery__RawStmt* const> statements() const;

 private:
  ParseTree() = default;
  void reset() noexcept;

  PgQuery__ParseResult* result_ = nullptr;
  std::optional<ParseError> error_;
};

/// Calls `visit` on every Node directly below `n`, looking through the plain messages between
/// them (a TypeName, a WindowDef...), until `visit` returns true; returns whether one did. A
/// generic descent by protobuf-c reflection, for analyses that look for a kind of node anywhere.
bool any_child(const PgQuery__Node* n, const std::function<bool(const PgQuery__Node*)>& visit);

}  // namespace shardline::router
