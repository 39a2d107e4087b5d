#pragma once
// HAVING after the merge: a predicate over a merged row's columns with SQL's three-valued
// logic; only rows for which it is true pass. Each comparison decodes the column by its type
// (column_value) and the right side from the type's input syntax or a Bind parameter, so
// `count(*) > 2` compares numbers, not text.

#include "proxy/exec/ops/column_value.hpp"
#include "proxy/exec/ops/operator.hpp"
#include "proxy/exec/ops/row_codec.hpp"

namespace shardline::proxy::exec::ops {

class Having final : public Operator {
 public:
  /// `params` are copied; `params_known` false (Describe before Bind) skips their decoding.
  Having(router::Predicate predicate, const ParamValues& params, bool params_known, MergeContext ctx);
  void describe(std::string_view row_description) override;
  void row(std::string_view data_row) override;
  void finish() override {}
  std::string explain() const override { return "Having(" + explain_predicate(predicate_) + ")"; }

  static std::string explain_predicate(const router::Predicate& p);

 private:
  enum class Truth { False, True, Unknown };
  /// A Compare's right side, decoded for its column's type (nullopt: NULL).
  struct Operand {
    ColumnType type;
    int format = 0;
    std::optional<Value> value;
    bool as_numeric = false;  ///< integer column against a non-integer constant: compared as numeric
  };
  bool prepare(router::Predicate& p, const std::vector<ColumnDesc>& cols, protocol::SqlError& e);
  bool prepare_typed_param(Operand& o, std::string_view raw, int format, std::uint32_t declared,
                           const ColumnDesc& column, protocol::SqlError& e);
  Truth eval(const router::Predicate& p, std::size_t& compare_index) const;

  router::Predicate predicate_;
  router::Predicate resolved_;  ///< columns below 0 resolved against the RowDescription
  std::vector<std::optional<std::string>> param_values_;
  std::vector<std::int16_t> param_formats_;
  std::vector<std::uint32_t> param_types_;
  bool params_known_;
  MergeContext ctx_;
  std::vector<Operand> operands_;  ///< one per Compare node, in depth-first order
  std::size_t columns_ = 0;
  Cells cells_;
  mutable std::optional<protocol::SqlError> eval_error_;
};

}  // namespace shardline::proxy::exec::ops
