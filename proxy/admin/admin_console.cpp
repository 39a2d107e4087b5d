#include "proxy/admin/admin_console.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "proxy/protocol/message_writer.hpp"
#include "proxy/session/client_session.hpp"
#include "router/planner/router.hpp"

namespace shardline::proxy::admin {

using protocol::SqlError;
namespace sqlstate = protocol::sqlstate;

namespace {

std::string upper_words(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == ';') break;
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(char(std::toupper(static_cast<unsigned char>(c))));
  }
  return out;
}

void write_table(const Table& t, std::string_view tag, std::string& out) {
  protocol::MessageWriter w(out);
  w.row_description_text(t.columns);
  for (const auto& r : t.rows) w.data_row(r);
  w.command_complete(fmt::format("{} {}", tag, t.rows.size()));
}

std::string format_time(std::chrono::system_clock::time_point tp) {
  return fmt::format("{:%Y-%m-%d %H:%M:%S}", fmt::gmtime(std::chrono::system_clock::to_time_t(tp)));
}

const char* mode_name(config::PoolMode m) { return m == config::PoolMode::Transaction ? "transaction" : "session"; }

}  // namespace

boost::asio::awaitable<void> AdminConsole::run() {
  auto& s = session_;
  for (;;) {
    protocol::Frame f;
    if (!co_await s.read_frame(f)) co_return;
    std::string out;
    protocol::MessageWriter w(out);
    if (f.tag == 'X') co_return;
    if (f.tag != 'Q') {
      std::string tag(1, f.tag);
      s.in_.consume(f.total_size);
      w.error(SqlError::error(sqlstate::kFeatureNotSupported,
                              "the admin console supports only the simple query protocol"));
      if (f.tag == 'S') w.ready_for_query('I');
      if (!co_await s.write_client(out)) co_return;
      continue;
    }
    protocol::BodyReader r(f.body);
    std::string sql(r.cstr().value_or(""));
    s.in_.consume(f.total_size);
    co_await execute(sql, out);
    w.ready_for_query('I');
    if (!co_await s.write_client(out)) co_return;
  }
}

boost::asio::awaitable<void> AdminConsole::execute(std::string_view command, std::string& out) {
  protocol::MessageWriter w(out);
  const std::string cmd = upper_words(command);
  if (cmd.empty()) {
    w.empty_query();
  } else if (cmd == "SHOW POOLS") {
    write_table(show_pools(), "SHOW", out);
  } else if (cmd == "SHOW CLIENTS") {
    write_table(show_clients(), "SHOW", out);
  } else if (cmd == "SHOW SERVERS") {
    write_table(show_servers(), "SHOW", out);
  } else if (cmd == "SHOW STATS") {
    write_table(show_stats(), "SHOW", out);
  } else if (cmd == "SHOW REPLICAS") {
    write_table(show_replicas(), "SHOW", out);
  } else if (cmd == "SHOW DIRECTORY") {
    write_table(show_directory(), "SHOW", out);
  } else if (cmd.starts_with("SHOW ROUTE ")) {
    // The plan the router chooses for a statement (keys as literals; $n have no values here).
    std::string_view rest = command;
    std::size_t pos = 0;
    for (int words = 0; words < 2 && pos < rest.size();) {  // skip "SHOW" and "ROUTE"
      while (pos < rest.size() && std::isspace(static_cast<unsigned char>(rest[pos]))) ++pos;
      while (pos < rest.size() && !std::isspace(static_cast<unsigned char>(rest[pos]))) ++pos;
      ++words;
    }
    std::string sql(rest.substr(pos));
    auto t = router::build_route_template(sql, *services_.schema);
    std::optional<std::string> tenant;
    router::RouteContext ctx{*services_.directory, *services_.schema, tenant, nullptr, true};
    auto plan = router::route(*t, ctx);
    Table tbl{{"plan"}, {{plan.explain(services_.directory->shard_names())}}};
    write_table(tbl, "SHOW", out);
  } else if (cmd == "SHOW CONFIG") {
    write_table(show_config(), "SHOW", out);
  } else if (cmd == "PAUSE") {
    // Like PgBouncer: new transactions wait; PAUSE returns once running ones have finished.
    services_.cluster.pause();
    for (int i = 0; i < 600; ++i) {
      int active = 0;
      for (auto* p : services_.cluster.all_pools()) active += p->active();
      if (active == 0) break;
      boost::asio::steady_timer t(services_.ex, std::chrono::milliseconds(50));
      co_await t.async_wait(boost::asio::use_awaitable);
    }
    w.command_complete("PAUSE");
  } else if (cmd == "RESUME") {
    services_.cluster.resume();
    w.command_complete("RESUME");
  } else if (cmd == "RELOAD") {
    std::string problem = services_.reload ? services_.reload() : "reload is not available";
    if (problem.empty()) {
      w.command_complete("RELOAD");
    } else {
      w.error(SqlError::error(sqlstate::kInvalidParameterValue, "RELOAD refused, old configuration kept: " + problem));
    }
  } else {
    w.error(SqlError::error(sqlstate::kSyntaxError,
                            fmt::format("unknown admin command \"{}\"; try SHOW POOLS, SHOW CLIENTS, SHOW SERVERS, "
                                        "SHOW STATS, SHOW REPLICAS, SHOW DIRECTORY, SHOW ROUTE <sql>, SHOW CONFIG, PAUSE, RESUME, RELOAD",
                                        std::string(command.substr(0, 80)))));
  }
}

Table AdminConsole::show_pools() const {
  Table t{{"shard", "role", "host", "port", "cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_total",
           "maxwait_ms", "pool_mode", "pool_size"}, {}};
  const auto& cfg = services_.cluster.config();
  const auto now = backend::Clock::now();
  for (auto* p : services_.cluster.all_pools()) {
    int cl_active = 0;
    for (const auto& [pid, s] : services_.sessions)
      if (s->server() && s->server()->pool == p) ++cl_active;
    t.rows.push_back({p->shard(), p->role(), p->endpoint().host, std::to_string(p->endpoint().port),
                      std::to_string(cl_active), std::to_string(p->waiting()), std::to_string(p->active()),
                      std::to_string(p->idle()), std::to_string(p->total()),
                      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(p->longest_wait(now)).count()),
                      mode_name(cfg.pool.mode), std::to_string(cfg.pool.size)});
  }
  return t;
}

Table AdminConsole::show_clients() const {
  Table t{{"id", "user", "database", "addr", "state", "tls", "application_name", "connect_time", "server"}, {}};
  for (const auto& [pid, s] : services_.sessions) {
    std::string server;
    if (const auto* sv = s->server()) server = fmt::format("{} pid {}", sv->pool->name(), sv->backend_pid());
    t.rows.push_back({std::to_string(pid), s->user(), s->database(), s->peer(), s->state(),
                      s->tls() ? "yes" : "no", s->application_name(), format_time(s->connected_at()), server});
  }
  std::sort(t.rows.begin(), t.rows.end(), [](const auto& a, const auto& b) { return std::stoll(a[0]) < std::stoll(b[0]); });
  return t;
}

Table AdminConsole::show_servers() const {
  Table t{{"id", "shard", "role", "host", "port", "backend_pid", "state", "tls", "client_id", "age_s", "prepared"}, {}};
  const auto now = backend::Clock::now();
  for (auto* p : services_.cluster.all_pools()) {
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

Table AdminConsole::show_stats() const {
  Table t{{"shard", "role", "total_xact_count", "total_query_count", "total_received", "total_sent",
           "total_wait_count", "total_wait_time_us", "avg_wait_time_us", "server_connects", "connect_failures"}, {}};
  for (auto* p : services_.cluster.all_pools()) {
    const auto& st = p->stats;
    t.rows.push_back({p->shard(), p->role(), std::to_string(st.xact_count), std::to_string(st.query_count),
                      std::to_string(st.bytes_received), std::to_string(st.bytes_sent), std::to_string(st.wait_count),
                      std::to_string(st.wait_us_total),
                      std::to_string(st.wait_count ? st.wait_us_total / st.wait_count : 0),
                      std::to_string(st.connects), std::to_string(st.connect_failures)});
  }
  return t;
}

Table AdminConsole::show_replicas() const {
  Table t{{"shard", "replica", "host", "port", "state", "replay_lsn", "lag_bytes", "lag_ms", "replay_paused",
           "reads_served", "error"}, {}};
  const auto& snap = services_.replicas;
  const auto& cfg = services_.cluster.config();
  for (int s = 0; s < services_.cluster.shard_count(); ++s) {
    auto& pools = services_.cluster.replicas(s);
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

Table AdminConsole::show_directory() const {
  Table t{{"logical_first", "logical_last", "shard", "epoch"}, {}};
  const auto& d = *services_.directory;
  for (const auto& [first, last, shard] : d.ranges())
    t.rows.push_back({std::to_string(first), std::to_string(last), d.shard_name(shard), std::to_string(d.epoch())});
  return t;
}

Table AdminConsole::show_config() const {
  const auto& c = services_.cluster.config();
  Table t{{"key", "value"}, {}};
  t.rows.push_back({"config_file", c.path});
  t.rows.push_back({"listen", fmt::format("{}:{}", c.listen.host, c.listen.port)});
  t.rows.push_back({"pool.mode", mode_name(c.pool.mode)});
  t.rows.push_back({"pool.size", std::to_string(c.pool.size)});
  t.rows.push_back({"pool.max_client_conn", std::to_string(c.pool.max_client_conn)});
  t.rows.push_back({"pool.query_wait_timeout_ms", std::to_string(c.pool.query_wait_timeout_ms)});
  t.rows.push_back({"pool.server_idle_timeout_ms", std::to_string(c.pool.server_idle_timeout_ms)});
  t.rows.push_back({"shards", std::to_string(c.shards.size())});
  t.rows.push_back({"home_shard", c.sharding.home_shard});
  t.rows.push_back({"tls", c.tls.enabled() ? "on" : "off"});
  t.rows.push_back({"clients", std::to_string(services_.sessions.size())});
  return t;
}

}  // namespace shardline::proxy::admin
