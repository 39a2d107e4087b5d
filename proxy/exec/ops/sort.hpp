#pragma once
// A full sort of the operator's input (ORDER BY an aggregate, after FinalAggregate): every row
// is held until finish(), then emitted in key order. Stable, so rows equal in every key keep
// their input order.

#include "proxy/exec/ops/operator.hpp"
#include "proxy/exec/ops/row_order.hpp"

namespace shardline::proxy::exec::ops {

class Sort final : public Operator {
 public:
  Sort(std::vector<router::SortKey> keys, MergeContext ctx) : keys_(std::move(keys)), ctx_(ctx) {}
  void describe(std::string_view row_description) override;
  void row(std::string_view data_row) override;
  void finish() override;
  std::size_t held_rows() const override { return rows_.size(); }
  std::string explain() const override { return "Sort(" + explain_keys(keys_) + ")"; }

 private:
  struct Held {
    std::string message;
    RowKey key;
  };
  std::vector<router::SortKey> keys_;
  MergeContext ctx_;
  std::optional<RowOrder> order_;
  std::vector<Held> rows_;
  Cells cells_;
};

}  // namespace shardline::proxy::exec::ops
