#pragma once
// DISTINCT over a stream sorted by (at least) its key columns: a row equal to the previous one
// in every key column is dropped. Equality is the type's (1.0 = 1.00, NULL = NULL), as
// PostgreSQL's DISTINCT uses it.

#include "proxy/exec/ops/operator.hpp"
#include "proxy/exec/ops/row_order.hpp"

namespace shardline::proxy::exec::ops {

class Distinct final : public Operator {
 public:
  Distinct(std::vector<router::SortKey> keys, MergeContext ctx) : keys_(std::move(keys)), ctx_(ctx) {}
  void describe(std::string_view row_description) override;
  void row(std::string_view data_row) override;
  void finish() override {}
  std::string explain() const override;

 private:
  std::vector<router::SortKey> keys_;
  MergeContext ctx_;
  std::optional<RowOrder> order_;
  bool have_previous_ = false;
  RowKey previous_, current_;
  Cells cells_;
};

}  // namespace shardline::proxy::exec::ops
