#pragma once
// Building the statement a shard runs from the client's parse tree: new protobuf nodes that
// live as long as the builder (the client's nodes are shared, never modified), and PostgreSQL's
// own deparser to turn the result back into SQL. Expressions are compared the way the merge
// planner needs (is this ORDER BY item the same expression as that target?) by their deparsed
// text, which ignores the source positions the trees carry.

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pg_query/pg_query.pb-c.h>

#include "router/parser/parse_tree.hpp"

namespace shardline::router {

class TreeBuilder {
 public:
  explicit TreeBuilder(std::int32_t version) : version_(version) {}

  /// The expression of `SELECT <sql>` parsed once (e.g. "($1::bigint + 5)"); owned by the builder.
  PgQuery__Node* expression(const std::string& sql);
  /// `ORDER BY <ordinal> [DESC] [NULLS FIRST|LAST]` as a SortBy node.
  PgQuery__Node* sort_by_ordinal(int ordinal, bool descending, bool nulls_first);
  /// `<name> AS alias` (alias empty: none) over the shared expression `val`.
  PgQuery__Node* res_target(PgQuery__Node* val, const std::string& alias);
  /// A copy of aggregate call `f` with another function name (avg(x) FILTER (...) -> sum(x) FILTER (...)).
  PgQuery__Node* renamed_call(const PgQuery__FuncCall& f, const std::string& name);
  /// `(<a>) OR true`: keeps `a` (and the types it gives its parameters) but lets every row pass.
  PgQuery__Node* or_true(PgQuery__Node* a);

  /// The SQL text of a whole SELECT statement; nullopt with `error` when the deparser fails.
  std::optional<std::string> deparse(const PgQuery__SelectStmt& s, std::string* error);
  /// The deparsed text of one expression (cached by node): equal texts, equal expressions.
  const std::string& text(const PgQuery__Node* n);

 private:
  template <class T>
  T* keep(std::unique_ptr<T> p) {
    T* raw = p.get();
    owned_.push_back(std::shared_ptr<void>(std::move(p)));
    return raw;
  }
  char* string(const std::string& s);

  std::int32_t version_;
  std::vector<std::shared_ptr<void>> owned_;
  std::vector<ParseTree> parsed_;
  std::vector<std::unique_ptr<std::string>> strings_;
  std::deque<std::pair<const PgQuery__Node*, std::string>> texts_;  ///< deque: text() hands out references
};

}  // namespace shardline::router
