#include "proxy/admin/tenant_tracker.hpp"

namespace shardline::proxy::admin {

TenantTracker::TenantTracker(std::size_t capacity, int shards)
    : sketch_(capacity), shard_totals_(std::size_t(shards > 0 ? shards : 0), 0) {}

void TenantTracker::record(int shard, std::string_view tenant, int logical, std::uint64_t n, std::uint64_t ns) {
  std::lock_guard lock(mu_);
  if (shard < 0 || std::size_t(shard) >= shard_totals_.size()) return;
  shard_totals_[std::size_t(shard)] += n;
  if (tenant.empty() || logical < 0) return;
  if (shard_of_logical_.size() <= std::size_t(logical)) shard_of_logical_.resize(std::size_t(logical) + 1, -1);
  shard_of_logical_[std::size_t(logical)] = shard;
  sketch_.add(tenant, n, ns, logical);
}

std::vector<TenantRow> TenantTracker::top(std::size_t k) const {
  std::lock_guard lock(mu_);
  std::vector<TenantRow> out;
  for (const auto& e : sketch_.top(k)) {
    TenantRow r;
    r.tenant = e.key;
    r.logical = e.tag;
    r.shard = e.tag >= 0 && std::size_t(e.tag) < shard_of_logical_.size() ? shard_of_logical_[std::size_t(e.tag)] : -1;
    r.queries = e.count;
    r.error = e.error;
    r.total_ms = double(e.weight) / 1e6;
    const std::uint64_t total = r.shard >= 0 ? shard_totals_[std::size_t(r.shard)] : 0;
    r.share = total ? std::min(1.0, double(e.count) / double(total)) : 0;
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<TenantRow> TenantTracker::newly_hot(double share, std::uint64_t min_queries) {
  auto rows = top(sketch_.capacity());
  std::lock_guard lock(mu_);
  std::unordered_set<std::string> now;
  std::vector<TenantRow> fresh;
  for (auto& r : rows) {
    if (r.shard < 0 || shard_totals_[std::size_t(r.shard)] < min_queries || r.share <= share) continue;
    if (!hot_.contains(r.tenant)) fresh.push_back(r);
    now.insert(r.tenant);
  }
  hot_ = std::move(now);
  return fresh;
}

std::uint64_t TenantTracker::shard_total(int shard) const {
  std::lock_guard lock(mu_);
  return shard >= 0 && std::size_t(shard) < shard_totals_.size() ? shard_totals_[std::size_t(shard)] : 0;
}

}  // namespace shardline::proxy::admin
