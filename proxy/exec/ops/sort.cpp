#include "proxy/exec/ops/sort.hpp"

#include <algorithm>

namespace shardline::proxy::exec::ops {

void Sort::describe(std::string_view row_description) {
  if (error_) return;
  auto cols = parse_row_description(row_description, error_);
  if (!cols) return;
  protocol::SqlError e;
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
  Held h;
  if (!order_ || !order_->decode_row(data_row, cells_, h.key, e)) {
    error_ = order_ ? std::move(e) : malformed_message('D');
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
