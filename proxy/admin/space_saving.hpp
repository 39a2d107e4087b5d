#pragma once
// Space-Saving top-K (Metwally, Agrawal, El Abbadi, "Efficient Computation of Frequent and
// Top-k Elements in Data Streams", ICDT 2005): at most `capacity` monitored keys whatever the
// number of distinct keys in the stream. A key not monitored replaces the one with the smallest
// count and inherits that count as its possible overestimate (`error`), so for every monitored
// key  true count <= count <= true count + error, and any key whose true count exceeds
// total / capacity is monitored. Pure: no clock, no sockets, no locks.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace shardline::proxy::admin {

class SpaceSaving {
 public:
  /// One monitored key. `weight` is a second quantity accumulated alongside the count (the
  /// time the tenant's queries took); like the count it may include its predecessor's share.
  struct Entry {
    std::string key;
    std::uint64_t count = 0;
    std::uint64_t error = 0;   ///< count inherited from the evicted key (overestimate bound)
    std::uint64_t weight = 0;
    int tag = -1;              ///< caller's data of the last hit (the logical shard)
  };

  explicit SpaceSaving(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {
    heap_.reserve(capacity_);
    index_.reserve(capacity_);
  }

  /// Counts `n` occurrences of `key`.
  void add(std::string_view key, std::uint64_t n, std::uint64_t weight, int tag) {
    total_ += n;
    if (auto it = index_.find(key); it != index_.end()) {
      Entry& e = heap_[it->second];
      e.count += n;
      e.weight += weight;
      e.tag = tag;
      sift_down(it->second);
      return;
    }
    if (heap_.size() < capacity_) {
      heap_.push_back(Entry{std::string(key), n, 0, weight, tag});
      index_.emplace(heap_.back().key, heap_.size() - 1);
      sift_up(heap_.size() - 1);
      return;
    }
    // Replace the minimum (the heap's root): the newcomer may have occurred that often unseen.
    Entry& root = heap_.front();
    index_.erase(root.key);
    root.error = root.count;
    root.count += n;
    root.weight += weight;
    root.tag = tag;
    root.key.assign(key);
    index_.emplace(root.key, 0);
    sift_down(0);
  }

  /// The monitored keys, largest count first.
  std::vector<Entry> top(std::size_t k) const {
    std::vector<Entry> out(heap_.begin(), heap_.end());
    std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
      return a.count != b.count ? a.count > b.count : a.key < b.key;
    });
    if (out.size() > k) out.resize(k);
    return out;
  }

  std::size_t size() const { return heap_.size(); }
  std::size_t capacity() const { return capacity_; }
  /// Every occurrence ever added (monitored or not).
  std::uint64_t total() const { return total_; }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  bool less(std::size_t a, std::size_t b) const { return heap_[a].count < heap_[b].count; }
  void swap_at(std::size_t a, std::size_t b) {
    std::swap(heap_[a], heap_[b]);
    index_.find(std::string_view(heap_[a].key))->second = a;
    index_.find(std::string_view(heap_[b].key))->second = b;
  }
  void sift_up(std::size_t i) {
    while (i > 0) {
      std::size_t parent = (i - 1) / 2;
      if (!less(i, parent)) break;
      swap_at(i, parent);
      i = parent;
    }
  }
  void sift_down(std::size_t i) {
    for (;;) {
      std::size_t l = 2 * i + 1, r = l + 1, m = i;
      if (l < heap_.size() && less(l, m)) m = l;
      if (r < heap_.size() && less(r, m)) m = r;
      if (m == i) return;
      swap_at(i, m);
      i = m;
    }
  }

  std::size_t capacity_;
  std::vector<Entry> heap_;  ///< min-heap on count
  /// key -> position in heap_ (its own copy of each key: at most `capacity` of them).
  std::unordered_map<std::string, std::size_t, Hash, std::equal_to<>> index_;
  std::uint64_t total_ = 0;
};

}  // namespace shardline::proxy::admin
