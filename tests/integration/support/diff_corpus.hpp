#pragma once
// The query corpus of the scatter-gather differential test: seeded, tenant-less reads of the
// tables of diff_data.hpp covering SPEC section 6 (ORDER BY in all its forms, LIMIT/OFFSET,
// count/sum/min/max/avg, bool_and/bool_or, GROUP BY, HAVING, DISTINCT, key IN (...) and their
// combinations) as `required` queries, plus `optional` ones a proxy may refuse with 0A000
// (window functions, count(DISTINCT), float8 sums, string_agg, ordered-set aggregates, ...).
//
// Each query knows how far its ORDER BY determines the answer, so the comparison can accept
// every order one database could legitimately return and no other.

#include <cstdint>
#include <string>
#include <vector>

#include "tests/integration/support/diff_data.hpp"

namespace shardline::testing {

/// How much of the row order an answer must reproduce.
enum class DiffOrder {
  Total,      ///< ORDER BY ends in a unique key: exactly one order is right
  Runs,       ///< rows ordered by the visible columns `run_keys`; order within equal keys is free
  Unordered,  ///< no ORDER BY: any permutation
};

struct DiffQuery {
  int index = 0;
  std::string simple_sql;    ///< literals inline, for the simple Query protocol
  std::string extended_sql;  ///< the same with $n parameters where natural
  std::vector<std::string> params;  ///< text values of $1.. for Bind
  bool required = true;
  std::vector<std::string> features;
  DiffOrder order = DiffOrder::Unordered;
  std::vector<int> run_keys;  ///< output column indexes (DiffOrder::Runs)
};

/// `count` distinct queries for `seed` over `data` (same seed, same corpus).
std::vector<DiffQuery> generate_diff_corpus(std::uint64_t seed, const DiffDataset& data, int count);

}  // namespace shardline::testing
