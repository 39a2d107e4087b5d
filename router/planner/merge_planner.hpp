#pragma once
// Turns the top-level SELECT of a tenant-less read into a MergePlan: the statement each shard
// runs (partial aggregates, hidden sort and group columns, LIMIT n+m) and the operator chain
// that makes the shards' rows the answer one database would give. PostgreSQL's own rules are
// the model throughout: ORDER BY items resolve as output-column positions, then output names,
// then expressions (parse_clause.c findTargetlistEntrySQL92/SQL99); NULLS defaults follow the
// direction; column names are FigureColname's. What cannot be merged exactly is refused with
// the construct named, never approximated.

#include <cstdint>
#include <memory>
#include <string>

#include <pg_query/pg_query.pb-c.h>

#include "router/plan/merge_plan.hpp"

namespace shardline::router {

struct MergePlanning {
  std::shared_ptr<const MergePlan> plan;  ///< set when the read can be merged exactly
  /// Otherwise the construct that cannot, for "cross-shard <refusal> on sharded table ...",
  /// e.g. "count(DISTINCT ...)", "window functions".
  std::string refusal;
};

/// Whether the rows of `s` on several shards differ from one database's answer when simply
/// concatenated: ORDER BY, LIMIT/OFFSET, aggregates, GROUP BY, HAVING, DISTINCT, windows.
bool needs_merge(const PgQuery__SelectStmt& s);

/// The plan for `s` (a plain SELECT: no set operation, INTO or locking clause, which the
/// caller refuses). `version` is the parse tree's, for the deparser.
MergePlanning plan_merge(const PgQuery__SelectStmt& s, std::int32_t version);

}  // namespace shardline::router
