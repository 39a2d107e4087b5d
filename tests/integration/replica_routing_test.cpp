// Replica reads (SPEC section 7) against one shard with one real streaming replica, as a client
// observes them: which server answered is read from pg_is_in_recovery() and inet_server_port()
// in the same statement, and replica lag is made on purpose with pg_wal_replay_pause() on the
// replica (superuser over its unix socket). Covers read-your-writes for the session and for a
// second connection holding the version cookie, eventual reads, the max_lag_bytes and
// max_lag_ms limits, a replica that dies, bad settings (22023), reads with side effects, and
// what the admin console's SHOW REPLICAS reports.

#include <libpq-fe.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"

namespace {

using namespace std::chrono_literals;
using shardline::config::Consistency;
using shardline::control::LocalCluster;
using shardline::control::ServerInfo;
using shardline::testing::free_port;
using shardline::testing::PgConnection;
using shardline::testing::PgResult;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using shardline::testing::ReplicaSettings;
using Clock = std::chrono::steady_clock;

constexpr int kPollMs = 20;

LocalCluster& cluster() { return shardline::testing::test_cluster({.shards = 1, .replicas = 1}); }

const ServerInfo& replica_server() {
  for (const auto& s : cluster().servers())
    if (s.shard == "s0" && s.replica == 0) return s;
  throw std::logic_error("the test cluster has no replica s0r0");
}

int primary_port() { return cluster().primary_port(0); }
int replica_port() { return cluster().replica_port(0, 0); }

/// The proxy most tests share: a lag limit in time generous enough that a paused replica stays
/// eligible for eventual reads for the whole test, and a fast lag poll.
ProxyProcess& proxy() {
  static ProxyProcess p(
      ProxyConfig(cluster(), free_port()).replicas({.max_lag_ms = 60000, .poll_interval_ms = kPollMs}).yaml());
  return p;
}

std::uint64_t parse_lsn(const std::string& text) {
  const auto slash = text.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == text.size())
    throw std::runtime_error("not an LSN: '" + text + "'");
  return (std::stoull(text.substr(0, slash), nullptr, 16) << 32) | std::stoull(text.substr(slash + 1), nullptr, 16);
}

void exec_ok(const PgConnection& c, const std::string& sql) {
  PgResult r = c.exec(sql);
  ASSERT_TRUE(r.ok()) << sql << ": " << r.describe();
}

PgConnection connect(const ProxyProcess& p, const std::string& db = "app") {
  PgConnection c(p.conninfo("app", "secret", db));
  if (!c.ok()) throw std::runtime_error("cannot connect to the proxy: " + c.error());
  return c;
}

/// One row of SHOW REPLICAS (the only replica), by column name.
std::map<std::string, std::string> replica_row(const ProxyProcess& p) {
  PgConnection admin = connect(p, "shardline");
  PgResult r = admin.exec("SHOW REPLICAS");
  if (!r.ok() || r.rows() != 1) throw std::runtime_error("SHOW REPLICAS: " + r.describe());
  std::map<std::string, std::string> row;
  for (int c = 0; c < r.columns(); ++c) row[r.column_name(c)] = r.value(0, c);
  return row;
}

std::string describe(const std::map<std::string, std::string>& row) {
  std::string out;
  for (const auto& [k, v] : row) out += k + "=" + v + " ";
  return out;
}

/// Polls SHOW REPLICAS until `pred` holds; fails the test with the last row after `timeout`.
std::map<std::string, std::string> wait_replica(const ProxyProcess& p,
                                                const std::function<bool(const std::map<std::string, std::string>&)>& pred,
                                                const std::string& what, std::chrono::milliseconds timeout = 15s) {
  const auto deadline = Clock::now() + timeout;
  auto row = replica_row(p);
  while (!pred(row)) {
    if (Clock::now() > deadline) {
      ADD_FAILURE() << "timed out waiting for: " << what << "; SHOW REPLICAS: " << describe(row);
      return row;
    }
    std::this_thread::sleep_for(10ms);
    row = replica_row(p);
  }
  return row;
}

std::uint64_t primary_lsn() {
  PgConnection c(cluster().conninfo(0));
  return parse_lsn(c.value("SELECT pg_current_wal_lsn()"));
}

/// Until the proxy's lag monitor reports the replica eligible with every WAL byte the primary
/// has now replayed, and no lag.
void wait_caught_up(const ProxyProcess& p) {
  const std::uint64_t target = primary_lsn();
  wait_replica(
      p,
      [&](const auto& r) {
        return r.at("state") == "eligible" && !r.at("replay_lsn").empty() && parse_lsn(r.at("replay_lsn")) >= target &&
               r.at("lag_bytes") == "0" && r.at("replay_paused") == "no";
      },
      fmt::format("replica caught up to {:X}/{:X}", target >> 32, target & 0xffffffffu));
}

/// Pauses WAL replay on the replica for its lifetime and waits until both the server and the
/// proxy's monitor (SHOW REPLICAS replay_paused) see it; resumes in the destructor.
class ReplayPause {
 public:
  explicit ReplayPause(const ProxyProcess& p) : su_(cluster().superuser_conninfo(0, 0)) {
    if (!su_.ok()) throw std::runtime_error("replica superuser connection: " + su_.error());
    su_.value("SELECT pg_wal_replay_pause()");
    const auto deadline = Clock::now() + 10s;
    while (su_.value("SELECT pg_is_wal_replay_paused()") != "t") {
      if (Clock::now() > deadline) throw std::runtime_error("replica replay did not pause");
      std::this_thread::sleep_for(5ms);
    }
    wait_replica(p, [](const auto& r) { return r.at("replay_paused") == "yes"; }, "SHOW REPLICAS replay_paused yes");
  }
  ~ReplayPause() { resume(); }
  ReplayPause(const ReplayPause&) = delete;
  ReplayPause& operator=(const ReplayPause&) = delete;

  void resume() {
    if (resumed_) return;
    resumed_ = true;
    PgResult r = su_.exec("SELECT pg_wal_replay_resume()");
    EXPECT_TRUE(r.ok()) << r.describe();
  }

 private:
  PgConnection su_;
  bool resumed_ = false;
};

/// What a read saw and which server answered it.
struct Read {
  std::string value;
  bool in_recovery = false;
  int port = 0;
};

/// `sql` must return one row: (value, pg_is_in_recovery(), inet_server_port()).
Read read(const PgConnection& c, const std::string& sql) {
  PgResult r = c.exec(sql);
  if (!r.ok() || r.rows() != 1 || r.columns() != 3) throw std::runtime_error(sql + ": " + r.describe());
  return Read{r.is_null(0, 0) ? "<null>" : r.value(0, 0), r.value(0, 1) == "t", std::stoi(r.value(0, 2))};
}

std::string item_read(int id) {
  return fmt::format("SELECT count(*), pg_is_in_recovery(), inet_server_port() FROM rr_items WHERE id = {}", id);
}

void expect_primary(const Read& r, const std::string& what) {
  EXPECT_FALSE(r.in_recovery) << what << ": answered by a server in recovery";
  EXPECT_EQ(r.port, primary_port()) << what << ": not answered by the primary";
}

void expect_replica(const Read& r, const std::string& what) {
  EXPECT_TRUE(r.in_recovery) << what << ": answered by a server not in recovery";
  EXPECT_EQ(r.port, replica_port()) << what << ": not answered by the replica";
}

/// The tables and functions every test uses, created once through the proxy, then replicated.
void ensure_schema() {
  static bool done = false;
  if (done) return;
  PgConnection c = connect(proxy());
  for (const char* sql : {"DROP TABLE IF EXISTS rr_items, rr_log", "DROP SEQUENCE IF EXISTS rr_seq",
                          "CREATE TABLE rr_items (id int PRIMARY KEY, note text)",
                          "CREATE TABLE rr_log (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())",
                          "CREATE SEQUENCE rr_seq", "INSERT INTO rr_items VALUES (100, 'seed')",
                          "CREATE OR REPLACE FUNCTION rr_touch() RETURNS bigint VOLATILE LANGUAGE sql AS "
                          "$$ INSERT INTO rr_log DEFAULT VALUES RETURNING id $$"}) {
    PgResult r = c.exec(sql);
    if (!r.ok()) throw std::runtime_error(std::string(sql) + ": " + r.describe());
  }
  done = true;
  wait_caught_up(proxy());
}

class ReplicaRouting : public ::testing::Test {
 protected:
  void SetUp() override {
    ensure_schema();
    wait_caught_up(proxy());
  }
};

TEST_F(ReplicaRouting, PausedReplayReadYourWritesEventualAndCookie) {
  // Without writes, a session-consistency read may use the caught-up replica.
  PgConnection idle = connect(proxy());
  expect_replica(read(idle, item_read(1)), "a session without writes");

  ReplayPause pause(proxy());
  PgConnection writer = connect(proxy());
  const char* before = PQparameterStatus(writer.get(), "shardline.lsn");
  EXPECT_TRUE(before == nullptr || std::string(before).empty()) << "cookie before any write: " << (before ? before : "");
  exec_ok(writer, "INSERT INTO rr_items VALUES (1, 'written while replay is paused')");

  // The session reads its own write, which only the primary has.
  Read own = read(writer, item_read(1));
  EXPECT_EQ(own.value, "1") << "the writing session did not read its write";
  expect_primary(own, "the writer's own read");

  // Eventual: the (eligible, paused) replica answers and does not have the row yet.
  exec_ok(writer, "SET shardline.consistency = eventual");
  EXPECT_EQ(writer.value("SHOW shardline.consistency"), "eventual");
  Read eventual = read(writer, item_read(1));
  expect_replica(eventual, "an eventual read");
  EXPECT_EQ(eventual.value, "0") << "a paused replica cannot have the new row";
  // The same through a comment hint on a session-consistency connection without writes.
  Read hinted = read(idle, "/* shardline: consistency=eventual */ " + item_read(1));
  expect_replica(hinted, "a consistency=eventual hint");
  EXPECT_EQ(hinted.value, "0");
  exec_ok(writer, "RESET shardline.consistency");
  EXPECT_EQ(writer.value("SHOW shardline.consistency"), "global");

  // The version cookie: reported as ParameterStatus and by SHOW, naming shard s0.
  const char* reported = PQparameterStatus(writer.get(), "shardline.lsn");
  ASSERT_NE(reported, nullptr) << "no ParameterStatus shardline.lsn after a committed write";
  const std::string cookie = reported;
  EXPECT_EQ(cookie.rfind("1:s0@", 0), 0u) << cookie;
  EXPECT_EQ(writer.value("SHOW shardline.lsn"), cookie);
  EXPECT_GE(parse_lsn(cookie.substr(5)), parse_lsn(replica_row(proxy()).at("replay_lsn")));

  // Global (the default): a second connection sees the acknowledged write, from the primary.
  PgConnection other = connect(proxy());
  Read global = read(other, item_read(1));
  EXPECT_EQ(global.value, "1") << "a global read on another connection missed an acknowledged write";
  expect_primary(global, "a global read while the replica lags behind an acknowledged write");
  // Under session consistency a connection without the cookie may use the replica (and misses
  // the row): that is why the cookie exists. With it, the read goes to the primary.
  exec_ok(other, "SET shardline.consistency = session");
  Read blind = read(other, item_read(1));
  expect_replica(blind, "a second session-consistency connection without the cookie");
  EXPECT_EQ(blind.value, "0");
  exec_ok(other, fmt::format("SET shardline.read_after = '{}'", cookie));
  EXPECT_EQ(other.value("SHOW shardline.read_after"), cookie);
  Read with_cookie = read(other, item_read(1));
  EXPECT_EQ(with_cookie.value, "1") << "a connection holding the cookie did not read the write";
  expect_primary(with_cookie, "a read_after read while the replica lags");
  // Same through the comment hint on a third connection.
  PgConnection third = connect(proxy());
  exec_ok(third, "SET shardline.consistency = eventual");  // only the cookie keeps it exact
  Read hint_cookie = read(third, fmt::format("/* shardline: read_after='{}' */ {}", cookie, item_read(1)));
  EXPECT_EQ(hint_cookie.value, "1");
  expect_primary(hint_cookie, "a read_after hint while the replica lags");

  // Replay resumes: once the monitor sees the replica past the write, reads go there again.
  pause.resume();
  wait_caught_up(proxy());
  Read session_again = read(writer, item_read(1));
  EXPECT_EQ(session_again.value, "1");
  expect_replica(session_again, "the writer's read after catch-up");
  Read cookie_again = read(other, item_read(1));
  EXPECT_EQ(cookie_again.value, "1");
  expect_replica(cookie_again, "a read_after read after catch-up");
  exec_ok(other, "RESET shardline.read_after");
  EXPECT_EQ(other.value("SHOW shardline.read_after"), "");
}

// A client can only use the cookie of a write it was told about: the write's ParameterStatus
// must be there when the write's reply is (PostgreSQL sends ParameterStatus before
// ReadyForQuery), and SHOW shardline.lsn right after the write must already include it. The
// reference is the cookie after one more round trip, by which time the write's probe is done.
TEST_F(ReplicaRouting, CookieIsCurrentWhenTheWriteReturns) {
  // Several writers at once, as in any real application: on an idle machine the probe's answer
  // usually wins the race against the client's next message, under load it often does not.
  constexpr int kThreads = 4;
  constexpr int kWrites = 100;
  std::atomic<int> late_status{0}, late_show{0}, failures{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&] {
      PgConnection c(proxy().conninfo());
      for (int i = 0; i < kWrites && c.ok(); ++i) {
        PgResult w = c.exec("INSERT INTO rr_log DEFAULT VALUES");
        const char* at_reply = PQparameterStatus(c.get(), "shardline.lsn");
        const std::string reported = at_reply ? at_reply : "";
        PgResult show = c.exec("SHOW shardline.lsn");
        PgResult next = c.exec("SELECT 1");
        const char* settled = PQparameterStatus(c.get(), "shardline.lsn");
        if (!w.ok() || !show.ok() || show.rows() != 1 || !next.ok() || !settled) {
          ++failures;
          return;
        }
        if (reported != settled) ++late_status;
        if (show.value(0, 0) != settled) ++late_show;
      }
      if (!c.ok()) ++failures;
    });
  }
  for (auto& w : writers) w.join();
  std::printf("of %d writes: ParameterStatus not yet current at the reply %d, SHOW shardline.lsn stale %d\n",
              kThreads * kWrites, late_status.load(), late_show.load());
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(late_status.load(), 0) << "ParameterStatus shardline.lsn arrives after the write's ReadyForQuery";
  EXPECT_EQ(late_show.load(), 0) << "SHOW shardline.lsn right after a write does not include that write";
}

TEST_F(ReplicaRouting, TransactionsUseThePrimary) {
  PgConnection c = connect(proxy());
  exec_ok(c, "SET shardline.consistency = eventual");
  expect_replica(read(c, item_read(1)), "an autocommit eventual read");
  exec_ok(c, "BEGIN");
  expect_primary(read(c, item_read(1)), "a read inside BEGIN");
  exec_ok(c, "COMMIT");
  exec_ok(c, "BEGIN READ ONLY");
  expect_primary(read(c, item_read(1)), "a read inside BEGIN READ ONLY");
  exec_ok(c, "COMMIT");
  expect_primary(read(c, "SELECT note, pg_is_in_recovery(), inet_server_port() FROM rr_items WHERE id = 100 FOR UPDATE"),
                 "a locking read");
}

TEST_F(ReplicaRouting, ReadAfterWaitLetsTheReplicaCatchUpInsteadOfFallingBack) {
  // With a wait window, a session read right after its write waits for the replica to replay
  // the write (a lag-monitor round or two) and is then served there, never stale.
  static ProxyProcess waiting(ProxyConfig(cluster(), free_port())
                                  .replicas({.max_lag_ms = 60000, .poll_interval_ms = kPollMs, .read_after_wait_ms = 3000})
                                  .yaml());
  wait_caught_up(waiting);  // the monitor's first rounds: until then every read is the primary's
  PgConnection c = connect(waiting);
  int on_replica = 0;
  for (int i = 0; i < 5; ++i) {
    exec_ok(c, fmt::format("INSERT INTO rr_items (id, note) VALUES ({}, 'wait') ON CONFLICT (id) DO UPDATE SET note = 'wait'",
                           5000 + i));
    PgResult r = c.exec(fmt::format("SELECT count(*), pg_is_in_recovery(), inet_server_port() FROM rr_items WHERE id = {}",
                                    5000 + i));
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.value(0, 0), "1") << "the session's own write must be visible";
    if (r.value(0, 1) == "t") ++on_replica;
  }
  EXPECT_EQ(on_replica, 5) << "with read_after_wait_ms every read should have waited for the replica";
}

TEST_F(ReplicaRouting, BadSettingsAre22023) {
  PgConnection c = connect(proxy());
  for (const char* token : {"garbage", "1:s0", "1:s0@", "1:s0@zz/1", "1:s9@0/1000", "9:s0@0/1000", "1:s0@0/1000,"}) {
    PgResult r = c.exec(fmt::format("SET shardline.read_after = '{}'", token));
    EXPECT_EQ(r.status(), PGRES_FATAL_ERROR) << "read_after '" << token << "' was accepted";
    EXPECT_EQ(r.sqlstate(), "22023") << "read_after '" << token << "': " << r.describe();
  }
  PgResult r = c.exec("SET shardline.consistency = sometimes");
  EXPECT_EQ(r.sqlstate(), "22023") << r.describe();
  r = c.exec("SET shardline.consistency = ''");
  EXPECT_EQ(r.sqlstate(), "22023") << r.describe();
  // The refused settings changed nothing; the connection still works.
  EXPECT_EQ(c.value("SHOW shardline.consistency"), "global");
  EXPECT_EQ(c.value("SHOW shardline.read_after"), "");
  EXPECT_EQ(c.value("SELECT 41 + 1"), "42");
}

TEST_F(ReplicaRouting, SideEffectsGoToThePrimaryEvenWhenEventual) {
  PgConnection c = connect(proxy());
  exec_ok(c, "SET shardline.consistency = eventual");
  expect_replica(read(c, item_read(1)), "a plain eventual read (control)");
  for (int i = 1; i <= 3; ++i) {
    PgResult r = c.exec("SELECT nextval('rr_seq'), pg_is_in_recovery(), inet_server_port()");
    ASSERT_TRUE(r.ok()) << "nextval: " << r.describe();
    EXPECT_EQ(r.value(0, 0), std::to_string(i));
    EXPECT_EQ(r.value(0, 1), "f") << "nextval ran on a server in recovery";
    EXPECT_EQ(std::stoi(r.value(0, 2)), primary_port());
  }
  PgConnection direct(cluster().conninfo(0));
  const long logged = std::stol(direct.value("SELECT count(*) FROM rr_log"));
  PgResult r = c.exec("SELECT rr_touch(), pg_is_in_recovery(), inet_server_port()");
  ASSERT_TRUE(r.ok()) << "a volatile user function: " << r.describe();
  EXPECT_EQ(r.value(0, 1), "f");
  EXPECT_EQ(std::stoi(r.value(0, 2)), primary_port());
  EXPECT_EQ(std::stol(direct.value("SELECT count(*) FROM rr_log")), logged + 1)
      << "the user function's write did not land";
  // Also through the hint, on a session connection.
  PgConnection hinted = connect(proxy());
  PgResult h = hinted.exec("/* shardline: consistency=eventual */ SELECT nextval('rr_seq'), pg_is_in_recovery(), "
                           "inet_server_port()");
  ASSERT_TRUE(h.ok()) << h.describe();
  EXPECT_EQ(std::stoi(h.value(0, 2)), primary_port());
}

TEST_F(ReplicaRouting, ShowReplicasReportsLagAndReadsServed) {
  auto row = replica_row(proxy());
  EXPECT_EQ(row.at("shard"), "s0");
  EXPECT_EQ(row.at("replica"), "0");
  EXPECT_EQ(row.at("port"), std::to_string(replica_port()));
  EXPECT_EQ(row.at("state"), "eligible");
  const long served_before = std::stol(row.at("reads_served"));
  PgConnection c = connect(proxy());
  exec_ok(c, "SET shardline.consistency = eventual");
  constexpr int kReads = 25;
  for (int i = 0; i < kReads; ++i) expect_replica(read(c, item_read(1)), "an eventual read");
  const long served_after = std::stol(replica_row(proxy()).at("reads_served"));
  EXPECT_GE(served_after - served_before, kReads) << "reads_served did not count the replica reads";

  ReplayPause pause(proxy());
  PgConnection direct(cluster().conninfo(0));
  for (int i = 0; i < 3; ++i) exec_ok(direct, "INSERT INTO rr_log DEFAULT VALUES");
  auto first = wait_replica(
      proxy(), [](const auto& r) { return !r.at("lag_bytes").empty() && std::stol(r.at("lag_bytes")) > 0; },
      "lag_bytes > 0 while replay is paused");
  std::this_thread::sleep_for(300ms);
  auto second = replica_row(proxy());
  std::printf("SHOW REPLICAS paused: lag_bytes=%s lag_ms=%s, 300 ms later lag_ms=%s; reads_served %ld -> %ld\n",
              first.at("lag_bytes").c_str(), first.at("lag_ms").c_str(), second.at("lag_ms").c_str(), served_before,
              served_after);
  EXPECT_EQ(second.at("replay_paused"), "yes");
  ASSERT_FALSE(second.at("lag_ms").empty());
  EXPECT_GE(std::stol(second.at("lag_ms")), std::stol(first.at("lag_ms")) + 200) << "lag_ms does not grow";
  EXPECT_GE(std::stol(second.at("lag_bytes")), std::stol(first.at("lag_bytes")));
  EXPECT_EQ(second.at("state"), "eligible") << "max_lag_ms is 60000 and max_lag_bytes 16 MiB on this proxy";
}

/// A proxy whose limits make the paused replica ineligible: before the pause eventual reads use
/// the replica, once the monitor reports it lagging they all go to the primary, without errors.
void expect_lag_limit_excludes(const ReplicaSettings& limits, const std::string& what) {
  ProxyProcess limited(ProxyConfig(cluster(), free_port()).replicas(limits).yaml());
  wait_caught_up(limited);
  PgConnection c = connect(limited);
  exec_ok(c, "SET shardline.consistency = eventual");
  expect_replica(read(c, item_read(1)), what + ": an eventual read before the pause (control)");

  ReplayPause pause(limited);
  PgConnection direct(cluster().conninfo(0));
  exec_ok(direct, "INSERT INTO rr_log DEFAULT VALUES");
  auto row = wait_replica(limited, [](const auto& r) { return r.at("state") == "lagging"; }, what + ": state lagging");
  std::printf("%s: SHOW REPLICAS state=%s lag_bytes=%s lag_ms=%s\n", what.c_str(), row.at("state").c_str(),
              row.at("lag_bytes").c_str(), row.at("lag_ms").c_str());
  for (int i = 0; i < 20; ++i) expect_primary(read(c, item_read(1)), what + ": an eventual read while lagging");
  // A connection that never wrote and uses session consistency is refused the replica too.
  PgConnection fresh = connect(limited);
  expect_primary(read(fresh, item_read(1)), what + ": a session read while lagging");
  pause.resume();
  wait_caught_up(limited);
  expect_replica(read(c, item_read(1)), what + ": an eventual read after catch-up");
}

TEST_F(ReplicaRouting, BeyondMaxLagBytesGetsNoReads) {
  expect_lag_limit_excludes({.max_lag_bytes = 1, .max_lag_ms = 600000, .poll_interval_ms = kPollMs},
                            "max_lag_bytes 1");
}

TEST_F(ReplicaRouting, BeyondMaxLagMsGetsNoReads) {
  expect_lag_limit_excludes({.max_lag_bytes = std::int64_t(1) << 40, .max_lag_ms = 1, .poll_interval_ms = kPollMs},
                            "max_lag_ms 1");
}

TEST_F(ReplicaRouting, DeadReplicaMovesReadsToThePrimary) {
  PgConnection c = connect(proxy());
  exec_ok(c, "SET shardline.consistency = eventual");
  expect_replica(read(c, item_read(1)), "an eventual read before the replica stops (control)");

  cluster().stop_server(replica_server());
  struct Restart {
    bool needed = true;
    ~Restart() {
      if (needed) cluster().start_server(replica_server());
    }
  } restart;
  const auto stopped = Clock::now();
  // Within the poll interval a read may still pick the dead replica; count what the client saw.
  int early_errors = 0;
  std::string early_error;
  while (Clock::now() - stopped < std::chrono::milliseconds(10 * kPollMs)) {
    PgResult r = c.exec(item_read(1));
    if (!r.ok()) {
      ++early_errors;
      early_error = r.describe();
      if (PQstatus(c.get()) != CONNECTION_OK) break;
    }
  }
  std::printf("reads that failed within %d ms of the replica stopping: %d %s\n", 10 * kPollMs, early_errors,
              early_error.c_str());
  EXPECT_EQ(early_errors, 0) << "SPEC 7: when no replica qualifies the read goes to the primary, never an error";
  wait_replica(proxy(), [](const auto& r) { return r.at("state") == "unreachable"; }, "state unreachable");

  // After the poll interval: every read, on the old connection and on new ones, on the primary.
  if (PQstatus(c.get()) != CONNECTION_OK) {
    ADD_FAILURE() << "the proxy closed the client connection when the replica died";
    c = connect(proxy());
    exec_ok(c, "SET shardline.consistency = eventual");
  }
  for (int i = 0; i < 30; ++i) {
    PgResult r = c.exec(item_read(1));
    ASSERT_TRUE(r.ok()) << "read " << i << " after the replica died: " << r.describe();
    EXPECT_EQ(std::stoi(r.value(0, 2)), primary_port());
  }
  PgConnection fresh = connect(proxy());
  expect_primary(read(fresh, "/* shardline: consistency=eventual */ " + item_read(1)), "a new connection's read");

  cluster().start_server(replica_server());
  restart.needed = false;
  wait_caught_up(proxy());
  expect_replica(read(c, item_read(1)), "an eventual read after the replica restarted");
}

}  // namespace
