#include "proxy/admin/prometheus_text.hpp"

#include <fmt/format.h>

#include <map>

#include "proxy/session/client_session.hpp"

namespace shardline::proxy::admin {

namespace {

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

/// Seconds as Prometheus floats (shortest exact form).
std::string seconds(double s) { return fmt::format("{}", s); }

}  // namespace

std::string escape_label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  return out;
}

std::string render_prometheus(session::Services& svc) {
  std::string out;
  auto& cluster = svc.cluster;
  const auto& cfg = cluster.config();
  auto labels = [](const backend::Pool& p) {
    return fmt::format("shard=\"{}\",role=\"{}\"", escape_label(p.shard()), escape_label(p.role()));
  };

  family(out, "shardline_queries_total", "counter", "Statements forwarded to a shard, by shard and role.");
  for (auto* p : cluster.all_pools()) {
    const auto& m = svc.metrics.pool(cluster.shard_index(p->shard()), p->replica());
    fmt::format_to(std::back_inserter(out), "shardline_queries_total{{{}}} {}\n", labels(*p), m.queries.value());
  }

  family(out, "shardline_query_errors_total", "counter",
         "ErrorResponses sent to clients (from the shards or the proxy), by SQLSTATE.");
  for (const auto& [state, n] : svc.metrics.errors().snapshot())
    fmt::format_to(std::back_inserter(out), "shardline_query_errors_total{{sqlstate=\"{}\"}} {}\n", escape_label(state), n);

  family(out, "shardline_query_duration_seconds", "histogram",
         "Time from forwarding a request to its ReadyForQuery, per statement, by shard and role.");
  for (auto* p : cluster.all_pools()) {
    const auto& h = svc.metrics.pool(cluster.shard_index(p->shard()), p->replica()).duration;
    const auto cum = h.cumulative();
    const std::string l = labels(*p);
    for (std::size_t i = 0; i < Histogram::kBounds.size(); ++i)
      fmt::format_to(std::back_inserter(out), "shardline_query_duration_seconds_bucket{{{},le=\"{}\"}} {}\n", l,
                     seconds(Histogram::kBounds[i]), cum[i]);
    fmt::format_to(std::back_inserter(out), "shardline_query_duration_seconds_bucket{{{},le=\"+Inf\"}} {}\n", l, cum.back());
    fmt::format_to(std::back_inserter(out), "shardline_query_duration_seconds_sum{{{}}} {}\n", l,
                   seconds(double(h.sum_ns()) / 1e9));
    fmt::format_to(std::back_inserter(out), "shardline_query_duration_seconds_count{{{}}} {}\n", l, cum.back());
  }

  family(out, "shardline_clients", "gauge", "Client connections by state (active: has a server; waiting: for one).");
  std::map<std::string, int> clients{{"active", 0}, {"idle", 0}, {"waiting", 0}};
  for (const auto& [pid, s] : svc.sessions) {
    std::string_view st = s->state();
    ++clients[st.starts_with("active") ? "active" : std::string(st)];
  }
  for (const auto& [state, n] : clients)
    fmt::format_to(std::back_inserter(out), "shardline_clients{{state=\"{}\"}} {}\n", escape_label(state), n);

  family(out, "shardline_servers", "gauge", "Server connections by shard, role and state.");
  for (auto* p : cluster.all_pools()) {
    const std::string l = labels(*p);
    const int connecting = std::max(0, p->total() - p->active() - p->idle());
    fmt::format_to(std::back_inserter(out), "shardline_servers{{{},state=\"active\"}} {}\n", l, p->active());
    fmt::format_to(std::back_inserter(out), "shardline_servers{{{},state=\"idle\"}} {}\n", l, p->idle());
    fmt::format_to(std::back_inserter(out), "shardline_servers{{{},state=\"connecting\"}} {}\n", l, connecting);
  }

  family(out, "shardline_pool_waiting_clients", "gauge", "Clients queued for a server, by shard and role.");
  for (auto* p : cluster.all_pools())
    fmt::format_to(std::back_inserter(out), "shardline_pool_waiting_clients{{{}}} {}\n", labels(*p), p->waiting());

  // Lag as the lag monitor last measured it; a replica whose lag is unknown has no sample.
  family(out, "shardline_replica_lag_bytes", "gauge", "WAL bytes a replica has not replayed yet.");
  std::string lag_seconds;
  for (int s = 0; s < cluster.shard_count(); ++s) {
    const std::string& shard = cfg.shards[std::size_t(s)].name;
    for (std::size_t r = 0; r < cluster.replicas(s).size(); ++r) {
      const auto* st = svc.replicas ? svc.replicas->find(shard, int(r)) : nullptr;
      if (!st || !st->reachable) continue;
      const std::string l = fmt::format("shard=\"{}\",replica=\"{}\"", escape_label(shard), r);
      if (st->lag_bytes != control::kUnknownLag)
        fmt::format_to(std::back_inserter(out), "shardline_replica_lag_bytes{{{}}} {}\n", l, st->lag_bytes);
      if (st->lag_ms != control::kUnknownLag)
        fmt::format_to(std::back_inserter(lag_seconds), "shardline_replica_lag_seconds{{{}}} {}\n", l,
                       seconds(double(st->lag_ms) / 1000.0));
    }
  }
  family(out, "shardline_replica_lag_seconds", "gauge", "How long ago the primary stood where the replica is.");
  out += lag_seconds;

  family(out, "shardline_reshard_rows_copied", "gauge", "Rows a reshard job has copied so far.");
  for (const auto& j : *svc.metrics.reshards())
    fmt::format_to(std::back_inserter(out), "shardline_reshard_rows_copied{{job=\"{}\"}} {}\n", j.id, j.rows_copied);

  family(out, "shardline_directory_epoch", "gauge", "Epoch of the directory this proxy routes with.");
  fmt::format_to(std::back_inserter(out), "shardline_directory_epoch {}\n", svc.directory->epoch());
  return out;
}

}  // namespace shardline::proxy::admin
