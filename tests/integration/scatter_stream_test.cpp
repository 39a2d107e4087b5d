// The scatter executor streams (issue 9, scope 4): a tenant-less read of 1.5M rows on two shards
// read by a slow client keeps the proxy's memory bounded (RSS growth measured from
// /proc/<pid>/status), the rows arrive complete and, for ORDER BY, in order; an error on one
// shard fails the statement naming the shard and leaves the session and the pooled connections
// usable; a client that leaves mid-stream stops the shards' queries.
//
// The data is written on each shard directly (odd ids on s1, even ids on s0, so an ORDER BY
// interleaves the shards row by row); the proxy only reads it.

#include <arpa/inet.h>
#include <endian.h>
#include <libpq-fe.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"
#include "tests/integration/support/raw_client.hpp"

namespace {

using namespace std::chrono_literals;
using shardline::control::LocalCluster;
using shardline::testing::free_port;
using shardline::testing::must;
using shardline::testing::PgConnection;
using shardline::testing::PgResult;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using shardline::testing::RawClient;
using shardline::testing::ShardedTableSpec;
namespace raw = shardline::testing::raw;

constexpr int kShards = 2;
constexpr std::int64_t kRows = 1'500'000;
constexpr std::int64_t kMaxGrowthKb = 64 * 1024;

LocalCluster& cluster() {
  shardline::testing::ClusterSpec spec;
  spec.shards = kShards;
  return shardline::testing::test_cluster(spec);
}

/// Shard `i`'s primary, bypassing the proxy (named, so proxy_backends() can leave it out).
PgConnection connect_shard(int i) {
  PgConnection c(cluster().conninfo(i) + " application_name=ss_test");
  if (!c.ok()) throw std::runtime_error(fmt::format("cannot connect to shard {}: {}", i, c.error()));
  return c;
}

/// The tables, written on the shards before the proxy starts (it learns their key types then).
void load_data() {
  static bool done = false;
  if (done) return;
  for (int s = 0; s < kShards; ++s) {
    PgConnection c = connect_shard(s);
    must(c, "DROP TABLE IF EXISTS ss_big");
    must(c, "CREATE TABLE ss_big (tenant_id bigint, id bigint, pad text)");
    must(c, fmt::format("INSERT INTO ss_big SELECT g, g, repeat('x', 24) FROM generate_series(1, {}) g "
                        "WHERE g % {} = {}",
                        kRows, kShards, s));
    must(c, "ANALYZE ss_big");
  }
  done = true;
}

ProxyProcess& proxy() {
  load_data();
  static ProxyProcess p(ProxyConfig(cluster(), free_port()).sharded_table(ShardedTableSpec{"ss_big", "", ""}).yaml());
  return p;
}

std::string conninfo() { return proxy().conninfo() + " sslmode=disable gssencmode=disable connect_timeout=5"; }

PgConnection connect_proxy() {
  PgConnection c(conninfo());
  if (!c.ok()) throw std::runtime_error("cannot connect to the proxy: " + c.error());
  return c;
}

/// A field of /proc/<pid>/status in kB ("VmRSS", "VmHWM").
std::int64_t status_kb(pid_t pid, const std::string& field) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  throw std::runtime_error("no " + field + " in /proc/" + std::to_string(pid) + "/status");
}

/// Resets the proxy's peak RSS (VmHWM) to its current RSS; false where the kernel refuses.
bool reset_peak(pid_t pid) {
  std::ofstream out(fmt::format("/proc/{}/clear_refs", pid));
  out << "5";
  out.flush();
  return bool(out);
}

/// What a slow client saw of a simple Query's reply.
struct Stream {
  std::int64_t rows = 0;
  std::int64_t id_sum = 0;
  bool ordered = true;  ///< the first column strictly increased row by row
  std::string command_tag, error_sqlstate, error_message, error_detail;
  std::int64_t max_rss_kb = 0;  ///< the proxy's RSS, sampled while reading
  std::int64_t longest_wait_ms = 0;  ///< the longest the client waited for the proxy's next bytes
  int waits_over_100ms = 0;
};

std::string field(std::string_view body, char code) {
  for (std::size_t i = 0; i < body.size() && body[i];) {
    const char c = body[i++];
    const std::size_t end = body.find('\0', i);
    if (c == code) return std::string(body.substr(i, end - i));
    i = end + 1;
  }
  return {};
}

/// Logs in with libpq, then sends `sql` as one Query on the raw socket and reads the reply in
/// small pieces with pauses: a client slower than the shards. `stop_after` > 0: closes the
/// socket after that many bytes (a client that leaves mid-stream).
Stream read_slowly(const std::string& sql, pid_t proxy_pid, std::size_t stop_after = 0) {
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(conninfo().c_str()), &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) throw std::runtime_error(PQerrorMessage(conn.get()));
  const int fd = PQsocket(conn.get());
  // A small receive buffer, so the proxy meets a full socket early and often. Not smaller than
  // a few loopback segments (MSS ~64 KB): with 16 KB the kernel announced the reopened window
  // late, and the proxy's sends waited for TCP's 200 ms persist probe (2,137 such waits made one
  // 1.5M-row read take 470 s).
  const int small = 256 * 1024;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  const std::string q = raw::query(sql);
  if (::send(fd, q.data(), q.size(), MSG_NOSIGNAL) != ssize_t(q.size())) throw std::runtime_error("send failed");
  Stream st;
  std::string in;
  std::size_t pos = 0, total = 0;
  std::int64_t last = INT64_MIN;
  char buf[8192];
  std::this_thread::sleep_for(500ms);  // the shards produce while the client reads nothing
  for (int reads = 0;; ++reads) {
    pollfd p{fd, POLLIN, 0};
    const auto waited_from = std::chrono::steady_clock::now();
    if (::poll(&p, 1, 60'000) != 1) throw std::runtime_error("no reply from the proxy within 60 s");
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - waited_from).count();
    if (reads > 0 && waited > 100) ++st.waits_over_100ms;
    if (reads > 0) st.longest_wait_ms = std::max<std::int64_t>(st.longest_wait_ms, waited);
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) throw std::runtime_error("the proxy closed the connection mid-reply");
    in.append(buf, std::size_t(n));
    total += std::size_t(n);
    if (stop_after > 0 && total >= stop_after) {
      ::shutdown(fd, SHUT_RDWR);
      return st;
    }
    if (reads % 8 == 0) {
      st.max_rss_kb = std::max(st.max_rss_kb, status_kb(proxy_pid, "VmRSS"));
      std::this_thread::sleep_for(1ms);
    }
    while (in.size() - pos >= 5) {
      std::uint32_t len;
      std::memcpy(&len, in.data() + pos + 1, 4);
      len = ntohl(len);
      if (in.size() - pos < 1 + std::size_t(len)) break;
      const char tag = in[pos];
      std::string_view body(in.data() + pos + 5, len - 4);
      pos += 1 + len;
      if (tag == 'D') {
        ++st.rows;
        std::uint32_t flen;
        std::memcpy(&flen, body.data() + 2, 4);
        flen = ntohl(flen);
        const std::int64_t id = std::stoll(std::string(body.substr(6, flen)));
        st.id_sum += id;
        if (id <= last) st.ordered = false;
        last = id;
      } else if (tag == 'C') {
        st.command_tag = std::string(body.substr(0, body.size() - 1));
      } else if (tag == 'E') {
        st.error_sqlstate = field(body, 'C');
        st.error_message = field(body, 'M');
        st.error_detail = field(body, 'D');
      } else if (tag == 'Z') {
        return st;
      }
    }
    if (pos > (1 << 20)) {
      in.erase(0, pos);
      pos = 0;
    }
  }
}

/// Runs a streaming read and checks the proxy's peak RSS stayed within kMaxGrowthKb of where it
/// started.
Stream measured_read(const std::string& sql) {
  const pid_t pid = proxy().pid();
  {
    PgConnection warm = connect_proxy();  // pools filled, collation learned: not part of the figure
    must(warm, "SELECT id FROM ss_big WHERE id < 10");
  }
  const bool peak_reset = reset_peak(pid);
  const std::int64_t before = status_kb(pid, "VmRSS");
  Stream st = read_slowly(sql, pid);
  const std::int64_t peak = status_kb(pid, "VmHWM");
  const std::int64_t growth = std::max(peak, st.max_rss_kb) - before;
  std::printf("%s: %lld rows; proxy VmRSS before %lld kB, peak %lld kB (VmHWM%s), sampled max %lld kB: growth %lld kB; "
              "longest wait for the proxy %lld ms, %d waits over 100 ms\n",
              sql.c_str(), (long long)st.rows, (long long)before, (long long)peak, peak_reset ? " reset before" : "",
              (long long)st.max_rss_kb, (long long)growth, (long long)st.longest_wait_ms, st.waits_over_100ms);
  EXPECT_LT(growth, kMaxGrowthKb) << "the proxy's RSS grew by " << growth << " kB reading " << sql;
  return st;
}

/// Waits until no backend on any shard runs a statement on ss_big (the proxy stopped them).
void expect_shards_quiet() {
  for (int s = 0; s < kShards; ++s) {
    PgConnection c = connect_shard(s);
    std::string active;
    for (int i = 0; i < 200; ++i) {
      active = c.value("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%ss_big%' "
                       "AND pid <> pg_backend_pid()");
      if (active == "0") break;
      std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(active, "0") << "shard " << s << " still runs the statement the proxy gave up on";
  }
}

/// Backend pids of the proxy's connections on each shard.
std::vector<std::set<std::string>> proxy_backends() {
  std::vector<std::set<std::string>> out;
  for (int s = 0; s < kShards; ++s) {
    const PgResult r = connect_shard(s).exec(
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND datname = current_database() "
        "AND application_name <> 'ss_test'");
    if (!r.ok()) throw std::runtime_error(r.describe());
    std::set<std::string> pids;
    for (int i = 0; i < r.rows(); ++i) pids.insert(r.value(i, 0));
    out.push_back(std::move(pids));
  }
  return out;
}

TEST(ScatterStream, PlainScatterOfManyRowsStreamsWithBoundedMemory) {
  const Stream st = measured_read("SELECT id, tenant_id, pad FROM ss_big");
  EXPECT_EQ(st.error_sqlstate, "") << st.error_message;
  EXPECT_EQ(st.rows, kRows);
  EXPECT_EQ(st.id_sum, kRows * (kRows + 1) / 2);
  EXPECT_EQ(st.command_tag, fmt::format("SELECT {}", kRows));
}

TEST(ScatterStream, OrderedScatterOfManyRowsStreamsInOrderWithBoundedMemory) {
  const Stream st = measured_read("SELECT id, pad FROM ss_big ORDER BY id");
  ASSERT_EQ(st.error_sqlstate, "") << st.error_message;
  EXPECT_EQ(st.rows, kRows);
  EXPECT_TRUE(st.ordered);
  EXPECT_EQ(st.id_sum, kRows * (kRows + 1) / 2);
  EXPECT_EQ(st.command_tag, fmt::format("SELECT {}", kRows));
}

TEST(ScatterStream, ErrorOnOneShardFailsTheStatementNamingItAndLeavesPoolsUsable) {
  PgConnection c = connect_proxy();
  // Odd ids live on s1: the division fails there, late in its scan, while s0 still streams.
  const std::string failing = fmt::format("SELECT id, 1 / (id - {}) FROM ss_big", kRows - 299'999);
  std::vector<std::set<std::string>> first;
  for (int round = 0; round < 4; ++round) {
    const PgResult r = c.exec(failing);
    ASSERT_EQ(r.status(), PGRES_FATAL_ERROR) << r.describe();
    EXPECT_EQ(r.sqlstate(), "22012") << r.describe();
    const char* d = PQresultErrorField(r.get(), PG_DIAG_MESSAGE_DETAIL);
    EXPECT_NE(std::string(d ? d : "").find("failed on shard(s) s1"), std::string::npos) << (d ? d : "(no detail)");
    // The session goes on, through both protocols.
    const PgResult ok = c.exec("SELECT id FROM ss_big WHERE id <= 4");
    ASSERT_TRUE(ok.ok()) << ok.describe();
    EXPECT_EQ(ok.rows(), 4);
    const PgResult ext = c.exec_params("SELECT id FROM ss_big WHERE id <= $1", {"3"});
    ASSERT_TRUE(ext.ok()) << ext.describe();
    EXPECT_EQ(ext.rows(), 3);
    expect_shards_quiet();
    // The connections went back to their pools: the same server backends serve every round.
    if (round == 0) first = proxy_backends();
    else EXPECT_EQ(proxy_backends(), first) << "the proxy replaced its shard connections after a failed scatter";
  }
}

TEST(ScatterStream, ClientLeavingMidStreamStopsTheShards) {
  const pid_t pid = proxy().pid();
  read_slowly("SELECT id, tenant_id, pad FROM ss_big", pid, 1 << 20);
  expect_shards_quiet();
  PgConnection c = connect_proxy();
  const PgResult ok = c.exec("SELECT id FROM ss_big WHERE id <= 5");
  ASSERT_TRUE(ok.ok()) << ok.describe();
  EXPECT_EQ(ok.rows(), 5);
}

TEST(ScatterStream, CancelRequestStopsTheScatterOnEveryShard) {
  // One row per shard passes `id <= 2`, and each sleeps 30 s there: only a cancel that reaches
  // both shards ends the statement early. Both protocols; the session goes on afterwards.
  PgConnection c = connect_proxy();
  for (const bool extended : {false, true}) {
    const char* sql = "SELECT count(*) FROM ss_big WHERE id <= 2 AND pg_sleep(30) IS NULL";
    const int sent = extended ? PQsendQueryParams(c.get(), sql, 0, nullptr, nullptr, nullptr, nullptr, 0)
                              : PQsendQuery(c.get(), sql);
    ASSERT_EQ(sent, 1) << PQerrorMessage(c.get());
    std::this_thread::sleep_for(1s);
    const auto t0 = std::chrono::steady_clock::now();
    PGcancel* cancel = PQgetCancel(c.get());
    char err[256];
    ASSERT_EQ(PQcancel(cancel, err, sizeof err), 1) << err;
    PQfreeCancel(cancel);
    std::string sqlstate, detail;
    while (PGresult* r = PQgetResult(c.get())) {
      if (PQresultStatus(r) == PGRES_FATAL_ERROR) {
        const char* st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char* d = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
        sqlstate = st ? st : "";
        detail = d ? d : "";
      }
      PQclear(r);
    }
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    EXPECT_EQ(sqlstate, "57014") << "extended=" << extended << " detail: " << detail;
    EXPECT_LT(waited.count(), 10'000) << "the statement ran on after the cancel (extended=" << extended << ")";
    expect_shards_quiet();
    const PgResult ok = c.exec("SELECT id FROM ss_big WHERE id <= 4");
    ASSERT_TRUE(ok.ok()) << ok.describe();
    EXPECT_EQ(ok.rows(), 4);
  }
}

TEST(ScatterStream, ExtendedProtocolScatterInTextAndBinary) {
  PgConnection c = connect_proxy();
  for (int format : {0, 1}) {
    const char* values[] = {"6"};
    PgResult r(PQexecParams(c.get(), "SELECT id FROM ss_big WHERE id <= $1", 1, nullptr, values, nullptr, nullptr, format));
    ASSERT_TRUE(r.ok()) << r.describe();
    ASSERT_EQ(r.rows(), 6);
    std::int64_t sum = 0;
    for (int i = 0; i < r.rows(); ++i) {
      if (format == 0) {
        sum += std::stoll(r.value(i, 0));
      } else {
        ASSERT_EQ(PQgetlength(r.get(), i, 0), 8);
        std::uint64_t v;
        std::memcpy(&v, PQgetvalue(r.get(), i, 0), 8);
        sum += std::int64_t(be64toh(v));
      }
    }
    EXPECT_EQ(sum, 21) << "format " << format;
    EXPECT_STREQ(PQcmdStatus(r.get()), "SELECT 6");
  }
  // A prepared statement, described first (libpq's PQdescribePrepared).
  PgResult prep(PQprepare(c.get(), "ss_q", "SELECT id, pad FROM ss_big WHERE id <= $1", 1, nullptr));
  ASSERT_TRUE(prep.ok()) << prep.describe();
  PgResult desc(PQdescribePrepared(c.get(), "ss_q"));
  ASSERT_TRUE(desc.ok()) << desc.describe();
  EXPECT_EQ(PQnfields(desc.get()), 2);
  EXPECT_EQ(PQnparams(desc.get()), 1);
  const PgResult rows = c.exec_prepared("ss_q", {"2"});
  ASSERT_TRUE(rows.ok()) << rows.describe();
  EXPECT_EQ(rows.rows(), 2);
}

/// The values of column 0 as integers (text, or binary int8).
std::vector<std::int64_t> ints(const PgResult& r) {
  std::vector<std::int64_t> out;
  for (int i = 0; i < r.rows(); ++i) {
    if (PQfformat(r.get(), 0) == 0) {
      out.push_back(std::stoll(r.value(i, 0)));
    } else {
      std::uint64_t v;
      std::memcpy(&v, PQgetvalue(r.get(), i, 0), 8);
      out.push_back(std::int64_t(be64toh(v)));
    }
  }
  return out;
}

TEST(ScatterStream, MergedScattersWithHiddenSortColumnsAndLimitsInBothProtocols) {
  PgConnection c = connect_proxy();
  using V = std::vector<std::int64_t>;
  // Simple protocol: LIMIT/OFFSET literals (cached as parameters), a sort key not selected.
  const PgResult simple = c.exec("SELECT tenant_id FROM ss_big WHERE id <= 10 ORDER BY id DESC LIMIT 3 OFFSET 2");
  ASSERT_TRUE(simple.ok()) << simple.describe();
  EXPECT_EQ(ints(simple), (V{8, 7, 6}));
  EXPECT_EQ(simple.columns(), 1);
  EXPECT_STREQ(PQcmdStatus(simple.get()), "SELECT 3");
  // Extended protocol: LIMIT $1, text and binary results (the hidden sort column stays text).
  for (int format : {0, 1}) {
    const char* values[] = {"10", "4"};
    PgResult r(PQexecParams(c.get(), "SELECT tenant_id FROM ss_big WHERE id <= $1 ORDER BY id DESC LIMIT $2", 2,
                            nullptr, values, nullptr, nullptr, format));
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.columns(), 1);
    EXPECT_EQ(PQfformat(r.get(), 0), format);
    EXPECT_EQ(ints(r), (V{10, 9, 8, 7})) << "format " << format;
  }
}

TEST(ScatterStream, ExecuteWithRowLimitOnSeveralShardsIsRefused) {
  RawClient c(conninfo());
  const auto reply = c.round_trip(raw::parse("", "SELECT id FROM ss_big WHERE id <= $1") + raw::bind("", "", {"5"}) +
                                  raw::execute("", 2) + raw::sync());
  std::string sqlstate, message;
  for (const auto& m : reply)
    if (m.tag == 'E') sqlstate = m.sqlstate(), message = m.message();
  EXPECT_EQ(sqlstate, "0A000") << RawClient::summary(reply);
  EXPECT_NE(message.find("row limit"), std::string::npos) << message;
  // The session goes on.
  EXPECT_EQ(c.query_values("SELECT id FROM ss_big WHERE id <= 3").size(), 3u);
}

TEST(ScatterStream, FloatKeysInTextAreMergedOnlyWhileTheirTextIsExact) {
  // 1/3 and its neighbour print alike with extra_float_digits 0: ordering or grouping by that
  // text could differ from one database's answer, so the proxy refuses instead.
  const std::string q = "SELECT id::float8 / 3 AS f FROM ss_big WHERE id <= 6 ORDER BY f DESC";
  for (const char* digits : {"1", "3", "0", "-2"}) {
    PgConnection c = connect_proxy();
    ASSERT_TRUE(c.exec(std::string("SET extra_float_digits = ") + digits).ok());
    const PgResult r = c.exec(q);
    if (std::string(digits) == "1" || std::string(digits) == "3") {
      ASSERT_TRUE(r.ok()) << digits << ": " << r.describe();
      ASSERT_EQ(r.rows(), 6) << digits;
      EXPECT_EQ(std::stod(r.value(0, 0)), 2.0) << digits;
      EXPECT_EQ(std::stod(r.value(5, 0)), 1.0 / 3) << digits;
    } else {
      EXPECT_EQ(r.sqlstate(), "0A000") << digits << ": " << r.describe();
      EXPECT_NE(r.describe().find("extra_float_digits"), std::string::npos) << r.describe();
    }
  }
  // Binary results carry the exact value whatever extra_float_digits says.
  PgConnection c = connect_proxy();
  ASSERT_TRUE(c.exec("SET extra_float_digits = 0").ok());
  PgResult b(PQexecParams(c.get(), q.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 1));
  EXPECT_TRUE(b.ok()) << b.describe();
  EXPECT_EQ(b.rows(), 6);
}

}  // namespace
