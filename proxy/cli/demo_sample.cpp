#include "proxy/cli/demo_sample.hpp"

#include <filesystem>

#include <libpq-fe.h>

#include <memory>
#include <stdexcept>

#include <fmt/format.h>

#include "router/directory/directory_snapshot.hpp"
#include "router/sharding/shard_key.hpp"

namespace shardline::proxy::cli {
namespace {

// ---- the sample data: a pure function of the tenant, order and item numbers ------------------

int orders_of(int tenant) { return 1 + tenant % 5; }
int items_of(int tenant, int order) { return 1 + (tenant + order) % 3; }
int quantity_of(int tenant, int order, int item) { return 1 + (tenant + order + item) % 4; }
int price_of(int tenant, int order, int item) { return 100 + (tenant * 31 + order * 17 + item * 13) % 900; }
int plan_of(int tenant) { return 1 + tenant % kDemoPlans; }

constexpr const char* kSchema[] = {
    "CREATE TABLE plans (plan_id int PRIMARY KEY, name text NOT NULL, monthly_cents int NOT NULL)",
    "CREATE TABLE tenants (tenant_id int PRIMARY KEY, name text NOT NULL, "
    "plan_id int NOT NULL REFERENCES plans, signed_up date NOT NULL)",
    "CREATE TABLE orders (tenant_id int NOT NULL REFERENCES tenants, order_id int NOT NULL, "
    "ordered_at timestamptz NOT NULL, total_cents bigint NOT NULL, PRIMARY KEY (tenant_id, order_id))",
    "CREATE TABLE order_items (tenant_id int NOT NULL, order_id int NOT NULL, item_no int NOT NULL, "
    "sku text NOT NULL, quantity int NOT NULL, price_cents int NOT NULL, "
    "PRIMARY KEY (tenant_id, order_id, item_no), FOREIGN KEY (tenant_id, order_id) REFERENCES orders)",
};

struct Conn {
  explicit Conn(const std::string& conninfo) : c(PQconnectdb(conninfo.c_str()), &PQfinish) {
    if (PQstatus(c.get()) != CONNECTION_OK)
      throw std::runtime_error(fmt::format("cannot connect to the proxy: {}", PQerrorMessage(c.get())));
  }
  std::unique_ptr<PGresult, decltype(&PQclear)> run(const std::string& sql) {
    std::unique_ptr<PGresult, decltype(&PQclear)> r(PQexec(c.get(), sql.c_str()), &PQclear);
    const auto st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_COPY_IN)
      throw std::runtime_error(fmt::format("{}: {}", sql.substr(0, 60), PQresultErrorMessage(r.get())));
    return r;
  }
  std::string value(const std::string& sql) {
    auto r = run(sql);
    if (PQntuples(r.get()) != 1 || PQnfields(r.get()) != 1)
      throw std::runtime_error(fmt::format("{}: expected one value", sql));
    return PQgetisnull(r.get(), 0, 0) ? "" : PQgetvalue(r.get(), 0, 0);
  }
  /// COPY ... FROM STDIN with `rows` (text format, one line each).
  void copy(const std::string& sql, const std::string& rows) {
    run(sql);
    if (PQputCopyData(c.get(), rows.data(), int(rows.size())) != 1 || PQputCopyEnd(c.get(), nullptr) != 1)
      throw std::runtime_error(fmt::format("{}: {}", sql, PQerrorMessage(c.get())));
    std::string error;
    while (PGresult* r = PQgetResult(c.get())) {
      if (PQresultStatus(r) != PGRES_COMMAND_OK) error = PQresultErrorMessage(r);
      PQclear(r);
    }
    if (!error.empty()) throw std::runtime_error(fmt::format("{}: {}", sql, error));
  }
  std::unique_ptr<PGconn, decltype(&PQfinish)> c;
};

/// A libpq keyword/value string for a psql command line: values quoted when they need it.
std::string conninfo_of(const std::string& host, int port, const std::string& user, const std::string& password,
                        const std::string& db) {
  auto q = [](const std::string& v) {
    if (!v.empty() && v.find_first_of(" '\\\"$`") == std::string::npos) return v;
    std::string out = "'";
    for (char ch : v) {
      if (ch == '\'' || ch == '\\') out += '\\';
      out += ch;
    }
    return out + "'";
  };
  return fmt::format("host={} port={} user={} password={} dbname={}", host, port, q(user), q(password), q(db));
}

std::string psql(const std::string& conninfo, const std::string& sql) {
  return fmt::format("psql \"{}\" -c \"{}\"", conninfo, sql);
}

}  // namespace

DemoSampleCounts demo_sample_counts() {
  DemoSampleCounts n;
  n.plans = kDemoPlans;
  n.tenants = kDemoTenants;
  for (int t = 1; t <= kDemoTenants; ++t)
    for (int o = 1; o <= orders_of(t); ++o) {
      ++n.orders;
      n.order_items += items_of(t, o);
    }
  return n;
}

bool load_demo_sample(const std::string& conninfo) {
  Conn c(conninfo);
  const DemoSampleCounts want = demo_sample_counts();
  if (c.value("SELECT to_regclass('public.order_items') IS NOT NULL AND to_regclass('public.plans') IS NOT NULL") ==
      "t") {
    DemoSampleCounts have;
    have.plans = std::stoll(c.value("SELECT count(*) FROM plans"));
    have.tenants = std::stoll(c.value("SELECT count(*) FROM tenants"));
    have.orders = std::stoll(c.value("SELECT count(*) FROM orders"));
    have.order_items = std::stoll(c.value("SELECT count(*) FROM order_items"));
    if (have == want) return false;
  }
  // Absent or partial (an interrupted first run): the demo's own tables, loaded afresh.
  c.run("DROP TABLE IF EXISTS order_items, orders, tenants, plans");
  for (const char* ddl : kSchema) c.run(ddl);
  c.run("INSERT INTO plans VALUES (1, 'free', 0), (2, 'team', 4900), (3, 'enterprise', 49900)");

  std::string tenants, orders, items;
  for (int t = 1; t <= kDemoTenants; ++t) {
    tenants += fmt::format("{}\ttenant {:04}\t{}\t2025-{:02}-{:02}\n", t, t, plan_of(t), 1 + t % 12, 1 + t % 28);
    for (int o = 1; o <= orders_of(t); ++o) {
      std::int64_t total = 0;
      for (int i = 1; i <= items_of(t, o); ++i) {
        total += std::int64_t{quantity_of(t, o, i)} * price_of(t, o, i);
        items += fmt::format("{}\t{}\t{}\tsku-{:03}\t{}\t{}\n", t, o, i, (t * 7 + o * 3 + i) % 200, quantity_of(t, o, i),
                             price_of(t, o, i));
      }
      orders += fmt::format("{}\t{}\t2026-{:02}-{:02} {:02}:{:02}:00+00\t{}\n", t, o, 1 + (t + o) % 12,
                            1 + (t * 3 + o) % 28, (t + o * 5) % 24, (t * 7) % 60, total);
    }
  }
  // COPY through the proxy: every row goes to the shard that owns its tenant.
  c.copy("COPY tenants (tenant_id, name, plan_id, signed_up) FROM STDIN", tenants);
  c.copy("COPY orders (tenant_id, order_id, ordered_at, total_cents) FROM STDIN", orders);
  c.copy("COPY order_items (tenant_id, order_id, item_no, sku, quantity, price_cents) FROM STDIN", items);
  return true;
}

std::vector<WalkthroughStep> demo_walkthrough(const config::Config& cfg, std::uint16_t http_port) {
  const auto& user = cfg.users.front();
  const std::string db = user.database.empty() ? cfg.backend.database : user.database;
  const std::string app = conninfo_of("127.0.0.1", cfg.listen.port, user.name, user.password, db);
  const std::string admin_user = cfg.admin.users.empty() ? user.name : cfg.admin.users.front();
  const config::User* au = cfg.find_user(admin_user);
  const std::string admin =
      conninfo_of("127.0.0.1", cfg.listen.port, admin_user, au ? au->password : user.password, "shardline");

  // Two tenants on different physical shards (when there are two), for the INSERT of step 6.
  const auto dir = router::DirectorySnapshot::from_config(cfg);
  auto shard_of = [&](int t) { return dir->physical(router::logical_shard_of_int(t, cfg.sharding.logical_shards)); };
  int other = 2;
  while (other < kDemoTenants && cfg.shards.size() > 1 && shard_of(other) == shard_of(1)) ++other;

  std::vector<WalkthroughStep> steps;
  steps.push_back({"one tenant: the whole join runs on the one shard that owns tenant 42 (served_by: its port)",
                   psql(app, "SELECT t.name, p.name AS plan, count(*) AS orders, sum(o.total_cents) AS cents, "
                             "inet_server_port() AS served_by FROM tenants t JOIN plans p USING (plan_id) "
                             "JOIN orders o USING (tenant_id) WHERE t.tenant_id = 42 GROUP BY t.name, p.name")});
  steps.push_back({"why: the plan the router chooses for it (admin console)",
                   psql(admin, "SHOW ROUTE SELECT * FROM orders WHERE tenant_id = 42")});
  steps.push_back({"which physical shard owns which logical shards", psql(admin, "SHOW DIRECTORY")});
  steps.push_back({"no tenant: the query scatters to every shard and the counts are summed",
                   psql(app, "SELECT count(*) AS orders, sum(total_cents) AS cents FROM orders")});
  steps.push_back({"the same, as the router plans it", psql(admin, "SHOW ROUTE SELECT count(*) FROM orders")});
  steps.push_back({"your own tables are sharded too: any table with a tenant_id column (sharding.auto_tables)",
                   psql(app, "CREATE TABLE IF NOT EXISTS notes (tenant_id int NOT NULL, note_id int NOT NULL, "
                             "body text, PRIMARY KEY (tenant_id, note_id))")});
  steps.push_back({fmt::format("tenants 1 and {} live on different shards: this INSERT is split between them", other),
                   psql(app, fmt::format("INSERT INTO notes VALUES (1, 1, 'hello'), ({}, 1, 'hello') "
                                         "ON CONFLICT DO NOTHING",
                                         other))});
  for (const auto& s : cfg.shards)
    steps.push_back({fmt::format("shard {} directly (not through the proxy): its share of the tenants and notes", s.name),
                     psql(conninfo_of(s.primary.host, s.primary.port, cfg.backend.user, cfg.backend.password,
                                      cfg.backend.database),
                          "SELECT (SELECT count(*) FROM tenants) AS tenants, (SELECT count(*) FROM notes) AS notes, "
                          "inet_server_port() AS port")});
  steps.push_back({"each shard: primary, replicas, directory share, queries", psql(admin, "SHOW SHARDS")});
  if (cfg.shards.size() > 1) {
    // Online reshard: the logical shard of tenant 42 moves while the proxy keeps serving it.
    const int l42 = router::logical_shard_of_int(42, cfg.sharding.logical_shards);
    const std::string& to = cfg.shards[std::size_t(shard_of(42) == 0 ? 1 : 0)].name;
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    steps.push_back({fmt::format("move tenant 42's logical shard {} to shard {} online (progress on stderr; "
                                 "then run the first query again: served_by is {}'s port)",
                                 l42, to, to),
                     fmt::format("{} reshard move --logical {} --to {} --config {}", ec ? "shardline" : exe.string(), l42,
                                 to, cfg.path)});
    steps.push_back({"the reshard jobs (phases, rows copied, lag) and the directory after the move",
                     psql(admin, "SHOW RESHARDS")});
  }
  if (http_port != 0)
    steps.push_back({"the dashboard (and /metrics, /api/shards ...) in a browser",
                     fmt::format("http://{}:{}/", cfg.listen.host, http_port)});
  return steps;
}

}  // namespace shardline::proxy::cli
