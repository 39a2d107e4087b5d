#include "proxy/control/directory_rows.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "proxy/control/catalog_error.hpp"

namespace shardline::control {

std::shared_ptr<const router::DirectorySnapshot> directory_from_rows(std::uint64_t epoch,
                                                                     std::vector<DirectoryRow> rows,
                                                                     const config::Config& cfg,
                                                                     std::vector<TenantRow> tenants) {
  const int logical_shards = cfg.sharding.logical_shards;
  std::vector<std::string> names;
  for (const auto& s : cfg.shards) names.push_back(s.name);
  auto known = [&names] {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    return list;
  };
  auto fail = [&](int logical, const std::string& what) {
    throw CatalogError(fmt::format("catalog directory (epoch {}): logical shard {} {}", epoch, logical, what));
  };

  std::stable_sort(rows.begin(), rows.end(),
                   [](const DirectoryRow& a, const DirectoryRow& b) { return a.logical < b.logical; });
  std::vector<int> owner(static_cast<std::size_t>(std::max(logical_shards, 0)), -1);
  std::vector<bool> held(owner.size(), false);
  int next = 0;  // the lowest logical shard not yet seen
  for (const auto& row : rows) {
    if (row.logical < 0)
      fail(row.logical, fmt::format("is negative (sharding.logical_shards is {})", logical_shards));
    if (row.logical < next) fail(row.logical, "appears more than once");
    if (row.logical > next && next < logical_shards) fail(next, "has no owner");
    if (row.logical >= logical_shards)
      fail(row.logical, fmt::format("is out of range: sharding.logical_shards is {}, so shards are 0..{}",
                                    logical_shards, logical_shards - 1));
    const auto it = std::find(names.begin(), names.end(), row.shard);
    if (it == names.end())
      fail(row.logical, fmt::format("belongs to shard '{}', which is not configured (shards: {})",
                                    row.shard, known()));
    owner[static_cast<std::size_t>(row.logical)] = static_cast<int>(it - names.begin());
    held[static_cast<std::size_t>(row.logical)] = row.held;
    next = row.logical + 1;
  }
  if (next < logical_shards) fail(next, "has no owner");
  std::vector<router::TenantPlacement> placed;
  for (auto& t : tenants) {
    const auto it = std::find(names.begin(), names.end(), t.shard);
    if (it == names.end())
      throw CatalogError(fmt::format("catalog directory (epoch {}): tenant '{}' is pinned to shard '{}', which is not "
                                     "configured (shards: {})",
                                     epoch, t.tenant, t.shard, known()));
    placed.push_back({std::move(t.tenant), static_cast<int>(it - names.begin()), t.held, t.pinned});
  }
  return std::make_shared<const router::DirectorySnapshot>(epoch, std::move(names), std::move(owner),
                                                          std::move(held), std::move(placed));
}

}  // namespace shardline::control
