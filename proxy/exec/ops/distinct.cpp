#include "proxy/exec/ops/distinct.hpp"

namespace shardline::proxy::exec::ops {

std::string Distinct::explain() const {
  std::string out;
  for (const auto& k : keys_) out += (out.empty() ? "#" : ", #") + std::to_string(k.column);
  return "Distinct(" + out + ")";
}

void Distinct::describe(std::string_view row_description) {
  if (error_) return;
  auto cols = parse_row_description(row_description, error_);
  if (!cols) return;
  // Equality only: direction and NULL placement do not matter.
  std::vector<router::SortKey> eq;
  for (const auto& k : keys_) eq.push_back(router::SortKey{k.column, false, false});
  protocol::SqlError e;
  order_ = RowOrder::make(eq, *cols, ctx_, e, false, "DISTINCT");
  if (!order_) {
    error_ = std::move(e);
    return;
  }
  next_->describe(row_description);
}

void Distinct::row(std::string_view data_row) {
  if (error_) return;
  protocol::SqlError e;
  if (!order_ || !order_->decode_row(data_row, cells_, current_, e)) {
    error_ = order_ ? std::move(e) : malformed_message('D');
    return;
  }
  if (have_previous_ && order_->compare(previous_, current_) == 0) return;
  std::swap(previous_, current_);
  have_previous_ = true;
  next_->row(data_row);
}

}  // namespace shardline::proxy::exec::ops
