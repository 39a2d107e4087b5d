#pragma once
// What the reshard integration tests share: traffic through the proxy (writers logging every
// acknowledged INSERT into `items`, readers re-reading acknowledged rows), starting a move and
// following it in SHOW RESHARDS, and the invariants checked after every job.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "proxy/control/reshard_sql.hpp"
#include "router/sharding/shard_key.hpp"
#include "tests/integration/support/pg_connection.hpp"

namespace shardline::testing {

using namespace std::chrono_literals;

inline constexpr int kModulus = 1024;

/// The postgres superuser on shard `shard`'s primary of the test cluster.
PgConnection superuser(int shard);

/// Writers and readers through the proxy; every acknowledged INSERT is logged.
class Traffic {
 public:
  Traffic(std::vector<std::string> proxies, std::vector<std::int64_t> tenants)
      : proxies_(std::move(proxies)), tenants_(std::move(tenants)) {}
  ~Traffic() { stop(); }

  void start(int writers, int readers) {
    for (int w = 0; w < writers; ++w) threads_.emplace_back([this, w] { write_loop(w); });
    for (int r = 0; r < readers; ++r) threads_.emplace_back([this, r] { read_loop(r); });
  }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  std::vector<std::pair<std::int64_t, std::int64_t>> acked() {
    std::lock_guard lk(mu_);
    return acked_;
  }
  std::size_t acked_count() {
    std::lock_guard lk(mu_);
    return acked_.size();
  }
  int misses() const { return misses_.load(); }
  int reads() const { return reads_.load(); }
  int errors() const { return errors_.load(); }

 private:
  void write_loop(int w) {
    std::unique_ptr<PgConnection> c;
    std::int64_t seq = 0;
    while (!stop_) {
      if (!c || !c->ok()) {
        c = std::make_unique<PgConnection>(proxies_[std::size_t(w) % proxies_.size()], 2s);
        if (!c->ok()) {
          std::this_thread::sleep_for(50ms);
          continue;
        }
      }
      const std::int64_t tenant = tenants_[std::size_t(seq + w) % tenants_.size()];
      const std::int64_t id = std::int64_t(w) * 1000000000 + seq++;
      auto r = c->exec_params("INSERT INTO items (tenant_id, id, v) VALUES ($1, $2, 'x')",
                              {std::to_string(tenant), std::to_string(id)});
      if (r.ok()) {
        std::lock_guard lk(mu_);
        acked_.emplace_back(tenant, id);
      } else {
        ++errors_;
        if (errors_ <= 5) std::fprintf(stderr, "%lld write refused: tenant %lld: %s\n", (long long)std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count() % 100000, (long long)tenant, r.describe().c_str());
        if (PQstatus(c->get()) != CONNECTION_OK) c.reset();
      }
      std::this_thread::sleep_for(2ms);
    }
  }
  void read_loop(int r) {
    std::mt19937_64 rng(std::uint64_t(r) + 7);
    std::unique_ptr<PgConnection> c;
    while (!stop_) {
      std::pair<std::int64_t, std::int64_t> row;
      {
        std::lock_guard lk(mu_);
        if (acked_.empty()) {
          row = {-1, -1};
        } else {
          row = acked_[rng() % acked_.size()];
        }
      }
      if (row.first < 0) {
        std::this_thread::sleep_for(5ms);
        continue;
      }
      if (!c || !c->ok()) {
        c = std::make_unique<PgConnection>(proxies_[std::size_t(r) % proxies_.size()], 2s);
        if (!c->ok()) {
          std::this_thread::sleep_for(50ms);
          continue;
        }
      }
      auto res = c->exec_params("SELECT count(*) FROM items WHERE tenant_id = $1 AND id = $2",
                                {std::to_string(row.first), std::to_string(row.second)});
      if (res.ok()) {
        ++reads_;
        if (res.value(0, 0) != "1") {
          ++misses_;
          std::fprintf(stderr, "%lld read miss: tenant %lld id %lld (logical %d) -> %s\n",
                       (long long)std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch()).count() % 100000,
                       (long long)row.first, (long long)row.second,
                       router::logical_shard_of_int(row.first, kModulus), res.value(0, 0).c_str());
        }
      } else if (PQstatus(c->get()) != CONNECTION_OK) {
        c.reset();
      }
      std::this_thread::sleep_for(3ms);
    }
  }

  std::vector<std::string> proxies_;
  std::vector<std::int64_t> tenants_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::vector<std::pair<std::int64_t, std::int64_t>> acked_;
  std::atomic<int> misses_{0};
  std::atomic<int> reads_{0};
  std::atomic<int> errors_{0};
};

/// items(tenant_id bigint, id bigint, v text, PRIMARY KEY (tenant_id, id)).
control::ReshardTable items_table();
/// The SHOW RESHARDS row of job `id`: column name -> value (empty map if absent).
std::map<std::string, std::string> job_row(const std::string& admin, const std::string& id);
/// RESHARD MOVE through the admin console; returns the job id (throws on an error reply).
std::string start_move(const std::string& admin, int logical, const std::string& target);
/// RESHARD ISOLATE TENANT through the admin console; returns the job id (throws on an error reply).
std::string start_isolate(const std::string& admin, const std::string& tenant, const std::string& target);
/// Waits until job `id` reaches one of `phases`; returns the phase reached (or "timeout ...").
std::string wait_phase(const std::string& admin, const std::string& id, const std::set<std::string>& phases,
                       std::chrono::seconds timeout = std::chrono::seconds(60));
/// After a job: every acknowledged write stored exactly once on the two shards, no row of
/// `logical` on the shard other than `owner`, no slot/publication/subscription, no read miss.
void check_invariants(Traffic& traffic, int logical, int owner);
/// The same for the rows of items that `moved` (an SQL predicate, `what` in messages) selects.
void check_invariants(Traffic& traffic, const std::string& moved, int owner, const std::string& what);
/// Tenants spread over many logical shards, 4 of them in `logical`.
std::vector<std::int64_t> tenants_for(int logical);
/// A logical shard of s0 (0-511) that tenant keys 1.. reach early.
int logical_on_s0();

}  // namespace shardline::testing
