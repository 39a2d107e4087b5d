#include "proxy/exec/ops/distinct.hpp"

namespace shardline::proxy::exec::ops {

std::string Distinct::explain() const {
  std::string out;
  for (const auto& k : keys_) out += (out.empty() ? "#" : ", #") + std::to_string(k.column);
  return "Distinct(" + out + ")";
}

void Distinct::describe(std::string_view row_description) {
  if (error_) return;
  auto cols = parse_row_description(row_description);
  protocol::SqlError e;
  if (!cols) {
    error_ = protocol::SqlError::error(protocol::sqlstate::kProtocolViolation, "malformed RowDescription in the merge");
    return;
  }
  // Equality only: direction and NULL placement do not matter.
  std::vector<router::SortKey> eq;
  for (const auto& k : keys_) eq.push_back(router::SortKey{k.column, false, false});
  order_ = RowOrder::make(eq, *cols, ctx_, e);
  if (!order_) {
    auto at = e.message.find("ORDER BY/GROUP BY");
    if (at != std::string::npos) e.message.replace(at, 17, "DISTINCT");
    error_ = std::move(e);
    return;
  }
  next_->describe(row_description);
}

void Distinct::row(std::string_view data_row) {
  if (error_) return;
  protocol::SqlError e;
  if (!order_ || !parse_data_row(data_row, cells_)) {
    error_ = protocol::SqlError::error(protocol::sqlstate::kProtocolViolation, "malformed DataRow in the merge");
    return;
  }
  if (!order_->decode(cells_, current_, e)) {
    error_ = std::move(e);
    return;
  }
  if (have_previous_ && order_->compare(previous_, current_) == 0) return;
  std::swap(previous_, current_);
  have_previous_ = true;
  next_->row(data_row);
}

}  // namespace shardline::proxy::exec::ops
