#pragma once
// Removes the columns the rewrite added for the merge (sort keys not selected, avg's count,
// HAVING's aggregates): the client sees the first `visible` columns only.

#include "proxy/exec/ops/operator.hpp"
#include "proxy/exec/ops/row_codec.hpp"

namespace shardline::proxy::exec::ops {

class Project final : public Operator {
 public:
  explicit Project(int visible) : visible_(visible) {}
  void describe(std::string_view row_description) override;
  void row(std::string_view data_row) override;
  void finish() override {}
  std::string explain() const override { return "Project(" + std::to_string(visible_) + ")"; }

 private:
  int visible_;
  Cells cells_;
  std::string out_;
};

/// The first `visible` columns of a RowDescription; nullopt with `error` when it has fewer.
std::optional<std::string> project_row_description(std::string_view row_description, int visible,
                                                   protocol::SqlError& error);

}  // namespace shardline::proxy::exec::ops
