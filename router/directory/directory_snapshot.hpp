#pragma once
// The directory: which physical shard owns each logical shard, at one epoch. Immutable once
// built; the data plane holds a shared_ptr<const DirectorySnapshot> and a new one replaces it
// whole (DESIGN.md: snapshots swapped atomically), so a lookup is one vector index.
//
// Tenants pinned to a shard (RESHARD ISOLATE TENANT) outrank the hash: each pinned (or held)
// tenant gets a logical shard id of its own past the hash's range (logical_shards() + i), so
// every path that routes, holds or tracks writes by logical shard handles it with no special
// case. A key's outcome is placed on that id (router/planner/key_resolver.hpp, place_tenant)
// when its canonical text (tenant_key.hpp) names a pinned tenant.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"

namespace shardline::router {

/// A tenant the directory places itself: pinned to `shard` (the pin, or while a cutover holds
/// an unpinned tenant, the shard it lives on now), `held` while an ISOLATE cutover moves it.
struct TenantPlacement {
  std::string tenant;  ///< the key's canonical text (PostgreSQL's output form)
  int shard = 0;       ///< index into shard_names
  bool held = false;
  bool pinned = true;  ///< false: only held (its rows live where the hash says)
};

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
  /// With pinned or held tenants (sorted by tenant, so ids follow the text).
  DirectorySnapshot(std::uint64_t epoch, std::vector<std::string> shard_names, std::vector<int> owner,
                    std::vector<bool> held, std::vector<TenantPlacement> tenants)
      : DirectorySnapshot(epoch, std::move(shard_names), std::move(owner), std::move(held)) {
    tenants_ = std::move(tenants);
    std::sort(tenants_.begin(), tenants_.end(),
              [](const TenantPlacement& a, const TenantPlacement& b) { return a.tenant < b.tenant; });
    for (std::size_t i = 0; i < tenants_.size(); ++i) {
      tenant_ids_.emplace(tenants_[i].tenant, logical_shards() + int(i));
      any_held_ = any_held_ || tenants_[i].held;
    }
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
  /// The hash's modulus (tenant ids come after it).
  int logical_shards() const { return int(owner_.size()); }
  /// Physical shard index owning logical shard `l`: 0 <= l < logical_shards(), or a tenant id.
  int physical(int l) const {
    if (std::size_t(l) < owner_.size()) return owner_[std::size_t(l)];
    return tenants_[std::size_t(l) - owner_.size()].shard;
  }
  /// Whether a cutover holds logical shard (or tenant id) `l`: new transactions touching it wait.
  bool held(int l) const {
    if (!any_held_) return false;
    if (std::size_t(l) < owner_.size()) return std::size_t(l) < held_.size() && held_[std::size_t(l)];
    return std::size_t(l) - owner_.size() < tenants_.size() && tenants_[std::size_t(l) - owner_.size()].held;
  }
  /// Whether any tenant is pinned or held: only then do keys need their canonical text.
  bool has_tenants() const { return !tenants_.empty(); }
  /// The id of the tenant whose canonical text is `key`, if the directory places it.
  std::optional<int> tenant_id(std::string_view key) const {
    if (tenants_.empty()) return std::nullopt;
    const auto it = tenant_ids_.find(std::string(key));
    if (it == tenant_ids_.end()) return std::nullopt;
    return it->second;
  }
  /// Pinned and held tenants, by tenant text (SHOW DIRECTORY).
  const std::vector<TenantPlacement>& tenants() const { return tenants_; }
  bool any_held() const { return any_held_; }
  const std::vector<std::string>& shard_names() const { return shard_names_; }
  const std::string& shard_name(int physical_index) const { return shard_names_[std::size_t(physical_index)]; }
  std::optional<int> shard_index(const std::string& name) const {
    for (std::size_t i = 0; i < shard_names_.size(); ++i)
      if (shard_names_[i] == name) return int(i);
    return std::nullopt;
  }
  /// Physical shards that serve rows here they did not serve in `before` (a logical shard
  /// that moved to them, a tenant newly pinned to them): their replicas may not have replayed
  /// the copy yet, so the data plane reads those shards' primaries until a fresh sample.
  std::vector<int> shards_gaining_from(const DirectorySnapshot& before) const {
    std::vector<bool> gains(shard_names_.size(), false);
    const bool same_range = before.logical_shards() == logical_shards();
    for (int l = 0; l < logical_shards(); ++l)
      if (!same_range || before.physical(l) != physical(l)) gains[std::size_t(physical(l))] = true;
    for (const auto& t : tenants_) {
      if (!t.pinned) continue;
      const auto id = before.tenant_id(t.tenant);
      if (!id || before.physical(*id) != t.shard) gains[std::size_t(t.shard)] = true;
    }
    std::vector<int> out;
    for (std::size_t i = 0; i < gains.size(); ++i)
      if (gains[i]) out.push_back(int(i));
    return out;
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
  std::vector<TenantPlacement> tenants_;
  std::unordered_map<std::string, int> tenant_ids_;
  bool any_held_ = false;
};

}  // namespace shardline::router
