#include "proxy/exec/ops/sort.hpp"

#include <algorithm>

namespace shardline::proxy::exec::ops {

void Sort::describe(std::string_view row_description) {
  if (error_) return;
  auto cols = parse_row_description(row_description);
  protocol::SqlError e;
  if (!cols) {
    error_ = protocol::SqlError::error(protocol::sqlstate::kProtocolViolation, "malformed RowDescription in the merge");
    return;
  }
  order_ = RowOrder::make(keys_, *cols, ctx_, e);
  if (!order_) {
    error_ = std::move(e);
    return;
  }
  next_->describe(row_description);
}

void Sort::row(std::string_view data_row) {
  if (error_) return;
  protocol::SqlError e;
  if (!order_ || !parse_data_row(data_row, cells_)) {
    error_ = protocol::SqlError::error(protocol::sqlstate::kProtocolViolation, "malformed DataRow in the merge");
    return;
  }
  Held h;
  if (!order_->decode(cells_, h.key, e)) {
    error_ = std::move(e);
    return;
  }
  h.message = std::string(data_row);
  rows_.push_back(std::move(h));
}

void Sort::finish() {
  if (error_) return;
  std::stable_sort(rows_.begin(), rows_.end(),
                   [this](const Held& a, const Held& b) { return order_->compare(a.key, b.key) < 0; });
  for (const auto& h : rows_) next_->row(h.message);
  rows_.clear();
  rows_.shrink_to_fit();
}

}  // namespace shardline::proxy::exec::ops
