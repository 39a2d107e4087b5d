#include "router/parser/parse_cache.hpp"

#include <stdexcept>

namespace shardline::router {

ParseCache::ParseCache(std::size_t capacity, std::size_t max_sql_bytes)
    : capacity_(capacity), max_sql_bytes_(max_sql_bytes) {
  if (capacity == 0) throw std::invalid_argument("ParseCache capacity must be at least 1");
  index_.reserve(capacity);
}

std::shared_ptr<const ParseCache::Entry> ParseCache::make_entry(std::string_view sql) {
  auto entry = std::make_shared<Entry>();
  entry->sql.assign(sql);
  // Analyze the entry's own copy, in place, so every string_view refers to it.
  entry->analysis = analyze(entry->sql);
  return entry;
}

std::shared_ptr<const Analysis> ParseCache::lookup_or_analyze(std::string_view sql) {
  if (const auto it = index_.find(sql); it != index_.end()) {
    ++hits_;
    lru_.splice(lru_.begin(), lru_, it->second);
    const std::shared_ptr<const Entry>& entry = *it->second;
    return std::shared_ptr<const Analysis>(entry, &entry->analysis);
  }
  ++misses_;
  std::shared_ptr<const Entry> entry = make_entry(sql);
  std::shared_ptr<const Analysis> result(entry, &entry->analysis);
  if (sql.size() > max_sql_bytes_) return result;
  if (index_.size() == capacity_) {
    index_.erase(std::string_view(lru_.back()->sql));
    lru_.pop_back();
    ++evictions_;
  }
  lru_.push_front(std::move(entry));
  index_.emplace(std::string_view(lru_.front()->sql), lru_.begin());
  return result;
}

void ParseCache::clear() {
  index_.clear();
  lru_.clear();
}

}  // namespace shardline::router
