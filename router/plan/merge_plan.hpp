#pragma once
// How the rows of a tenant-less read on several shards become the answer one database would
// give: the statement each shard runs (rewritten so its partial result can be merged exactly)
// and a chain of small operators over the shards' rows. The router builds it once per cached
// statement from the parse tree; proxy/exec/ops instantiates one state machine per operator.
//
// Columns are numbered 0-based in the shard result. The rewrite appends the columns the merge
// needs and the client must not see (sort keys not in the select list, avg's count, HAVING's
// aggregates) after the client's columns; Project removes them. A select list with a `*` has a
// width the router cannot know (MergePlan::star): then a column number below 0 counts from the
// end of the shard row (-1 is the last column), which is how hidden columns are named there.
// Types are not known here: each
// operator learns them from the shards' RowDescription and refuses (0A000) a type it cannot
// combine exactly (a float sum, text under a collation it cannot reproduce).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardline::router {

/// A number known only when the plan runs: a constant of the statement or a Bind parameter.
/// `LIMIT ALL` / `LIMIT NULL` / no LIMIT are Kind::None (no limit); OFFSET NULL is 0.
struct PlanValue {
  enum class Kind { None, Constant, Param } kind = Kind::None;
  std::int64_t constant = 0;  ///< Constant
  int param = 0;              ///< Param: $n, 1-based
  bool operator==(const PlanValue&) const = default;
};

/// One key of an ORDER BY (or of the order the shards return groups / distinct rows in).
struct SortKey {
  int column = 0;            ///< 0-based column of the shard rows
  bool descending = false;
  /// Resolved: PostgreSQL's default is NULLS LAST for ASC and NULLS FIRST for DESC.
  bool nulls_first = false;
  bool operator==(const SortKey&) const = default;
};

enum class AggregateFn { Count, Sum, Min, Max, Avg, BoolAnd, BoolOr };

/// One output column of FinalAggregate.
struct AggregateColumn {
  /// A GROUP BY expression (or any column that is not an aggregate): the shards' value of
  /// `input`, equal across one group.
  bool group_key = false;
  AggregateFn fn = AggregateFn::Count;
  /// The shards' partial column: count(x) / sum(x) / min(x) / max(x) / bool_and(x) / bool_or(x);
  /// for Avg the shards' sum(x).
  int input = 0;
  /// Avg only: the column holding the shards' count(x).
  int count_input = -1;
  /// Avg only: the argument's type class decides the result type, known from `input`'s type:
  /// sum(int2/int4) is int8 and sum(int8/numeric) numeric, and avg of all of these is numeric.
  bool operator==(const AggregateColumn&) const = default;
};

/// A HAVING condition (or, later, any filter) evaluated on merged rows. Comparisons take a
/// column of the row on the left and a constant or parameter on the right, compared by the
/// column's type as PostgreSQL would; NULL compares as unknown (the row is dropped).
struct Predicate {
  enum class Kind { And, Or, Not, Compare, IsNull, IsNotNull } kind = Kind::Compare;
  enum class Op { Eq, Ne, Lt, Le, Gt, Ge } op = Op::Eq;  ///< Compare
  int column = -1;                                      ///< Compare / IsNull / IsNotNull
  /// Compare: the right side, as text in the column type's input syntax ('10', '2.5', 't'),
  /// or a Bind parameter.
  std::string constant;
  int param = 0;  ///< Compare: $n (1-based) instead of `constant`, 0 when constant
  std::vector<Predicate> args;  ///< And / Or (two or more) / Not (one)
  bool operator==(const Predicate&) const = default;
};

struct MergeOperator {
  enum class Kind {
    Concat,          ///< the shards' rows in any order (no ORDER BY): counts summed
    MergeSort,       ///< k-way merge of shard streams each already sorted by `keys`
    FinalAggregate,  ///< combines partial aggregates; consecutive rows with equal group keys
                     ///< form one group (input sorted by the group keys, or one group when none)
    Having,          ///< drops rows for which `predicate` is not true
    Sort,            ///< sorts all its input by `keys` (after FinalAggregate, for ORDER BY agg)
    Distinct,        ///< drops a row equal (all `keys` columns) to the previous one
    Limit,           ///< skips `offset` rows, then passes `count` rows
    Project,         ///< keeps the first `visible` columns
  } kind = Kind::Concat;
  std::vector<SortKey> keys;                ///< MergeSort / Sort / Distinct (order irrelevant for Distinct)
  /// FinalAggregate: one per output column, in order. As the router builds them, output column
  /// i is shard column i (a group key's input is its own column), and avg's count columns come
  /// after every other column of the shard row, so they alone are dropped: the operators after
  /// FinalAggregate use the shard numbering.
  std::vector<AggregateColumn> aggregates;
  Predicate predicate;                      ///< Having
  PlanValue count, offset;                  ///< Limit
  /// Project: keep the first `visible` columns; below 0 (only with MergePlan::star), drop the
  /// last -visible columns.
  int visible = 0;
  bool operator==(const MergeOperator&) const = default;
  /// One line, e.g. "MergeSort(#2 DESC NULLS LAST, #0)", "Limit(10 OFFSET $2)".
  std::string explain() const;
};

struct MergePlan {
  /// The statement every shard runs instead of the client's (same parameters $1..$n).
  std::string shard_sql;
  /// Applied in order: the first is Concat or MergeSort (the leaf over the shard streams);
  /// FinalAggregate's input is the leaf's output, and so on.
  std::vector<MergeOperator> operators;
  int client_columns = 0;  ///< columns the client sees (the rest are hidden)
  /// The select list has a `*`: client_columns is then minus the number of hidden columns at the
  /// end of the shard row (0: none), and column numbers below 0 count from the end.
  bool star = false;
  bool operator==(const MergePlan&) const = default;
  /// The operator chain as an indented tree, outermost operator first, shard SQL last.
  std::string explain() const;
};

/// A simple-protocol statement is cached by shape (literal_normalizer: literals became $1..$n),
/// so its MergePlan::shard_sql has $n where the client wrote constants. This puts them back:
/// `literals[i]` for $i+1, quoted as an SQL string when `quoted[i]` (standard_conforming_strings
/// on), as written otherwise. $n inside strings, quoted identifiers and comments is left alone.
std::string substitute_literals(std::string_view shard_sql, const std::vector<std::string>& literals,
                                const std::vector<bool>& quoted);

}  // namespace shardline::router
