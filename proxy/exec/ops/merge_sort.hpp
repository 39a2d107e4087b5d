#pragma once
// The leaf for ORDER BY: a k-way merge of shard streams that each arrive sorted by the same
// keys. A heap holds the front row of every shard; the smallest is emitted only once every
// shard that is not done has a row in front, so the executor reads only the shard the merge
// is waiting for and memory stays at about one row per shard.

#include <deque>

#include "proxy/exec/ops/operator.hpp"
#include "proxy/exec/ops/row_order.hpp"
#include "proxy/exec/ops/shard_descriptions.hpp"

namespace shardline::proxy::exec::ops {

class MergeSort final : public ShardMerge {
 public:
  MergeSort(int shards, std::vector<router::SortKey> keys, MergeContext ctx);
  void describe(int shard, std::string_view row_description) override;
  void row(int shard, std::string_view data_row) override;
  void shard_done(int shard) override;
  int waiting_for() const override;
  std::size_t held_rows() const override;
  std::string explain() const override { return "MergeSort(" + explain_keys(keys_) + ")"; }

 private:
  struct Held {
    std::string message;
    RowKey key;
  };
  struct Stream {
    std::deque<Held> rows;  ///< one, unless the executor delivered more than asked for
    bool done = false;
  };
  bool before(int a, int b) const;  ///< shard a's front row comes out before shard b's
  void emit_ready();

  std::vector<router::SortKey> keys_;
  MergeContext ctx_;
  ShardDescriptions descriptions_;
  std::optional<RowOrder> order_;
  std::vector<Stream> streams_;
  std::vector<int> heap_;  ///< shards with a row in front, smallest on top
  std::vector<Held> spare_;  ///< emitted rows whose buffers the next rows reuse
  Cells cells_;
};

}  // namespace shardline::proxy::exec::ops
