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
  std::string explain() const override;

 private:
  int visible_;    ///< as planned: below 0, all but the last -visible_ columns
  int keep_ = 0;   ///< resolved against the RowDescription
  Cells cells_;
  std::string out_;
};

/// The first `visible` columns of a RowDescription (below 0: all but the last -visible), with
/// `visible` resolved to the count kept; nullopt with `error` when the row is too narrow.
std::optional<std::string> project_row_description(std::string_view row_description, int& visible,
                                                   protocol::SqlError& error);

}  // namespace shardline::proxy::exec::ops
