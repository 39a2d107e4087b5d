#include "tests/integration/support/health_probe.hpp"

#include <libpq-fe.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "tests/integration/support/pg_connection.hpp"

namespace shardline::testing {

using Clock = std::chrono::steady_clock;

HealthyClient::HealthyClient(std::string conninfo, std::string sql)
    : conninfo_(std::move(conninfo)), sql_(std::move(sql)), thread_([this] { run(); }) {}

HealthyClient::~HealthyClient() { stop(); }

void HealthyClient::stop() {
  running_ = false;
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> HealthyClient::errors() const {
  std::lock_guard lock(mu_);
  return errors_;
}

void HealthyClient::run() {
  auto note = [this](std::string e) {
    std::lock_guard lock(mu_);
    if (errors_.size() < 20) errors_.push_back(std::move(e));
  };
  auto conn = std::make_unique<PgConnection>(conninfo_);
  if (!conn->ok()) note("connect: " + conn->error());
  while (running_) {
    const auto t0 = Clock::now();
    if (!conn->ok()) {
      conn = std::make_unique<PgConnection>(conninfo_);
      if (!conn->ok()) note("reconnect: " + conn->error());
    } else {
      const PgResult r = conn->exec(sql_);
      if (!r.ok()) note("statement: " + r.describe());
      ++statements_;
    }
    const long us = long(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count());
    if (us > 100000) ++slow_;
    long seen = worst_us_.load();
    while (us > seen && !worst_us_.compare_exchange_weak(seen, us)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

double allowed_delay_ms(double alone_ms) {
  if (alone_ms * 2 > 100.0)
    std::printf("health probe: the machine alone delays a client %.1f ms; allowing %.1f ms\n", alone_ms, alone_ms * 2);
  return std::max(100.0, alone_ms * 2);
}

double worst_delay_alone_ms(const std::string& conninfo, const std::string& sql, std::chrono::milliseconds how_long) {
  HealthyClient alone(conninfo, sql);
  std::this_thread::sleep_for(how_long);
  alone.stop();
  return alone.worst_ms();
}

std::string PoolUsage::text() const {
  return fmt::format("cl_active={} cl_waiting={} sv_active={} clients={}", cl_active, cl_waiting, sv_active, clients);
}

namespace {
int column(const PgResult& r, const std::string& name) {
  for (int c = 0; c < r.columns(); ++c)
    if (r.column_name(c) == name) return c;
  throw std::runtime_error("admin result lacks column " + name);
}
}  // namespace

PoolUsage pool_usage(const std::string& admin_conninfo) {
  PgConnection admin(admin_conninfo);
  if (!admin.ok()) throw std::runtime_error("admin console: " + admin.error());
  const PgResult pools = admin.exec("SHOW POOLS");
  if (!pools.ok()) throw std::runtime_error("SHOW POOLS: " + pools.describe());
  PoolUsage u;
  for (int r = 0; r < pools.rows(); ++r) {
    u.cl_active += std::stoi(pools.value(r, column(pools, "cl_active")));
    u.cl_waiting += std::stoi(pools.value(r, column(pools, "cl_waiting")));
    u.sv_active += std::stoi(pools.value(r, column(pools, "sv_active")));
  }
  const PgResult clients = admin.exec("SHOW CLIENTS");
  if (!clients.ok()) throw std::runtime_error("SHOW CLIENTS: " + clients.describe());
  u.clients = clients.rows();
  return u;
}

PoolUsage wait_pools_idle(const std::string& admin_conninfo, int clients, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  PoolUsage u;
  for (;;) {
    u = pool_usage(admin_conninfo);
    if (u == PoolUsage{0, 0, 0, clients} || Clock::now() >= deadline) return u;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace shardline::testing
