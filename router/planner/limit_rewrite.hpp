#pragma once
// LIMIT / OFFSET of a scatter read: the values the Limit operator applies, and the clause the
// shards run instead (LIMIT count + offset, no OFFSET, when the limit may be pushed down).

#include <optional>

#include <pg_query/pg_query.pb-c.h>

#include "router/plan/merge_plan.hpp"
#include "router/planner/tree_builder.hpp"

namespace shardline::router {

/// A LIMIT/OFFSET operand: a constant, NULL/ALL (Kind::None) or $n; nullopt for any other
/// expression.
std::optional<PlanValue> plan_value(const PgQuery__Node* n);

/// Sets the shard statement q's LIMIT / OFFSET for the client's statement `s`: when `pushed`,
/// count + offset rows and no OFFSET, else none. A negative constant keeps the client's clauses
/// so the shard reports PostgreSQL's error (a negative parameter is the Limit operator's to
/// refuse); a parameter the rewrite drops stays referenced (0 * $n) so that it keeps the type
/// PostgreSQL infers for it.
void rewrite_limit(TreeBuilder& b, const PgQuery__SelectStmt& s, const PlanValue& count, const PlanValue& offset, bool pushed,
                   PgQuery__SelectStmt& q);

}  // namespace shardline::router
