#include "proxy/exec/ops/project.hpp"

#include "proxy/exec/ops/row_order.hpp"

namespace shardline::proxy::exec::ops {

std::optional<std::string> project_row_description(std::string_view row_description, int& visible,
                                                   protocol::SqlError& error) {
  auto cols = parse_row_description(row_description);
  if (!cols) {
    error = malformed_message('T');
    return std::nullopt;
  }
  const long keep = visible < 0 ? long(cols->size()) + visible : visible;
  if (keep < 0 || std::size_t(keep) > cols->size()) {
    error = protocol::SqlError::error(protocol::sqlstate::kInternalError,
                                      "merge plan keeps " + std::to_string(visible) + " columns of a row of " +
                                          std::to_string(cols->size()));
    return std::nullopt;
  }
  visible = int(keep);
  if (std::size_t(visible) == cols->size()) return std::string(row_description);
  cols->resize(std::size_t(visible));
  return build_row_description(*cols);
}

void Project::describe(std::string_view row_description) {
  if (error_) return;
  protocol::SqlError e;
  keep_ = visible_;
  auto rd = project_row_description(row_description, keep_, e);
  if (!rd) {
    error_ = std::move(e);
    return;
  }
  next_->describe(*rd);
}

void Project::row(std::string_view data_row) {
  if (error_) return;
  if (!parse_data_row(data_row, cells_) || cells_.size() < std::size_t(keep_)) {
    error_ = protocol::SqlError::error(protocol::sqlstate::kProtocolViolation,
                                       "malformed DataRow in the merge (expected at least " +
                                           std::to_string(keep_) + " columns)");
    return;
  }
  if (cells_.size() == std::size_t(keep_)) {
    next_->row(data_row);
    return;
  }
  cells_.resize(std::size_t(keep_));
  out_.clear();
  append_data_row(out_, cells_);
  next_->row(out_);
}

std::string Project::explain() const {
  return visible_ < 0 ? "Project(all but the last " + std::to_string(-visible_) + ")"
                      : "Project(" + std::to_string(visible_) + ")";
}

}  // namespace shardline::proxy::exec::ops
