#pragma once
// Route templates by statement text, so a repeated statement is neither parsed nor analyzed
// again. LRU with a fixed capacity; one per data-plane thread (no locking). Cleared whenever
// the sharding schema changes, since templates depend on it.

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "router/planner/route_template.hpp"

namespace shardline::router {

class TemplateCache {
 public:
  explicit TemplateCache(std::size_t capacity = 10000) : capacity_(capacity) {}

  std::shared_ptr<const RouteTemplate> get(std::string_view sql, const ShardingSchema& schema) {
    if (auto it = map_.find(sql); it != map_.end()) {
      ++hits_;
      lru_.splice(lru_.begin(), lru_, it->second.pos);
      return it->second.tmpl;
    }
    ++misses_;
    auto t = build_route_template(sql, schema);
    if (map_.size() >= capacity_) {
      map_.erase(std::string_view(*lru_.back()));
      lru_.pop_back();
    }
    lru_.push_front(std::make_unique<std::string>(sql));
    map_.emplace(std::string_view(*lru_.front()), Entry{t, lru_.begin()});
    return t;
  }
  void clear() {
    map_.clear();
    lru_.clear();
  }
  std::uint64_t hits() const { return hits_; }
  std::uint64_t misses() const { return misses_; }
  std::size_t size() const { return map_.size(); }

 private:
  using Lru = std::list<std::unique_ptr<std::string>>;
  struct Entry {
    std::shared_ptr<const RouteTemplate> tmpl;
    Lru::iterator pos;
  };
  std::size_t capacity_;
  Lru lru_;  ///< owns the keys; map keys view them
  std::unordered_map<std::string_view, Entry> map_;
  std::uint64_t hits_ = 0, misses_ = 0;
};

}  // namespace shardline::router
