#include "proxy/exec/ops/merge_sort.hpp"

#include <algorithm>

namespace shardline::proxy::exec::ops {

MergeSort::MergeSort(int shards, std::vector<router::SortKey> keys, MergeContext ctx)
    : keys_(std::move(keys)), ctx_(ctx), descriptions_(shards), streams_(std::size_t(shards > 0 ? shards : 0)) {}

void MergeSort::describe(int shard, std::string_view row_description) {
  if (error_) return;
  protocol::SqlError e;
  switch (descriptions_.add(shard, row_description, e)) {
    case ShardDescriptions::Outcome::First:
      order_ = RowOrder::make(keys_, descriptions_.columns(), ctx_, e);
      if (!order_) {
        error_ = std::move(e);
        return;
      }
      next_->describe(row_description);
      break;
    case ShardDescriptions::Outcome::Agrees: break;
    case ShardDescriptions::Outcome::Failed: error_ = std::move(e); break;
  }
}

bool MergeSort::before(int a, int b) const {
  int c = order_->compare(streams_[std::size_t(a)].rows.front().key, streams_[std::size_t(b)].rows.front().key);
  return c != 0 ? c < 0 : a < b;  // ties: lower stream first, so the merge is deterministic
}

void MergeSort::row(int shard, std::string_view data_row) {
  if (error_) return;
  protocol::SqlError e;
  if (!descriptions_.may_send_rows(shard, e)) {
    error_ = std::move(e);
    return;
  }
  Stream& s = streams_[std::size_t(shard)];
  if (!parse_data_row(data_row, cells_)) {
    error_ = malformed_row(shard);
    return;
  }
  // Reuse an emitted row's buffers: no allocation per row once the merge runs.
  Held h;
  if (!spare_.empty()) {
    h = std::move(spare_.back());
    spare_.pop_back();
  }
  if (!order_->decode(cells_, h.key, e)) {
    error_ = std::move(e);
    return;
  }
  h.message.assign(data_row);
  s.rows.push_back(std::move(h));
  if (s.rows.size() == 1) {
    heap_.push_back(shard);
    std::push_heap(heap_.begin(), heap_.end(), [this](int a, int b) { return before(b, a); });
  }
  emit_ready();
}

void MergeSort::shard_done(int shard) {
  if (error_) return;
  if (!descriptions_.valid(shard)) {
    error_ = unknown_shard(shard, descriptions_.shards());
    return;
  }
  streams_[std::size_t(shard)].done = true;
  emit_ready();
}

void MergeSort::emit_ready() {
  auto later = [this](int a, int b) { return before(b, a); };
  while (!heap_.empty() && waiting_for() < 0) {
    std::pop_heap(heap_.begin(), heap_.end(), later);
    const int shard = heap_.back();
    heap_.pop_back();
    Stream& s = streams_[std::size_t(shard)];
    next_->row(s.rows.front().message);
    if (spare_.size() < streams_.size()) spare_.push_back(std::move(s.rows.front()));
    s.rows.pop_front();
    if (!s.rows.empty()) {
      heap_.push_back(shard);
      std::push_heap(heap_.begin(), heap_.end(), later);
    }
  }
}

int MergeSort::waiting_for() const {
  if (error_) return -1;
  for (std::size_t i = 0; i < streams_.size(); ++i)
    if (!streams_[i].done && streams_[i].rows.empty()) return int(i);
  return -1;
}

std::size_t MergeSort::held_rows() const {
  std::size_t n = 0;
  for (const auto& s : streams_) n += s.rows.size();
  return n;
}

}  // namespace shardline::proxy::exec::ops
