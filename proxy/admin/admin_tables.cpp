#include "proxy/admin/admin_tables.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>

#include "proxy/session/client_session.hpp"

namespace shardline::proxy::admin {

namespace {

std::string format_time(std::chrono::system_clock::time_point tp) {
  return fmt::format("{:%Y-%m-%d %H:%M:%S}", fmt::gmtime(std::chrono::system_clock::to_time_t(tp)));
}

const char* mode_name(config::PoolMode m) { return m == config::PoolMode::Transaction ? "transaction" : "session"; }

std::string endpoint_text(const config::Endpoint& e) { return fmt::format("{}:{}", e.host, e.port); }

}  // namespace

Table show_pools(session::Services& svc) {
  Table t{{"shard", "role", "host", "port", "cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_total",
           "maxwait_ms", "pool_mode", "pool_size"}, {}, {"port", "cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_total", "maxwait_ms", "pool_size"}};
  const auto& cfg = svc.cluster.config();
  const auto now = backend::Clock::now();
  for (auto* p : svc.cluster.all_pools()) {
    int cl_active = 0;
    for (const auto& [pid, s] : svc.sessions)
      if (s->server() && s->server()->pool == p) ++cl_active;
    t.rows.push_back({p->shard(), p->role(), p->endpoint().host, std::to_string(p->endpoint().port),
                      std::to_string(cl_active), std::to_string(p->waiting()), std::to_string(p->active()),
                      std::to_string(p->idle()), std::to_string(p->total()),
                      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(p->longest_wait(now)).count()),
                      mode_name(cfg.pool.mode), std::to_string(cfg.pool.size)});
  }
  return t;
}

Table show_clients(session::Services& svc) {
  Table t{{"id", "user", "database", "addr", "state", "tls", "application_name", "connect_time", "server"}, {}, {"id"}};
  for (const auto& [pid, s] : svc.sessions) {
    std::string server;
    if (const auto* sv = s->server()) server = fmt::format("{} pid {}", sv->pool->name(), sv->backend_pid());
    t.rows.push_back({std::to_string(pid), s->user(), s->database(), s->peer(), s->state(),
                      s->tls() ? "yes" : "no", s->application_name(), format_time(s->connected_at()), server});
  }
  std::sort(t.rows.begin(), t.rows.end(), [](const auto& a, const auto& b) { return std::stoll(a[0]) < std::stoll(b[0]); });
  return t;
}

Table show_servers(session::Services& svc) {
  Table t{{"id", "shard", "role", "host", "port", "backend_pid", "state", "tls", "client_id", "age_s", "prepared"}, {}, {"id", "port", "backend_pid", "client_id", "age_s", "prepared"}};
  const auto now = backend::Clock::now();
  for (auto* p : svc.cluster.all_pools()) {
    for (const auto* sv : p->servers()) {
      t.rows.push_back({std::to_string(sv->id()), p->shard(), p->role(), p->endpoint().host,
                        std::to_string(p->endpoint().port), std::to_string(sv->backend_pid()),
                        sv->client_id ? "active" : "idle", const_cast<backend::ServerConnection*>(sv)->stream().is_tls() ? "yes" : "no",
                        sv->client_id ? std::to_string(sv->client_id) : "",
                        std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - sv->created_at()).count()),
                        std::to_string(sv->prepared.size())});
    }
  }
  return t;
}

Table show_stats(session::Services& svc) {
  Table t{{"shard", "role", "total_xact_count", "total_query_count", "total_query_time_us", "avg_query_time_us",
           "total_received", "total_sent", "total_wait_count", "total_wait_time_us", "avg_wait_time_us",
           "server_connects", "connect_failures"}, {}};
  t.numeric.assign(t.columns.begin() + 2, t.columns.end());
  for (auto* p : svc.cluster.all_pools()) {
    const auto& st = p->stats;
    const auto& m = svc.metrics.pool(svc.cluster.shard_index(p->shard()), p->replica());
    const std::uint64_t queries = m.queries.value(), timed = m.duration.count(), time_us = m.duration.sum_ns() / 1000;
    t.rows.push_back({p->shard(), p->role(), std::to_string(st.xact_count), std::to_string(queries),
                      std::to_string(time_us), std::to_string(timed ? time_us / timed : 0),
                      std::to_string(st.bytes_received), std::to_string(st.bytes_sent), std::to_string(st.wait_count),
                      std::to_string(st.wait_us_total),
                      std::to_string(st.wait_count ? st.wait_us_total / st.wait_count : 0),
                      std::to_string(st.connects), std::to_string(st.connect_failures)});
  }
  return t;
}

Table show_replicas(session::Services& svc) {
  Table t{{"shard", "replica", "host", "port", "state", "replay_lsn", "lag_bytes", "lag_ms", "replay_paused",
           "reads_served", "error"}, {}, {"replica", "port", "lag_bytes", "lag_ms", "reads_served"}};
  const auto& snap = svc.replicas;
  const auto& cfg = svc.cluster.config();
  for (int s = 0; s < svc.cluster.shard_count(); ++s) {
    auto& pools = svc.cluster.replicas(s);
    for (std::size_t r = 0; r < pools.size(); ++r) {
      const auto* st = snap ? snap->find(cfg.shards[std::size_t(s)].name, int(r)) : nullptr;
      std::string state = !st ? "unknown"
                          : !st->reachable ? "unreachable"
                          : st->promoted || !st->in_recovery ? "promoted"
                          : (st->lag_bytes > cfg.replicas.max_lag_bytes || st->lag_ms > cfg.replicas.max_lag_ms) ? "lagging"
                          : "eligible";
      auto lag = [](std::int64_t v) { return v == control::kUnknownLag ? std::string() : std::to_string(v); };
      t.rows.push_back({cfg.shards[std::size_t(s)].name, std::to_string(r), pools[r]->endpoint().host,
                        std::to_string(pools[r]->endpoint().port), state, st ? st->replay_lsn.str() : "",
                        st ? lag(st->lag_bytes) : "", st ? lag(st->lag_ms) : "",
                        st && st->replay_paused ? "yes" : "no", std::to_string(pools[r]->stats.xact_count),
                        st ? st->error : ""});
    }
  }
  return t;
}

Table show_directory(session::Services& svc) {
  // Ranges of logical shards, then one row per pinned tenant (its pin outranks the hash; a
  // tenant an isolate's cutover holds right now is listed as `held`).
  Table t{{"logical_first", "logical_last", "shard", "epoch", "tenant", "state"},
          {},
          {"logical_first", "logical_last", "epoch"}};
  const auto& d = *svc.directory;
  for (const auto& [first, last, shard] : d.ranges())
    t.rows.push_back({std::to_string(first), std::to_string(last), d.shard_name(shard), std::to_string(d.epoch()), "", ""});
  for (const auto& p : d.tenants())
    t.rows.push_back({"", "", d.shard_name(p.shard), std::to_string(d.epoch()), p.tenant,
                      p.held ? (p.pinned ? "pinned, held" : "held") : "pinned"});
  return t;
}

Table show_config(session::Services& svc) {
  const auto& c = svc.cluster.config();
  Table t{{"key", "value"}, {}};
  t.rows.push_back({"config_file", c.path});
  t.rows.push_back({"listen", fmt::format("{}:{}", c.listen.host, c.listen.port)});
  t.rows.push_back({"pool.mode", mode_name(c.pool.mode)});
  t.rows.push_back({"pool.size", std::to_string(c.pool.size)});
  t.rows.push_back({"pool.max_client_conn", std::to_string(c.pool.max_client_conn)});
  t.rows.push_back({"pool.query_wait_timeout_ms", std::to_string(c.pool.query_wait_timeout_ms)});
  t.rows.push_back({"pool.server_idle_timeout_ms", std::to_string(c.pool.server_idle_timeout_ms)});
  t.rows.push_back({"pool.query_timeout_ms", std::to_string(c.pool.query_timeout_ms)});
  t.rows.push_back({"pool.idle_transaction_timeout_ms", std::to_string(c.pool.idle_transaction_timeout_ms)});
  t.rows.push_back({"pool.client_idle_timeout_ms", std::to_string(c.pool.client_idle_timeout_ms)});
  t.rows.push_back({"pool.server_connect_timeout_ms", std::to_string(c.server_connect_timeout_ms())});
  t.rows.push_back({"pool.server_login_retry_ms", std::to_string(c.pool.server_login_retry_ms)});
  t.rows.push_back({"shards", std::to_string(c.shards.size())});
  t.rows.push_back({"home_shard", c.sharding.home_shard});
  t.rows.push_back({"tls", c.tls.enabled() ? "on" : "off"});
  t.rows.push_back({"clients", std::to_string(svc.sessions.size())});
  return t;
}

Table show_shards(session::Services& svc) {
  Table t{{"shard", "primary", "replicas", "logical_shards", "directory_share", "queries", "pool_active", "pool_idle",
           "pool_waiting", "pool_size"}, {}};
  t.numeric.assign(t.columns.begin() + 3, t.columns.end());
  const auto& cfg = svc.cluster.config();
  const auto& dir = *svc.directory;
  std::vector<int> owned(std::size_t(svc.cluster.shard_count()), 0);
  for (int l = 0; l < dir.logical_shards(); ++l) {
    const int p = dir.physical(l);
    if (p >= 0 && std::size_t(p) < owned.size()) ++owned[std::size_t(p)];
  }
  for (int i = 0; i < svc.cluster.shard_count(); ++i) {
    const auto& sh = cfg.shards[std::size_t(i)];
    std::string replicas;
    for (const auto& r : sh.replicas) replicas += (replicas.empty() ? "" : ",") + endpoint_text(r);
    std::uint64_t queries = svc.metrics.pool(i, -1).queries.value();
    for (std::size_t r = 0; r < sh.replicas.size(); ++r) queries += svc.metrics.pool(i, int(r)).queries.value();
    auto& primary = svc.cluster.primary(i);
    const int n = owned[std::size_t(i)];
    t.rows.push_back({sh.name, endpoint_text(sh.primary), replicas, std::to_string(n),
                      fmt::format("{:.4f}", dir.logical_shards() ? double(n) / dir.logical_shards() : 0.0),
                      std::to_string(queries), std::to_string(primary.active()), std::to_string(primary.idle()),
                      std::to_string(primary.waiting()), std::to_string(cfg.pool.size)});
  }
  return t;
}

Table show_tenants(session::Services& svc, std::size_t limit) {
  Table t{{"tenant", "shard", "logical", "queries", "total_ms", "share"}, {}, {"logical", "queries", "total_ms", "share"}};
  for (const auto& r : svc.metrics.tenants().top(limit)) {
    const std::string shard = r.shard >= 0 && r.shard < svc.cluster.shard_count()
                                  ? svc.cluster.config().shards[std::size_t(r.shard)].name
                                  : "";
    // A pinned tenant routes by its own id past the hash's range: no logical shard to show.
    const bool pinned = r.logical >= svc.directory->logical_shards();
    t.rows.push_back({r.tenant, shard, pinned ? "" : std::to_string(r.logical), std::to_string(r.queries),
                      fmt::format("{:.3f}", r.total_ms), fmt::format("{:.4f}", r.share)});
  }
  return t;
}

Table show_reshards(session::Services& svc) {
  Table t{{"id", "kind", "logical", "tenant", "source", "target", "phase", "rows_copied", "rows_total", "lag_bytes",
           "started_at", "finished_at", "error"}, {}, {"id", "logical", "rows_copied", "rows_total", "lag_bytes"}};
  for (const auto& j : *svc.metrics.reshards())
    t.rows.push_back({std::to_string(j.id), j.kind, j.logical >= 0 ? std::to_string(j.logical) : "", j.tenant, j.source,
                      j.target, j.phase, std::to_string(j.rows_copied), std::to_string(j.rows_total),
                      std::to_string(j.lag_bytes), j.started_at, j.finished_at, j.error});
  return t;
}

}  // namespace shardline::proxy::admin
