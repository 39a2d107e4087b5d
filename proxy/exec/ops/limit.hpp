#pragma once
// LIMIT / OFFSET applied after the merge: skips `offset` rows, then passes `count` (the shards
// ran LIMIT count+offset each, so the merged stream holds enough rows).

#include <cstdint>
#include <optional>

#include "proxy/exec/ops/operator.hpp"

namespace shardline::proxy::exec::ops {

class Limit final : public Operator {
 public:
  /// `count` nullopt: no limit. Both already resolved and not negative.
  Limit(std::optional<std::int64_t> count, std::int64_t offset) : count_(count), offset_(offset) {}
  void describe(std::string_view row_description) override;
  void row(std::string_view data_row) override;
  void finish() override {}
  std::string explain() const override;
  /// True once every further row would be dropped (the executor may stop reading).
  bool satisfied() const { return count_ && passed_ >= *count_; }

 private:
  std::optional<std::int64_t> count_;
  std::int64_t offset_ = 0;
  std::int64_t skipped_ = 0, passed_ = 0;
};

/// Resolves a PlanValue (constant or $n) to a number: nullopt for none/NULL. Fails for a
/// missing or non-integer parameter (22023) and a negative value (2201W for LIMIT, 2201X for
/// OFFSET, as PostgreSQL).
bool resolve_limit_value(const router::PlanValue& v, bool is_offset, const ParamValues& params,
                         std::optional<std::int64_t>& out, protocol::SqlError& error);

}  // namespace shardline::proxy::exec::ops
