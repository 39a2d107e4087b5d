#pragma once
// The leaf for a read without ORDER BY: every shard's rows as they arrive, in any order (one
// database promises none either), passed on without a copy.

#include "proxy/exec/ops/operator.hpp"
#include "proxy/exec/ops/shard_descriptions.hpp"

namespace shardline::proxy::exec::ops {

class Concat final : public ShardMerge {
 public:
  explicit Concat(int shards) : descriptions_(shards), done_(std::size_t(shards > 0 ? shards : 0), false) {}
  void describe(int shard, std::string_view row_description) override;
  void row(int shard, std::string_view data_row) override;
  void shard_done(int shard) override;
  int waiting_for() const override { return -1; }
  std::size_t held_rows() const override { return 0; }
  std::string explain() const override { return "Concat"; }

 private:
  ShardDescriptions descriptions_;
  std::vector<bool> done_;
};

}  // namespace shardline::proxy::exec::ops
