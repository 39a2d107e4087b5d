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
    std::size_t n = 8;
    while (n < 2 * capacity_) n *= 2;
    table_.assign(n, kEmpty);
    slots_.reserve(capacity_);
    heap_.reserve(capacity_);
  }

  /// Counts `n` occurrences of `key`. Allocation-free once every slot's key buffer has grown:
  /// an evicted slot's string is reused for the newcomer.
  void add(std::string_view key, std::uint64_t n, std::uint64_t weight, int tag) {
    total_ += n;
    const std::size_t h = std::hash<std::string_view>{}(key);
    std::size_t free_at = kNone;
    const std::size_t at = find(key, h, &free_at);
    if (at != kNone) {
      Slot& sl = slots_[table_[at]];
      sl.e.count += n;
      sl.e.weight += weight;
      sl.e.tag = tag;
      sift_down(sl.heap_pos);
      return;
    }
    std::uint32_t idx;
    if (slots_.size() < capacity_) {
      idx = std::uint32_t(slots_.size());
      slots_.push_back(Slot{Entry{std::string(key), n, 0, weight, tag}, h, std::uint32_t(heap_.size())});
      heap_.push_back(idx);
      sift_up(heap_.size() - 1);
    } else {
      // Replace the minimum (the heap's root): the newcomer may have occurred that often unseen.
      idx = heap_.front();
      Slot& sl = slots_[idx];
      erase(sl.e.key, sl.hash);
      sl.e.error = sl.e.count;
      sl.e.count += n;
      sl.e.weight += weight;
      sl.e.tag = tag;
      sl.e.key.assign(key);
      sl.hash = h;
      sift_down(0);  // free_at (an empty cell or a tombstone on key's chain) is still free
    }
    insert(idx, h, free_at);
  }

  /// The monitored keys, largest count first.
  std::vector<Entry> top(std::size_t k) const {
    std::vector<Entry> out;
    out.reserve(slots_.size());
    for (const auto& sl : slots_) out.push_back(sl.e);
    std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
      return a.count != b.count ? a.count > b.count : a.key < b.key;
    });
    if (out.size() > k) out.resize(k);
    return out;
  }

  std::size_t size() const { return slots_.size(); }
  std::size_t capacity() const { return capacity_; }
  /// Every occurrence ever added (monitored or not).
  std::uint64_t total() const { return total_; }

 private:
  static constexpr std::uint32_t kEmpty = 0xffffffffu, kTomb = 0xfffffffeu;
  static constexpr std::size_t kNone = ~std::size_t(0);
  struct Slot {
    Entry e;
    std::size_t hash;
    std::uint32_t heap_pos;
  };

  /// Position in table_ of `key`, or kNone; `free_at`: the first tombstone passed, if any.
  std::size_t find(std::string_view key, std::size_t h, std::size_t* free_at) const {
    const std::size_t mask = table_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const std::uint32_t t = table_[i];
      if (t == kEmpty) {
        if (*free_at == kNone) *free_at = i;
        return kNone;
      }
      if (t == kTomb) {
        if (*free_at == kNone) *free_at = i;
      } else if (slots_[t].hash == h && slots_[t].e.key == key) {
        return i;
      }
    }
  }
  void erase(std::string_view key, std::size_t h) {
    std::size_t ignored = kNone;
    const std::size_t at = find(key, h, &ignored);
    table_[at] = kTomb;
    ++tombs_;
  }
  void insert(std::uint32_t idx, std::size_t h, std::size_t free_at) {
    const std::size_t mask = table_.size() - 1;
    if (free_at == kNone)
      for (free_at = h & mask; table_[free_at] != kEmpty && table_[free_at] != kTomb; free_at = (free_at + 1) & mask) {
      }
    if (table_[free_at] == kTomb) --tombs_;
    table_[free_at] = idx;
    if (tombs_ > table_.size() / 4) rebuild();  // keep probe chains short under churn
  }
  void rebuild() {
    std::fill(table_.begin(), table_.end(), kEmpty);
    tombs_ = 0;
    const std::size_t mask = table_.size() - 1;
    for (std::uint32_t idx = 0; idx < slots_.size(); ++idx) {
      std::size_t i = slots_[idx].hash & mask;
      while (table_[i] != kEmpty) i = (i + 1) & mask;
      table_[i] = idx;
    }
  }
  bool less(std::size_t a, std::size_t b) const { return slots_[heap_[a]].e.count < slots_[heap_[b]].e.count; }
  void swap_at(std::size_t a, std::size_t b) {
    std::swap(heap_[a], heap_[b]);
    slots_[heap_[a]].heap_pos = std::uint32_t(a);
    slots_[heap_[b]].heap_pos = std::uint32_t(b);
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
  std::vector<Slot> slots_;           ///< the monitored keys; a slot is reused, never freed
  std::vector<std::uint32_t> heap_;   ///< slot indices, a min-heap on count
  std::vector<std::uint32_t> table_;  ///< open addressing (linear probing): key -> slot index
  std::size_t tombs_ = 0;
  std::uint64_t total_ = 0;
};

}  // namespace shardline::proxy::admin
