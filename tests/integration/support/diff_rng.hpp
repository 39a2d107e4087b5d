#pragma once
// The seeded generator behind the scatter-gather differential test's data and query corpus.
// splitmix64 with our own range helpers (not <random>'s distributions, whose results differ
// between standard libraries), so one seed gives the same data and queries everywhere.

#include <cstdint>
#include <string>
#include <vector>

namespace shardline::testing {

class DiffRng {
 public:
  explicit DiffRng(std::uint64_t seed) : state_(seed) {}

  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  /// Uniform in [lo, hi] (inclusive); the tiny modulo bias does not matter for test data.
  std::int64_t between(std::int64_t lo, std::int64_t hi) {
    return lo + std::int64_t(next() % std::uint64_t(hi - lo + 1));
  }
  std::size_t index(std::size_t n) { return std::size_t(next() % n); }
  /// True with probability percent/100.
  bool chance(int percent) { return between(0, 99) < percent; }
  template <class T>
  const T& pick(const std::vector<T>& v) { return v[index(v.size())]; }

 private:
  std::uint64_t state_;
};

}  // namespace shardline::testing
