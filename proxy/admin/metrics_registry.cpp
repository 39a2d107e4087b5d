#include "proxy/admin/metrics_registry.hpp"

#include <algorithm>

namespace shardline::proxy::admin {

namespace {

constexpr auto kBoundsNs = [] {
  std::array<std::uint64_t, Histogram::kBounds.size()> ns{};
  for (std::size_t i = 0; i < ns.size(); ++i) ns[i] = std::uint64_t(Histogram::kBounds[i] * 1e9 + 0.5);
  return ns;
}();

/// 5 characters of [0-9A-Z] (SQLSTATE's alphabet) packed 6 bits each; 0 is never a valid key.
std::uint32_t pack_sqlstate(std::string_view s) {
  if (s.size() != 5) return 0;
  std::uint32_t k = 0;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'))) return 0;
    k = (k << 6) | std::uint32_t(c - '0' + 1);
  }
  return k;
}

std::string unpack_sqlstate(std::uint32_t k) {
  std::string s(5, '0');
  for (int i = 4; i >= 0; --i, k >>= 6) s[std::size_t(i)] = char('0' + (k & 63) - 1);
  return s;
}

}  // namespace

void Histogram::observe(std::uint64_t ns, std::uint64_t n) {
  std::size_t i = 0;
  while (i < kBoundsNs.size() && ns > kBoundsNs[i]) ++i;
  buckets_[i].add(n);
  count_.add(n);
  sum_ns_.add(ns * n);
}

std::array<std::uint64_t, Histogram::kBounds.size() + 1> Histogram::cumulative() const {
  std::array<std::uint64_t, kBounds.size() + 1> out{};
  std::uint64_t run = 0;
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = run += buckets_[i].value();
  return out;
}

void ErrorCounters::count(std::string_view sqlstate) {
  const std::uint32_t key = pack_sqlstate(sqlstate);
  if (key == 0) {
    overflow_.add();
    return;
  }
  std::size_t i = (key * 2654435761u) % kSlots;
  for (std::size_t probe = 0; probe < kSlots; ++probe, i = (i + 1) % kSlots) {
    std::uint32_t seen = keys_[i].load(std::memory_order_acquire);
    if (seen == 0 && keys_[i].compare_exchange_strong(seen, key, std::memory_order_acq_rel)) seen = key;
    if (seen == key) {
      counts_[i].add();
      return;
    }
  }
  overflow_.add();
}

std::vector<std::pair<std::string, std::uint64_t>> ErrorCounters::snapshot() const {
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (std::size_t i = 0; i < kSlots; ++i)
    if (auto k = keys_[i].load(std::memory_order_acquire)) out.emplace_back(unpack_sqlstate(k), counts_[i].value());
  std::sort(out.begin(), out.end());
  if (auto o = overflow_.value()) out.emplace_back("other", o);
  return out;
}

MetricsRegistry::MetricsRegistry(const config::Config& cfg)
    : enabled_(cfg.admin.metrics),
      tenants_(std::size_t(cfg.admin.tenant_top_k), int(cfg.shards.size())),
      reshards_(std::make_shared<const std::vector<ReshardProgress>>()) {
  for (const auto& sh : cfg.shards) pools_.emplace_back(1 + sh.replicas.size());
}

}  // namespace shardline::proxy::admin
