// The admin HTTP endpoint against a real proxy and cluster (2 shards, 1 replica each):
// /metrics parsed by the reference Prometheus parser (python3-prometheus-client) with SPEC
// section 9's families and labels and counters that move by exactly the queries sent; every
// /api/* table equal to the admin console's SHOW of the same name; basic auth; hot tenants in
// SHOW TENANTS and the log; the dashboard rendered by headless Chromium; /healthz turning 503
// once no primary is reachable (last test: it stops the primaries).

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <thread>

#include <fmt/format.h>

#include "proxy/protocol/base64.hpp"
#include "router/sharding/shard_key.hpp"
#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using shardline::control::LocalCluster;
using shardline::testing::free_port;
using shardline::testing::PgConnection;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
namespace http = boost::beast::http;
namespace fs = std::filesystem;

LocalCluster& cluster() { return shardline::testing::test_cluster({.shards = 2, .replicas = 1}); }

struct HttpReply {
  int status = 0;
  std::string content_type;
  std::string body;
};

HttpReply http_get(std::uint16_t port, const std::string& target, const std::string& authorization = "") {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket sock(io);
  sock.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, fmt::format("127.0.0.1:{}", port));
  if (!authorization.empty()) req.set(http::field::authorization, authorization);
  http::write(sock, req);
  boost::beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(sock, buf, res);
  return {int(res.result_int()), std::string(res[http::field::content_type]), res.body()};
}

std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw std::runtime_error("popen failed: " + cmd);
  char buf[4096];
  for (std::size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int rc = pclose(p);
  if (rc != 0) throw std::runtime_error(fmt::format("`{}` exited with {}: {}", cmd, rc, out.substr(0, 2000)));
  return out;
}

fs::path support_dir() { return fs::path(SHARDLINE_SOURCE_DIR) / "tests/integration/support"; }

/// Debian's interpreter, which has Debian's python3-prometheus-client (not a PATH python).
constexpr const char* kPython = "/usr/bin/python3";

/// /metrics through the reference parser (it raises on anything malformed).
json parse_metrics(const std::string& text) {
  const fs::path tmp = fs::temp_directory_path() / fmt::format("shardline-metrics-{}.txt", getpid());
  std::ofstream(tmp) << text;
  const auto out = run_capture(fmt::format("{} {} < {} 2>&1", kPython, (support_dir() / "prometheus_parse.py").string(),
                                           tmp.string()));
  fs::remove(tmp);
  return json::parse(out);
}

/// The value of the sample `name` whose labels include `labels`; -1 if absent.
double sample(const json& m, const std::string& family, const std::string& name, const json& labels) {
  if (!m.contains(family)) return -1;
  for (const auto& s : m[family]["samples"]) {
    if (s[0] != name) continue;
    bool match = true;
    for (auto it = labels.begin(); it != labels.end(); ++it)
      match = match && s[1].contains(it.key()) && s[1][it.key()] == it.value();
    if (match) return s[2].get<double>();
  }
  return -1;
}

std::string shard_of(std::int64_t tenant) {
  auto l = shardline::router::logical_shard_of_text(shardline::router::KeyType::BigInt, std::to_string(tenant), 1024,
                                                    nullptr);
  return *l < 512 ? "s0" : "s1";  // the directory ProxyConfig writes: s0 0-511, s1 512-1023
}

/// A proxy with HTTP on, table `orders` sharded by tenant_id (created through the proxy).
class AdminHttp : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    http_port_ = free_port();
    ProxyConfig cfg(cluster(), free_port());
    cfg.http_port(http_port_)
        .sharded_table({"orders"})
        .admin_options("hot_tenant_percent: 50, hot_tenant_min_queries: 100")
        .replicas({.poll_interval_ms = 50});
    proxy_ = new ProxyProcess(cfg.yaml());
    PgConnection c(app());
    ASSERT_TRUE(c.ok()) << c.error();
    auto r = c.exec("CREATE TABLE IF NOT EXISTS orders (tenant_id bigint PRIMARY KEY, v int)");
    ASSERT_TRUE(r.ok()) << r.message();
  }
  static void TearDownTestSuite() {
    delete proxy_;
    proxy_ = nullptr;
  }
  static std::string app() { return proxy_->conninfo() + " sslmode=disable connect_timeout=5"; }
  static std::string admin() { return proxy_->conninfo("app", "secret", "shardline") + " sslmode=disable"; }

  static inline ProxyProcess* proxy_ = nullptr;
  static inline std::uint16_t http_port_ = 0;
};

TEST_F(AdminHttp, MetricsParseAndCountExactlyTheQueriesSent) {
  const std::int64_t tenant = 4242;
  const std::string shard = shard_of(tenant);
  PgConnection c(app());
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_TRUE(c.exec("SET shardline.consistency = strong").ok());  // answered by the proxy: no query
  // Wait for the lag monitor's first samples so the lag families have their series.
  json before;
  for (int i = 0; i < 200; ++i) {
    auto r = http_get(http_port_, "/metrics");
    ASSERT_EQ(r.status, 200);
    EXPECT_NE(r.content_type.find("text/plain"), std::string::npos);
    before = parse_metrics(r.body);
    if (sample(before, "shardline_replica_lag_bytes", "shardline_replica_lag_bytes", {{"shard", "s1"}}) >= 0) break;
    std::this_thread::sleep_for(50ms);
  }
  const json primary{{"shard", shard}, {"role", "primary"}};
  const double q0 = sample(before, "shardline_queries", "shardline_queries_total", primary);
  const double h0 = sample(before, "shardline_query_duration_seconds", "shardline_query_duration_seconds_count", primary);
  const double e0 = std::max(0.0, sample(before, "shardline_query_errors", "shardline_query_errors_total", {{"sqlstate", "22012"}}));
  ASSERT_GE(q0, 0) << before.dump();

  const int n = 37;
  for (int i = 0; i < n; ++i) {
    auto r = c.exec(fmt::format("SELECT count(*) FROM orders WHERE tenant_id = {}", tenant));
    ASSERT_TRUE(r.ok()) << r.message();
  }
  EXPECT_FALSE(c.exec(fmt::format("SELECT 1/0 FROM orders WHERE tenant_id = {} UNION ALL SELECT 1/0", tenant)).ok());

  const auto after = parse_metrics(http_get(http_port_, "/metrics").body);
  EXPECT_EQ(sample(after, "shardline_queries", "shardline_queries_total", primary) - q0, n + 1);
  EXPECT_EQ(sample(after, "shardline_query_duration_seconds", "shardline_query_duration_seconds_count", primary) - h0,
            n + 1);
  EXPECT_EQ(sample(after, "shardline_query_errors", "shardline_query_errors_total", {{"sqlstate", "22012"}}) - e0, 1);
  // The other shard saw none of them.
  const std::string other = shard == "s0" ? "s1" : "s0";
  const json other_primary{{"shard", other}, {"role", "primary"}};
  EXPECT_EQ(sample(after, "shardline_queries", "shardline_queries_total", other_primary),
            sample(before, "shardline_queries", "shardline_queries_total", other_primary));

  // Every SPEC family with its labels (the parser strips _total from counter family names).
  EXPECT_EQ(after["shardline_queries"]["type"], "counter");
  EXPECT_EQ(after["shardline_query_errors"]["type"], "counter");
  EXPECT_EQ(after["shardline_query_duration_seconds"]["type"], "histogram");
  for (const auto* g : {"shardline_clients", "shardline_servers", "shardline_replica_lag_bytes",
                        "shardline_replica_lag_seconds", "shardline_reshard_rows_copied"}) {
    ASSERT_TRUE(after.contains(g)) << g;
    EXPECT_EQ(after[g]["type"], "gauge") << g;
  }
  EXPECT_GE(sample(after, "shardline_query_duration_seconds", "shardline_query_duration_seconds_bucket",
                   {{"shard", shard}, {"role", "primary"}, {"le", "+Inf"}}),
            n + 1);
  EXPECT_GE(sample(after, "shardline_clients", "shardline_clients", {{"state", "idle"}}), 1);
  EXPECT_GE(sample(after, "shardline_servers", "shardline_servers", {{"shard", shard}, {"role", "primary"}, {"state", "idle"}}),
            1);
  for (const auto* s : {"s0", "s1"}) {
    EXPECT_GE(sample(after, "shardline_replica_lag_bytes", "shardline_replica_lag_bytes", {{"shard", s}, {"replica", "0"}}), 0)
        << s;
    EXPECT_GE(sample(after, "shardline_replica_lag_seconds", "shardline_replica_lag_seconds", {{"shard", s}, {"replica", "0"}}),
              0)
        << s;
  }
}

/// The console's text cell equals the API's JSON value.
bool same_cell(const std::string& text, const json& v) {
  if (v.is_null()) return text.empty();
  if (v.is_string()) return v.get<std::string>() == text;
  if (v.is_number_integer()) return std::to_string(v.get<std::int64_t>()) == text;
  if (v.is_number()) return !text.empty() && std::abs(std::stod(text) - v.get<double>()) < 1e-9;
  return false;
}

TEST_F(AdminHttp, EveryApiMatchesTheAdminConsole) {
  PgConnection c(app());
  for (int t = 1; t <= 20; ++t) ASSERT_TRUE(c.exec(fmt::format("SELECT * FROM orders WHERE tenant_id = {}", t)).ok());
  PgConnection a(admin());
  ASSERT_TRUE(a.ok()) << a.error();
  // Columns that move between two reads while the cluster idles (lag samples) are compared
  // for presence only; everything else must be equal.
  const std::map<std::string, std::set<std::string>> moving{{"replicas", {"lag_bytes", "lag_ms", "replay_lsn"}}};
  for (const std::string name : {"shards", "directory", "replicas", "tenants", "reshards"}) {
    auto shown = a.exec("SHOW " + name);
    ASSERT_TRUE(shown.ok()) << name << ": " << shown.message();
    auto reply = http_get(http_port_, "/api/" + name);
    ASSERT_EQ(reply.status, 200) << name;
    EXPECT_EQ(reply.content_type, "application/json") << name;
    const json rows = json::parse(reply.body);  // throws on invalid JSON
    ASSERT_TRUE(rows.is_array()) << name;
    ASSERT_EQ(int(rows.size()), shown.rows()) << name << ": " << reply.body;
    for (int r = 0; r < shown.rows(); ++r) {
      ASSERT_EQ(int(rows[r].size()), shown.columns()) << name;
      for (int col = 0; col < shown.columns(); ++col) {
        const std::string column = shown.column_name(col);
        ASSERT_TRUE(rows[r].contains(column)) << name << "." << column;
        if (moving.contains(name) && moving.at(name).contains(column)) continue;
        EXPECT_TRUE(same_cell(shown.value(r, col), rows[r][column]))
            << name << " row " << r << " " << column << ": console '" << shown.value(r, col) << "' api "
            << rows[r][column].dump();
      }
    }
  }
  EXPECT_EQ(http_get(http_port_, "/api/nope").status, 404);
  EXPECT_EQ(http_get(http_port_, "/nope").status, 404);
  // SHOW SHARDS: one row per shard with its primary and replica and half of the directory.
  auto shards = a.exec("SHOW SHARDS");
  ASSERT_EQ(shards.rows(), 2);
  EXPECT_EQ(shards.value(0, 0), "s0");
  EXPECT_EQ(shards.value(0, 1), fmt::format("127.0.0.1:{}", cluster().primary_port(0)));
  EXPECT_EQ(shards.value(0, 2), fmt::format("127.0.0.1:{}", cluster().replica_port(0, 0)));
  EXPECT_EQ(shards.value(0, 3), "512");
  EXPECT_EQ(shards.value(1, 4), "0.5000");
}

TEST_F(AdminHttp, HotTenantIsFirstWithItsShare) {
  const unsigned seed = std::random_device{}();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);
  // 60% of the queries for tenant `hot`, the rest spread over other tenants of the same shard.
  const std::int64_t hot = 900001;
  const std::string shard = shard_of(hot);
  std::vector<std::int64_t> others;
  for (std::int64_t t = 910000; others.size() < 200; ++t)
    if (shard_of(t) == shard) others.push_back(t);
  PgConnection a(admin());
  auto total_before = [&] {
    auto r = a.exec("SHOW SHARDS");
    for (int i = 0; i < r.rows(); ++i)
      if (r.value(i, 0) == shard) return std::stoll(r.value(i, 5));
    return -1LL;
  };
  const long long before = total_before();
  PgConnection c(app());
  ASSERT_TRUE(c.exec("SET shardline.consistency = strong").ok());
  std::uniform_int_distribution<std::size_t> pick(0, others.size() - 1);
  int hot_sent = 0;
  const int n = 2000;
  for (int i = 0; i < n; ++i) {
    const bool is_hot = i % 5 < 3;  // exactly 60%
    const std::int64_t t = is_hot ? hot : others[pick(rng)];
    hot_sent += is_hot;
    ASSERT_TRUE(c.exec(fmt::format("SELECT v FROM orders WHERE tenant_id = {}", t)).ok());
  }
  const long long shard_total = total_before();
  ASSERT_EQ(shard_total - before, n);
  auto r = a.exec("SHOW TENANTS");
  ASSERT_TRUE(r.ok()) << r.message();
  ASSERT_GE(r.rows(), 1);
  ASSERT_EQ(r.column_name(0), "tenant");
  EXPECT_EQ(r.value(0, 0), std::to_string(hot));
  EXPECT_EQ(r.value(0, 1), shard);
  const double truth = double(hot_sent) / double(shard_total);  // earlier tests' queries included
  EXPECT_NEAR(std::stod(r.value(0, 5)), truth, 0.05) << "seed " << seed;
  std::printf("hot tenant share: SHOW TENANTS %s, truth %.4f\n", r.value(0, 5).c_str(), truth);
  EXPECT_GE(std::stoll(r.value(0, 3)), hot_sent);
  // The log line (the watch runs every few seconds).
  const std::string needle = fmt::format("hot tenant {} ", hot);
  for (int i = 0; i < 300 && proxy_->log().find(needle) == std::string::npos; ++i) std::this_thread::sleep_for(50ms);
  EXPECT_NE(proxy_->log().find(needle), std::string::npos) << proxy_->log();
}

TEST_F(AdminHttp, DashboardRendersInHeadlessChromium) {
  PgConnection c(app());
  for (int t = 1; t <= 50; ++t) ASSERT_TRUE(c.exec(fmt::format("SELECT * FROM orders WHERE tenant_id = {}", t)).ok());
  auto page = http_get(http_port_, "/");
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.content_type.find("text/html"), std::string::npos);
  // Self-contained: no URL to another host anywhere in the page.
  EXPECT_EQ(page.body.find("http://"), std::string::npos);
  EXPECT_EQ(page.body.find("https://"), std::string::npos);
  EXPECT_EQ(page.body.find("//cdn"), std::string::npos);

  // Traffic while the page polls, so its rates and tenants are live.
  std::atomic<bool> stop{false};
  std::thread load([&] {
    PgConnection l(app());
    for (int i = 0; !stop; ++i) (void)l.exec(fmt::format("SELECT * FROM orders WHERE tenant_id = {}", i % 7 ? 4242 : i));
  });
  const fs::path dir = fs::path(SHARDLINE_BINARY).parent_path();
  const fs::path png = dir / "dashboard.png", netlog = dir / "dashboard-netlog.json";
  const fs::path profile = fs::temp_directory_path() / fmt::format("shardline-chromium-{}", getpid());
  const std::string url = fmt::format("http://127.0.0.1:{}/", http_port_);
  // Any host but the proxy's fails to resolve, and every request is in the net log.
  const std::string common = fmt::format(
      "chromium --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "
      "--disable-background-networking --disable-component-update --disable-sync --user-data-dir={} "
      "--host-resolver-rules='MAP * ~NOTFOUND, EXCLUDE 127.0.0.1' --window-size=1400,1100 "
      "--virtual-time-budget=6000 --enable-logging=stderr --v=0",
      profile.string());
  fs::remove(png);
  run_capture(fmt::format("{} --screenshot={} --log-net-log={} {} 2>/dev/null", common, png.string(), netlog.string(), url));
  const std::string dom_and_log = run_capture(fmt::format("{} --dump-dom {} 2>&1", common, url));
  fs::remove_all(profile);
  stop = true;
  load.join();

  // The DOM after the page's scripts ran: the shards, replica lag, the logical-shard map.
  const std::regex cell_re("--c: ?#");
  const auto cells = std::distance(std::sregex_iterator(dom_and_log.begin(), dom_and_log.end(), cell_re),
                                   std::sregex_iterator());
  EXPECT_GE(cells, 1024) << "logical-shard map cells coloured by shard";
  EXPECT_NE(dom_and_log.find("class=\"name\">s0<"), std::string::npos);
  EXPECT_NE(dom_and_log.find("class=\"name\">s1<"), std::string::npos);
  EXPECT_NE(dom_and_log.find(fmt::format("127.0.0.1:{}", cluster().replica_port(1, 0))), std::string::npos);
  EXPECT_NE(dom_and_log.find("class=\"lag\">lag "), std::string::npos);
  std::smatch err;
  ASSERT_TRUE(std::regex_search(dom_and_log, err, std::regex("<div id=\"error\"[^>]*>([^<]*)</div>")));
  EXPECT_EQ(err[1].str(), "") << "the page reports an error";
  // No console errors, no uncaught exceptions.
  for (const auto* bad : {"Uncaught", "CONSOLE", "Failed to load resource"})
    EXPECT_EQ(dom_and_log.find(bad), std::string::npos) << bad << " in:\n" << dom_and_log.substr(0, 4000);

  // Every request the page made (the net log's requests whose isolation key is the page's
  // site; Chromium's own background requests have other keys) went to the proxy.
  std::ifstream nl(netlog);
  const json log = json::parse(nl);
  int start_job = -1;
  for (auto it = log["constants"]["logEventTypes"].begin(); it != log["constants"]["logEventTypes"].end(); ++it)
    if (it.key() == "URL_REQUEST_START_JOB") start_job = it.value();
  ASSERT_GE(start_job, 0);
  int requests = 0;
  for (const auto& e : log["events"]) {
    if (e["type"] != start_job || !e.contains("params") || !e["params"].contains("url")) continue;
    const auto& p = e["params"];
    const std::string u = p["url"], nik = p.value("network_isolation_key", "");
    if (nik.find("http://127.0.0.1") == std::string::npos && p.value("initiator", "") != url.substr(0, url.size() - 1))
      continue;  // not the page's
    ++requests;
    EXPECT_TRUE(u.starts_with(url)) << "the page requested another host: " << u;
  }
  EXPECT_GE(requests, 7);  // the page and at least one round of its six API polls

  // The screenshot is a rendered page, not a blank one.
  ASSERT_TRUE(fs::exists(png));
  const json stats = json::parse(run_capture(fmt::format("{} {} {}", kPython, (support_dir() / "png_stats.py").string(),
                                                         png.string())));
  EXPECT_EQ(stats["width"], 1400);
  EXPECT_GE(stats["colors"].get<int>(), 20) << stats.dump();
  std::printf("dashboard screenshot: %s (%s)\n", png.string().c_str(), stats.dump().c_str());
}

TEST(AdminHttpAuth, BasicAuthWithAnAdminUsersPassword) {
  ProxyConfig cfg(cluster(), free_port());
  const auto port = free_port();
  cfg.add_user({"reader", "pw2"}).http_port(port).admin_options("http_auth: basic");
  ProxyProcess proxy(cfg.yaml());
  auto basic = [](const std::string& up) { return "Basic " + shardline::proxy::protocol::base64_encode(up); };
  EXPECT_EQ(http_get(port, "/metrics").status, 401);
  EXPECT_EQ(http_get(port, "/metrics", basic("app:wrong")).status, 401);
  EXPECT_EQ(http_get(port, "/metrics", basic("reader:pw2")).status, 401);  // not an admin user
  EXPECT_EQ(http_get(port, "/metrics", basic("app:secret")).status, 200);
  EXPECT_EQ(http_get(port, "/api/shards", basic("app:secret")).status, 200);
  EXPECT_EQ(http_get(port, "/healthz", basic("app:secret")).status, 200);
}

// Last: stops the primaries of this executable's cluster.
TEST_F(AdminHttp, ZzHealthzIs503OnceNoPrimaryIsReachable) {
  auto ok = http_get(http_port_, "/healthz");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(json::parse(ok.body)["status"], "ok");
  std::vector<shardline::control::ServerInfo> primaries;
  for (const auto& s : cluster().servers())
    if (s.is_primary()) primaries.push_back(s);
  cluster().stop_server(primaries[0]);
  auto degraded = http_get(http_port_, "/healthz");
  EXPECT_EQ(degraded.status, 200);
  EXPECT_EQ(json::parse(degraded.body)["status"], "degraded");
  cluster().stop_server(primaries[1]);
  auto down = http_get(http_port_, "/healthz");
  EXPECT_EQ(down.status, 503);
  const auto body = json::parse(down.body);
  EXPECT_EQ(body["status"], "unavailable");
  EXPECT_FALSE(body["shards"][0]["reachable"].get<bool>());
  for (const auto& p : primaries) cluster().start_server(p);
  EXPECT_EQ(http_get(http_port_, "/healthz").status, 200);
}

}  // namespace
