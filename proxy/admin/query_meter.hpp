#pragma once
// A session's side of the metrics: what the session tells it (routed, forwarded, ready, error)
// becomes registry updates. A request is what the client sends up to its ReadyForQuery; its
// duration is measured from its first statement being forwarded to that ReadyForQuery, and it is
// attributed to the (shard, role) and tenant of that first statement. No allocation once the
// tenant buffers have grown, no string formatting, no lookup by name.

#include <charconv>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/admin/metrics_registry.hpp"
#include "router/plan/plan.hpp"

namespace shardline::proxy::admin {

class QueryMeter {
 public:
  explicit QueryMeter(MetricsRegistry& registry) : reg_(registry) {}

  /// The router's plan for the statement about to run: remembers its tenant. A statement
  /// without one inside a transaction (COMMIT) keeps the transaction's tenant.
  void routed(const router::Plan& plan, bool in_transaction) {
    if (!reg_.enabled()) return;
    if (plan.logical.size() != 1 || plan.tenant.empty()) {
      if (!in_transaction) next_logical_ = -1;
      return;
    }
    next_logical_ = plan.logical.front();
    binary_key_text(plan.tenant, plan.tenant_format, next_tenant_);
  }

  /// A statement was forwarded to the pool of (shard, replica; -1 = primary).
  void forwarded(int shard, int replica) {
    if (!reg_.enabled()) return;
    PoolMetrics& pm = reg_.pool(shard, replica);
    pm.queries.add();
    if (!pool_) {
      pool_ = &pm;
      shard_ = shard;
      start_ = std::chrono::steady_clock::now();
      logical_ = next_logical_;
      if (logical_ >= 0) tenant_.assign(next_tenant_);
    }
    ++count_;
  }

  /// A statement sent to a shard's primary by the multi-shard path (counted, not timed).
  void forwarded_part(int shard) {
    if (!reg_.enabled()) return;
    reg_.pool(shard, -1).queries.add();
    reg_.tenants().record(shard, {}, -1, 1, 0);
  }

  /// The client got a ReadyForQuery: the request ends.
  void ready() {
    if (!pool_) return;
    const auto ns = std::uint64_t(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start_).count());
    pool_->duration.observe(ns, count_);
    reg_.tenants().record(shard_, logical_ >= 0 ? std::string_view(tenant_) : std::string_view(), logical_, count_,
                          ns * count_);
    pool_ = nullptr;
    count_ = 0;
  }

  /// The server connection went away mid-request: nothing more of it will be timed.
  void abandon() {
    pool_ = nullptr;
    count_ = 0;
  }

  /// An ErrorResponse reached the client (from a server or from the proxy).
  void error(std::string_view sqlstate) {
    if (reg_.enabled()) reg_.errors().count(sqlstate);
  }

  /// A key as text: binary integers (2, 4 or 8 bytes, big-endian) and uuids formatted as
  /// PostgreSQL prints them; text (whether sent in text or binary format) as is.
  static void binary_key_text(std::string_view b, router::TenantFormat format, std::string& out) {
    using F = router::TenantFormat;
    auto be = [&](std::size_t n) {
      std::uint64_t v = 0;
      for (std::size_t i = 0; i < n; ++i) v = (v << 8) | std::uint8_t(b[i]);
      if (n < 8 && (v >> (8 * n - 1)) & 1) v |= ~std::uint64_t(0) << (8 * n);  // sign-extend
      return std::int64_t(v);
    };
    out.clear();
    if (format == F::BinaryInt && (b.size() == 2 || b.size() == 4 || b.size() == 8)) {
      char buf[24];
      auto r = std::to_chars(buf, buf + sizeof buf, be(b.size()));
      out.assign(buf, r.ptr);
    } else if (format == F::BinaryUuid && b.size() == 16) {
      static constexpr char kHex[] = "0123456789abcdef";
      for (std::size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
        out.push_back(kHex[std::uint8_t(b[i]) >> 4]);
        out.push_back(kHex[std::uint8_t(b[i]) & 15]);
      }
    } else {
      out.assign(b);
    }
  }

 private:
  MetricsRegistry& reg_;
  std::string next_tenant_;  ///< tenant of the last routed statement
  int next_logical_ = -1;
  // The request in flight.
  PoolMetrics* pool_ = nullptr;
  int shard_ = -1;
  int logical_ = -1;
  std::string tenant_;
  std::uint64_t count_ = 0;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace shardline::proxy::admin
