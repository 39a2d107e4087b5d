#include "proxy/admin/admin_console.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "proxy/admin/admin_transactions.hpp"
#include "proxy/admin/admin_reshard.hpp"
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
    write_table(show_pools(services_), "SHOW", out);
  } else if (cmd == "SHOW CLIENTS") {
    write_table(show_clients(services_), "SHOW", out);
  } else if (cmd == "SHOW SERVERS") {
    write_table(show_servers(services_), "SHOW", out);
  } else if (cmd == "SHOW STATS") {
    write_table(show_stats(services_), "SHOW", out);
  } else if (cmd == "SHOW REPLICAS") {
    write_table(show_replicas(services_), "SHOW", out);
  } else if (cmd == "SHOW SHARDS") {
    write_table(show_shards(services_), "SHOW", out);
  } else if (cmd == "SHOW TENANTS") {
    write_table(show_tenants(services_), "SHOW", out);
  } else if (cmd == "SHOW TRANSACTIONS") {
    write_table(show_transactions(services_), "SHOW", out);
  } else if (cmd == "SHOW RESHARDS") {
    write_table(show_reshards(services_), "SHOW", out);
  } else if (cmd == "SHOW DIRECTORY") {
    write_table(show_directory(services_), "SHOW", out);
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
  } else if (cmd.starts_with("RESHARD ") || cmd == "RESHARD") {
    co_await run_reshard(services_, command, out);
  } else if (cmd == "SHOW CONFIG") {
    write_table(show_config(services_), "SHOW", out);
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
                            fmt::format("unknown admin command \"{}\"; try SHOW SHARDS, SHOW POOLS, SHOW CLIENTS, SHOW SERVERS, "
                                        "SHOW STATS, SHOW TENANTS, SHOW RESHARDS, SHOW TRANSACTIONS, SHOW REPLICAS, SHOW DIRECTORY, SHOW ROUTE <sql>, SHOW CONFIG, PAUSE, RESUME, RELOAD, RESHARD MOVE|ISOLATE|ABORT",
                                        std::string(command.substr(0, 80)))));
  }
}

}  // namespace shardline::proxy::admin
