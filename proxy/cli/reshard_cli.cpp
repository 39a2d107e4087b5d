#include "proxy/cli/reshard_cli.hpp"

#include <libpq-fe.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "config/loader.hpp"
#include "proxy/control/reshard_sql.hpp"

namespace shardline::proxy::cli {

namespace {

using Clock = std::chrono::steady_clock;
using Conn = std::unique_ptr<PGconn, decltype(&PQfinish)>;
using Result = std::unique_ptr<PGresult, decltype(&PQclear)>;

std::string conninfo_value(const std::string& v) {
  std::string q = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') q += '\\';
    q += c;
  }
  return q + "'";
}

/// The admin console's conninfo from --admin or --config; "" (after a message) on a user error.
std::string admin_conninfo(const ReshardCliOptions& o) {
  if (!o.admin_url.empty()) return o.admin_url;
  if (o.config_path.empty()) {
    std::fprintf(stderr, "shardline reshard: give --admin URL or --config FILE\n");
    return "";
  }
  auto loaded = config::load_config_file(o.config_path);
  if (!loaded.ok()) {
    for (const auto& p : loaded.problems) std::fprintf(stderr, "%s\n", p.str().c_str());
    return "";
  }
  const auto& c = *loaded.config;
  if (c.admin.users.empty()) {
    std::fprintf(stderr, "%s: admin.users is empty, so no one may use the admin console\n", o.config_path.c_str());
    return "";
  }
  std::string password;
  for (const auto& u : c.users)
    if (u.name == c.admin.users.front()) password = u.password;
  return fmt::format("host={} port={} user={} password={} dbname=shardline application_name=shardline-reshard",
                     conninfo_value(c.listen.host), c.listen.port, conninfo_value(c.admin.users.front()),
                     conninfo_value(password));
}

struct Reply {
  bool ok = false;
  std::string sqlstate, error;
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
};

Reply command(PGconn* conn, const std::string& sql) {
  Reply out;
  Result r(PQexec(conn, sql.c_str()), &PQclear);
  const auto st = PQresultStatus(r.get());
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    const char* s = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
    out.sqlstate = s ? s : "08006";
    out.error = PQerrorMessage(conn);
    while (!out.error.empty() && out.error.back() == '\n') out.error.pop_back();
    return out;
  }
  out.ok = true;
  for (int c = 0; c < PQnfields(r.get()); ++c) out.columns.emplace_back(PQfname(r.get(), c));
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    out.rows.emplace_back();
    for (int c = 0; c < PQnfields(r.get()); ++c) out.rows.back().emplace_back(PQgetvalue(r.get(), i, c));
  }
  return out;
}

/// SHOW RESHARDS row of `job` as column -> value (empty if absent).
std::map<std::string, std::string> job_status(PGconn* conn, const std::string& job) {
  std::map<std::string, std::string> out;
  const Reply r = command(conn, "SHOW RESHARDS");
  for (const auto& row : r.rows) {
    if (row.empty() || row[0] != job) continue;
    for (std::size_t c = 0; c < r.columns.size() && c < row.size(); ++c) out[r.columns[c]] = row[c];
  }
  return out;
}

std::string bytes_text(long long b) {
  if (b >= 1 << 20) return fmt::format("{:.1f} MB", double(b) / (1 << 20));
  if (b >= 1 << 10) return fmt::format("{:.1f} kB", double(b) / (1 << 10));
  return fmt::format("{} B", b);
}

/// Follows the job until it ends, drawing progress; returns the final status row.
std::map<std::string, std::string> follow(PGconn* conn, const std::string& job) {
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  const auto t0 = Clock::now();
  std::string last_phase;
  auto last_line = Clock::now() - std::chrono::hours(1);
  for (;;) {
    auto s = job_status(conn, job);
    if (s.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (PQstatus(conn) != CONNECTION_OK) return s;
      continue;
    }
    const std::string phase = s["phase"];
    const long long copied = std::stoll(s["rows_copied"].empty() ? "0" : s["rows_copied"]);
    const long long total = std::stoll(s["rows_total"].empty() ? "0" : s["rows_total"]);
    const long long lag = std::stoll(s["lag_bytes"].empty() ? "0" : s["lag_bytes"]);
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    const double rate = secs > 0 ? copied / secs : 0;
    std::string eta = phase == "copy" && rate > 0 && total > copied ? fmt::format("  ETA {:.0f}s", (total - copied) / rate) : "";
    const std::string line = fmt::format("job {} {:<8} {}/{} rows ({:.0f}%)  {:.0f} rows/s  lag {}{}", job, phase, copied,
                                         total, total > 0 ? 100.0 * std::min(copied, total) / total : 100.0, rate,
                                         bytes_text(lag), eta);
    const bool terminal = phase == "done" || phase == "aborted" || phase == "failed";
    if (tty) {
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
      if (terminal) std::fprintf(stderr, "\n");
    } else if (phase != last_phase || terminal || Clock::now() - last_line > std::chrono::seconds(2)) {
      std::fprintf(stderr, "%s\n", line.c_str());
      last_line = Clock::now();
    }
    last_phase = phase;
    if (terminal) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

int print_status(PGconn* conn) {
  const Reply r = command(conn, "SHOW RESHARDS");
  if (!r.ok) {
    std::fprintf(stderr, "shardline reshard status: %s\n", r.error.c_str());
    return 2;
  }
  std::string header;
  for (const auto& c : r.columns) header += (header.empty() ? "" : "\t") + c;
  std::printf("%s\n", header.c_str());
  for (const auto& row : r.rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) line += (c ? "\t" : "") + row[c];
    std::printf("%s\n", line.c_str());
  }
  return 0;
}

}  // namespace

int run_reshard_cli(const ReshardCliOptions& o) {
  const std::string ci = admin_conninfo(o);
  if (ci.empty()) return 1;
  Conn conn(PQconnectdb(ci.c_str()), &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    std::fprintf(stderr, "shardline reshard: cannot reach the admin console: %s", PQerrorMessage(conn.get()));
    return 2;
  }
  if (o.action == "status") return print_status(conn.get());
  std::string sql;
  if (o.action == "move") sql = fmt::format("RESHARD MOVE {} TO {}", o.logical, o.target);
  else if (o.action == "isolate") sql = fmt::format("RESHARD ISOLATE TENANT {} TO {}", control::sql_literal(o.tenant), o.target);
  else sql = "RESHARD ABORT";
  const Reply r = command(conn.get(), sql);
  if (!r.ok) {
    std::fprintf(stderr, "shardline reshard %s: %s\n", o.action.c_str(), r.error.c_str());
    // Bad requests (unknown shard, bad logical shard, syntax) are the user's; the rest is runtime.
    return r.sqlstate.starts_with("22") || r.sqlstate.starts_with("42") ? 1 : 2;
  }
  const std::string job = r.rows.empty() ? "" : r.rows[0][0];
  std::fprintf(stderr, "%s\n", r.rows.empty() ? "ok" : r.rows[0][1].c_str());
  auto final_status = follow(conn.get(), job);
  const std::string phase = final_status["phase"];
  if (phase.empty()) {
    std::fprintf(stderr, "shardline reshard: lost the admin console while following job %s (it runs on in the proxy)\n",
                 job.c_str());
    return 2;
  }
  if (o.action == "abort") return phase == "aborted" ? 0 : 2;
  if (phase != "done") {
    std::fprintf(stderr, "shardline reshard: job %s %s: %s\n", job.c_str(), phase.c_str(), final_status["error"].c_str());
    return 2;
  }
  return 0;
}

}  // namespace shardline::proxy::cli
