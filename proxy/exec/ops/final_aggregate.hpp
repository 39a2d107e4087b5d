#pragma once
// Combines the shards' partial aggregates into the values one database computes: counts and
// integer sums added (bigint overflow is an error, as on the server), numeric sums added
// exactly at the largest display scale, avg = total sum / total count with numeric_div's
// scale and rounding, min/max by the type's order keeping the winning value's bytes,
// bool_and/bool_or. Consecutive rows with equal group keys are one group; without group keys
// the whole input is one group and exactly one row comes out, even with no input.
//
// A float, money or interval sum is refused: their addition is not associative, so the sum of
// partial sums can differ in the last digits from the one database's result.

#include <optional>

#include "proxy/exec/ops/operator.hpp"
#include "proxy/exec/ops/row_order.hpp"

namespace shardline::proxy::exec::ops {

class FinalAggregate final : public Operator {
 public:
  FinalAggregate(std::vector<router::AggregateColumn> columns, MergeContext ctx);
  void describe(std::string_view row_description) override;
  void row(std::string_view data_row) override;
  void finish() override;
  std::size_t held_rows() const override { return in_group_ ? 1 : 0; }
  std::string explain() const override;

 private:
  /// How one output column accumulates.
  enum class Acc { GroupKey, CountSum, IntSum, NumericSum, MinMax, BoolAndOr, Avg };
  struct Column {
    router::AggregateColumn spec;
    Acc acc = Acc::GroupKey;
    ColumnType type;       ///< MinMax: the order; GroupKey: equality
    int format = 0;        ///< of the input (and of the output)
    int count_format = 0;  ///< Avg: of the count column
    bool avg_from_int = false;  ///< Avg: the partial sums are bigint
  };
  struct State {
    bool any = false;          ///< a non-NULL partial was seen
    std::int64_t i = 0;        ///< CountSum, IntSum, Avg's count
    Numeric n;                 ///< NumericSum, Avg's sum
    std::optional<Value> best; ///< MinMax
    std::string bytes;         ///< MinMax winner, GroupKey value
    bool is_null = false;      ///< GroupKey
    bool flag = false;         ///< BoolAndOr
  };
  bool plan_column(router::AggregateColumn a, const std::vector<ColumnDesc>& in, Column& c,
                   ColumnDesc& out, protocol::SqlError& e) const;
  void start_group();
  bool accumulate(const Cells& cells);
  bool accumulate_column(const Column& c, State& s, const Cells& cells);
  void emit();

  std::vector<router::AggregateColumn> specs_;
  MergeContext ctx_;
  std::vector<Column> columns_;
  std::optional<RowOrder> group_order_;
  bool has_group_keys_ = false;
  bool described_ = false;
  bool in_group_ = false;
  RowKey group_key_, row_key_;
  std::vector<State> state_;
  Cells cells_;
  std::string out_;
};

/// "count(#1)", "avg(#2/#3)", "key #0" for a group key.
std::string explain_aggregates(const std::vector<router::AggregateColumn>& columns);

}  // namespace shardline::proxy::exec::ops
