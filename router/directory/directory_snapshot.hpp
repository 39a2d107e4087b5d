#pragma once
// The directory: which physical shard owns each logical shard, at one epoch. Immutable once
// built; the data plane holds a shared_ptr<const DirectorySnapshot> and a new one replaces it
// whole (DESIGN.md: snapshots swapped atomically), so a lookup is one vector index.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "config/config.hpp"

namespace shardline::router {

class DirectorySnapshot {
 public:
  /// `owner[l]` is the index (into `shard_names`) of the physical shard owning logical shard l.
  /// `held` (empty, or one flag per logical shard): logical shards a reshard cutover is moving
  /// right now; proxies hold new transactions that touch them until a later epoch releases them.
  DirectorySnapshot(std::uint64_t epoch, std::vector<std::string> shard_names, std::vector<int> owner,
                    std::vector<bool> held = {})
      : epoch_(epoch), shard_names_(std::move(shard_names)), owner_(std::move(owner)), held_(std::move(held)) {
    for (bool h : held_) any_held_ = any_held_ || h;
  }

  /// The bootstrap directory from the YAML `directory` ranges (epoch 0). The config loader has
  /// already checked that the ranges cover [0, logical_shards) exactly once.
  static std::shared_ptr<const DirectorySnapshot> from_config(const config::Config& cfg) {
    std::vector<std::string> names;
    for (const auto& s : cfg.shards) names.push_back(s.name);
    std::vector<int> owner(std::size_t(cfg.sharding.logical_shards), 0);
    for (const auto& r : cfg.directory) {
      int idx = 0;
      for (std::size_t i = 0; i < names.size(); ++i)
        if (names[i] == r.shard) idx = int(i);
      for (int l = r.first; l <= r.last && l < int(owner.size()); ++l) owner[std::size_t(l)] = idx;
    }
    return std::make_shared<const DirectorySnapshot>(0, std::move(names), std::move(owner));
  }

  std::uint64_t epoch() const { return epoch_; }
  int logical_shards() const { return int(owner_.size()); }
  /// Physical shard index owning logical shard `l` (0 <= l < logical_shards()).
  int physical(int l) const { return owner_[std::size_t(l)]; }
  /// Whether a cutover holds logical shard `l` (new transactions touching it wait).
  bool held(int l) const { return any_held_ && std::size_t(l) < held_.size() && held_[std::size_t(l)]; }
  bool any_held() const { return any_held_; }
  const std::vector<std::string>& shard_names() const { return shard_names_; }
  const std::string& shard_name(int physical_index) const { return shard_names_[std::size_t(physical_index)]; }
  std::optional<int> shard_index(const std::string& name) const {
    for (std::size_t i = 0; i < shard_names_.size(); ++i)
      if (shard_names_[i] == name) return int(i);
    return std::nullopt;
  }
  /// Contiguous ranges per owner, for SHOW DIRECTORY: (first, last, shard index).
  std::vector<std::tuple<int, int, int>> ranges() const {
    std::vector<std::tuple<int, int, int>> out;
    for (int l = 0; l < logical_shards(); ++l) {
      if (!out.empty() && std::get<2>(out.back()) == owner_[std::size_t(l)] && std::get<1>(out.back()) == l - 1)
        std::get<1>(out.back()) = l;
      else
        out.emplace_back(l, l, owner_[std::size_t(l)]);
    }
    return out;
  }

 private:
  std::uint64_t epoch_;
  std::vector<std::string> shard_names_;
  std::vector<int> owner_;
  std::vector<bool> held_;
  bool any_held_ = false;
};

}  // namespace shardline::router
