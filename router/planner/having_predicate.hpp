#pragma once
// A HAVING condition as a Predicate over merged rows: AND / OR / NOT of comparisons between a
// column (an aggregate or a group key, which `column_of` maps to a column, adding hidden ones
// as needed) and a constant or $n, and IS [NOT] NULL. Anything else cannot be evaluated by the
// proxy exactly as PostgreSQL would, and is refused.

#include <functional>
#include <optional>
#include <string>

#include <pg_query/pg_query.pb-c.h>

#include "router/plan/merge_plan.hpp"

namespace shardline::router {

/// The column holding the value of expression `n`, or nullopt when it is neither an
/// aggregate the merge combines nor a group key.
using ColumnOf = std::function<std::optional<int>(const PgQuery__Node* n)>;

/// The predicate for `having`, or nullopt with `refusal` naming what cannot be evaluated.
std::optional<Predicate> having_predicate(const PgQuery__Node* having, const ColumnOf& column_of, std::string& refusal);

}  // namespace shardline::router
