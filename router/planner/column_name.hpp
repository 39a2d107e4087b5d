#pragma once
// The name PostgreSQL gives an output column the query did not alias (FigureColname in
// parser/parse_target.c): `count(*)` is "count", `t.x::int` is "x", `1` is "?column?". The
// merge planner needs it to resolve `ORDER BY name` exactly as PostgreSQL does, and to alias
// the targets it rewrites (avg(x) runs as sum(x) on the shards but must still be called "avg").

#include <string>

#include <pg_query/pg_query.pb-c.h>

namespace shardline::router {

/// The name of the output column computed by the raw (untransformed) expression `n`.
std::string figure_colname(const PgQuery__Node* n);

}  // namespace shardline::router
