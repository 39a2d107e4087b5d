#pragma once
// Per-thread LRU cache of statement analyses. Applications send the same statement texts over
// and over (prepared statements, ORMs, $n parameters), so most parses are cache hits.

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "router/parser/statement.hpp"

namespace shardline::router {

/// Maps a full query string to its Analysis, least recently used entry evicted first.
///
/// Ownership: each entry is one heap block holding a copy of the query text and the Analysis
/// whose Statement::text views point into that copy. lookup_or_analyze() returns a
/// shared_ptr<const Analysis> aliasing that block, so the views stay valid for as long as the
/// caller holds the pointer, even after the entry is evicted. The index is keyed by views into
/// the same copies, so a hit hashes the input, bumps the LRU list (a splice) and copies a
/// shared_ptr: it allocates nothing.
///
/// Not thread-safe, by design: one cache per I/O thread (the data plane shares nothing).
class ParseCache {
 public:
  static constexpr std::size_t kDefaultMaxSqlBytes = 64 * 1024;

  /// `capacity` entries (at least 1, else std::invalid_argument); statements longer than
  /// `max_sql_bytes` are analyzed but not cached (large multi-row INSERTs rarely repeat and
  /// would push everything else out).
  explicit ParseCache(std::size_t capacity, std::size_t max_sql_bytes = kDefaultMaxSqlBytes);

  ParseCache(const ParseCache&) = delete;
  ParseCache& operator=(const ParseCache&) = delete;

  /// The analysis of `sql`, from the cache or freshly computed (and then cached). Parse errors
  /// are cached too: the same text always fails the same way.
  [[nodiscard]] std::shared_ptr<const Analysis> lookup_or_analyze(std::string_view sql);

  [[nodiscard]] std::uint64_t hits() const { return hits_; }
  [[nodiscard]] std::uint64_t misses() const { return misses_; }
  [[nodiscard]] std::uint64_t evictions() const { return evictions_; }
  [[nodiscard]] std::size_t size() const { return index_.size(); }
  [[nodiscard]] std::size_t capacity() const { return capacity_; }
  void clear();

 private:
  struct Entry {
    std::string sql;  // never moves after analysis: the Entry lives in its own heap block
    Analysis analysis;
  };
  using Lru = std::list<std::shared_ptr<const Entry>>;  // front = most recently used

  static std::shared_ptr<const Entry> make_entry(std::string_view sql);

  std::size_t capacity_;
  std::size_t max_sql_bytes_;
  Lru lru_;
  std::unordered_map<std::string_view, Lru::iterator> index_;
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
  std::uint64_t evictions_ = 0;
};

}  // namespace shardline::router
