#pragma once
// Statement shapes for the route-template cache: `WHERE aid = 42` and `WHERE aid = 43` share the
// template of `WHERE aid = $1`, and the literals are routed as if they were bound parameters.
// A cheap lexical pass (comments, quoted identifiers and strings respected); anything it is not
// sure about (dollar quoting, existing $n parameters, prefixed strings like E'..') leaves the
// text unchanged, and a shape PostgreSQL's grammar rejects falls back to the original text.

#include <string>
#include <string_view>
#include <vector>

namespace shardline::router {

struct NormalizedQuery {
  std::string text;                   ///< the query with literals replaced by $1, $2, ...
  std::vector<std::string> literals;  ///< their values, as a Bind in text format would carry them
  /// literals[i] was a quoted string (type unknown to PostgreSQL) rather than a number: `= 5`
  /// and `= '5'` share a shape but type differently (int4 versus the key's own type).
  std::vector<bool> quoted;
};

/// False when the text has no literal to replace or cannot be normalized safely.
bool normalize_literals(std::string_view sql, NormalizedQuery& out);

}  // namespace shardline::router
