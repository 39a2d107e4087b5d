#include "proxy/exec/ops/concat.hpp"

namespace shardline::proxy::exec::ops {

void Concat::describe(int shard, std::string_view row_description) {
  if (error_) return;
  protocol::SqlError e;
  switch (descriptions_.add(shard, row_description, e)) {
    case ShardDescriptions::Outcome::First: next_->describe(row_description); break;
    case ShardDescriptions::Outcome::Agrees: break;
    case ShardDescriptions::Outcome::Failed: error_ = std::move(e); break;
  }
}

void Concat::row(int shard, std::string_view data_row) {
  if (error_) return;
  protocol::SqlError e;
  if (!descriptions_.may_send_rows(shard, e)) {
    error_ = std::move(e);
    return;
  }
  next_->row(data_row);
}

void Concat::shard_done(int shard) {
  if (error_) return;
  if (!descriptions_.valid(shard)) {
    error_ = unknown_shard(shard, descriptions_.shards());
    return;
  }
  done_[std::size_t(shard)] = true;
}

}  // namespace shardline::proxy::exec::ops
