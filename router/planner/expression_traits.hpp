#pragma once
// Properties of a client's expression that decide whether the merge planner may compare or
// group its values across shards.

#include <pg_query/pg_query.pb-c.h>

namespace shardline::router {

/// `*` or `t.*` in a select list.
bool is_star(const PgQuery__Node* n);

/// A COLLATE clause anywhere in the expression: its own collation orders and compares it.
bool has_collate(const PgQuery__Node* n);

/// A sub-select anywhere in the expression (outside nested sub-selects' own).
bool has_sublink(const PgQuery__Node* n);

/// Values that differ between the shards' servers for the same row: the time of each shard's
/// transaction, random numbers, the server's own identity. Rows of different shards grouped or
/// de-duplicated by such a value would be treated as if one server had computed it.
bool per_server_value(const PgQuery__Node* n);

}  // namespace shardline::router
