#pragma once
// Judges one execution of a differential query: the plain database's raw wire answer against
// the proxy's, compared as exact wire text (RowDescription names, type OIDs, typlen, typmod and
// format codes, but not table OIDs and attribute numbers, which differ between databases;
// DataRow bytes; CommandComplete tags; the message sequence), with the row order checked only
// as far as the query's ORDER BY determines it.

#include <string>
#include <vector>

#include "tests/integration/support/diff_corpus.hpp"
#include "tests/integration/support/raw_client.hpp"

namespace shardline::testing {

enum class DiffVerdict {
  Identical,  ///< the same wire answer (or the same SQLSTATE where both failed)
  Refused,    ///< the proxy said 0A000 where the database answered
  Wrong,      ///< different rows, a different error, an error for rows or rows for an error
};
const char* verdict_name(DiffVerdict v);

/// What one side sent back up to ReadyForQuery, or why it did not.
struct DiffAnswer {
  std::vector<RawMessage> messages;
  std::string transport_error;  ///< non-empty: the connection failed or timed out
};

struct DiffOutcome {
  DiffVerdict verdict = DiffVerdict::Identical;
  std::string reason;  ///< for Refused and Wrong: what differed
};

DiffOutcome compare_answers(const DiffQuery& query, const DiffAnswer& oracle, const DiffAnswer& proxy);

/// A readable rendering (binary values as \xNN), at most `max_rows` rows and `max_chars` chars.
std::string render_answer(const DiffAnswer& answer, std::size_t max_rows = 6, std::size_t max_chars = 1500);

}  // namespace shardline::testing
