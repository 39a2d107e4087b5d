#pragma once
// The leaf operators' check that every shard describes the same columns: one database would
// return one RowDescription, so shards that disagree (a schema change reached some of them)
// fail the statement instead of producing rows of two shapes.

#include <optional>
#include <string_view>
#include <vector>

#include "proxy/exec/ops/row_codec.hpp"
#include "proxy/protocol/sql_error.hpp"

namespace shardline::proxy::exec::ops {

class ShardDescriptions {
 public:
  explicit ShardDescriptions(int shards) : described_(std::size_t(shards > 0 ? shards : 0), false) {}
  enum class Outcome { First, Agrees, Failed };
  /// First: the first shard's description (forward it); Agrees: a later one matching it.
  Outcome add(int shard, std::string_view row_description, protocol::SqlError& error);
  /// A DataRow may come from `shard`: it is a known stream that has described its columns.
  bool may_send_rows(int shard, protocol::SqlError& error) const;
  bool described(int shard) const { return valid(shard) && described_[std::size_t(shard)]; }
  bool valid(int shard) const { return shard >= 0 && std::size_t(shard) < described_.size(); }
  int shards() const { return int(described_.size()); }
  const std::vector<ColumnDesc>& columns() const { return columns_; }

 private:
  std::vector<bool> described_;
  std::vector<ColumnDesc> columns_;
  bool any_ = false;
};

/// XX000 for a shard index the executor should never pass.
protocol::SqlError unknown_shard(int shard, int shards);
/// 08P01 for a message that is not the DataRow it claims to be.
protocol::SqlError malformed_row(int shard);

}  // namespace shardline::proxy::exec::ops
