// The read-your-writes checker (SPEC section 7): 8 client threads each own a counter row and
// loop { UPDATE it to i (autocommit); read it back on the same connection (session
// consistency); read it on a second connection of the thread (eventual consistency, so only the
// cookie protects it) after SET shardline.read_after = the version cookie the proxy reported
// (ParameterStatus shardline.lsn) for that UPDATE; read it on a third connection with no cookie
// at the default, global, consistency }. Any read returning less than i is stale. Meanwhile a
// background thread pauses and resumes WAL replay on the replica every 200 ms, so the replica
// keeps falling behind and catching up and the proxy has to choose between it and the primary
// on every read. ctest runs it with the shards' synchronous_commit on and off.
//
// SHARDLINE_RYW_PAIRS overrides the number of write/read rounds (default 100000).

#include <libpq-fe.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <mutex>
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
using shardline::control::LocalCluster;
using shardline::testing::free_port;
using shardline::testing::PgConnection;
using shardline::testing::PgResult;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using Clock = std::chrono::steady_clock;

constexpr int kThreads = 8;
constexpr long kDefaultPairs = 100000;
/// Hard stop, so a proxy that slows to a crawl fails the test instead of hanging it.
constexpr auto kMaxRun = 300s;
constexpr auto kToggleEvery = 200ms;

LocalCluster& cluster() { return shardline::testing::test_cluster({.shards = 1, .replicas = 1}); }

long target_pairs() {
  const char* env = std::getenv("SHARDLINE_RYW_PAIRS");
  if (!env || !*env) return kDefaultPairs;
  const long n = std::strtol(env, nullptr, 10);
  if (n < 1) throw std::invalid_argument(fmt::format("SHARDLINE_RYW_PAIRS must be a positive integer, got '{}'", env));
  return n;
}

long reads_served(const ProxyProcess& p) {
  PgConnection admin(p.conninfo("app", "secret", "shardline"));
  PgResult r = admin.exec("SHOW REPLICAS");
  if (!r.ok() || r.rows() != 1) throw std::runtime_error("SHOW REPLICAS: " + r.describe());
  for (int c = 0; c < r.columns(); ++c)
    if (r.column_name(c) == "reads_served") return std::stol(r.value(0, c));
  throw std::runtime_error("SHOW REPLICAS has no reads_served column");
}

/// What all client threads found; counters only, plus the first few examples for the report.
struct Tally {
  std::atomic<long> pairs{0};
  std::atomic<long> session_replica{0};
  std::atomic<long> cookie_replica{0};
  std::atomic<long> global_replica{0};
  std::atomic<long> session_stale{0};
  std::atomic<long> cookie_stale{0};
  std::atomic<long> global_stale{0};
  std::atomic<long> cookie_not_updated{0};  ///< the cookie after an UPDATE was the one before it
  /// read_after reads that were stale although their cookie was the UPDATE's own (the same one
  /// the writer held after its next round trip, by which time the UPDATE's ParameterStatus,
  /// which the proxy sends before the reply to that round trip, has certainly arrived).
  std::atomic<long> stale_with_own_cookie{0};
  std::atomic<long> cookie_not_own{0};  ///< the cookie after the UPDATE was not the UPDATE's own
  std::atomic<long> errors{0};
  std::mutex mu;
  std::vector<std::string> examples;

  void note(const std::string& what) {
    std::lock_guard lock(mu);
    if (examples.size() < 10) examples.push_back(what);
  }
};

void client_thread(const ProxyProcess& proxy, int id, long target, Clock::time_point deadline, int replica_port,
                   Tally& t) {
  PgConnection writer(proxy.conninfo());
  PgConnection reader(proxy.conninfo());
  PgConnection global(proxy.conninfo());
  if (!writer.ok() || !reader.ok() || !global.ok()) {
    ++t.errors;
    t.note(fmt::format("thread {}: cannot connect: {}{}{}", id, writer.error(), reader.error(), global.error()));
    return;
  }
  for (auto [c, level] : {std::pair{&writer, "session"}, std::pair{&reader, "eventual"}}) {
    PgResult s = c->exec(fmt::format("SET shardline.consistency = {}", level));
    if (!s.ok()) {
      ++t.errors;
      t.note(fmt::format("thread {} SET shardline.consistency = {}: {}", id, level, s.describe()));
      return;
    }
  }
  const std::string select = fmt::format("SELECT v, inet_server_port() FROM ryw_counters WHERE id = {}", id);
  std::string last_cookie;   // what the writer's ParameterStatus said before this UPDATE
  std::string reader_after;  // what the reader's shardline.read_after is set to
  for (long i = 1; t.pairs.fetch_add(1) < target; ++i) {
    if (Clock::now() > deadline) {
      t.pairs.fetch_sub(1);
      return;
    }
    PgResult u = writer.exec(fmt::format("UPDATE ryw_counters SET v = {} WHERE id = {}", i, id));
    if (!u.ok() || u.cmd_tuples() != "1") {
      ++t.errors;
      t.note(fmt::format("thread {} UPDATE {}: {}", id, i, u.describe()));
      return;
    }
    const char* reported = PQparameterStatus(writer.get(), "shardline.lsn");
    const std::string cookie = reported ? reported : "";
    if (cookie == last_cookie) ++t.cookie_not_updated;
    bool own_cookie = false;  // known after the session read
    last_cookie = cookie;

    // Each read: the value must be i (nobody else writes this row), whoever answers.
    const auto check = [&](const PgConnection& c, const char* how, std::atomic<long>& stale,
                           std::atomic<long>& on_replica) {
      PgResult r = c.exec(select);
      if (!r.ok() || r.rows() != 1) {
        ++t.errors;
        t.note(fmt::format("thread {} {} read {}: {}", id, how, i, r.describe()));
        return false;
      }
      const long v = std::stol(r.value(0, 0));
      const int port = std::stoi(r.value(0, 1));
      if (port == replica_port) ++on_replica;
      if (v < i) {
        ++stale;
        if (own_cookie && &stale == &t.cookie_stale) ++t.stale_with_own_cookie;
        t.note(fmt::format("STALE thread {} {} read: wrote {}, read {} from port {} (cookie after the UPDATE '{}')",
                           id, how, i, v, port, cookie));
      } else if (v != i) {
        ++t.errors;
        t.note(fmt::format("thread {} {} read: wrote {}, read {} (from the future?)", id, how, i, v));
      }
      return true;
    };
    if (!check(writer, "session", t.session_stale, t.session_replica)) return;
    const char* later = PQparameterStatus(writer.get(), "shardline.lsn");
    own_cookie = later && cookie == later;
    if (!own_cookie) ++t.cookie_not_own;
    if (cookie != reader_after) {
      PgResult s = reader.exec(fmt::format("SET shardline.read_after = '{}'", cookie));
      if (!s.ok()) {
        ++t.errors;
        t.note(fmt::format("thread {} SET shardline.read_after = '{}': {}", id, cookie, s.describe()));
        return;
      }
      reader_after = cookie;
    }
    if (!check(reader, "read_after", t.cookie_stale, t.cookie_replica)) return;
    if (!check(global, "global", t.global_stale, t.global_replica)) return;
  }
  t.pairs.fetch_sub(1);  // the fetch_add that ended the loop did not start a round
}

TEST(ReadYourWrites, NoStaleReadsWhileTheReplicaLags) {
  LocalCluster& c = cluster();
  ProxyProcess proxy(ProxyConfig(c, free_port()).replicas({.poll_interval_ms = 10}).yaml());
  {
    PgConnection setup(proxy.conninfo());
    ASSERT_TRUE(setup.ok()) << setup.error();
    for (const std::string& sql :
         {std::string("DROP TABLE IF EXISTS ryw_counters"),
          std::string("CREATE TABLE ryw_counters (id int PRIMARY KEY, v bigint NOT NULL)"),
          fmt::format("INSERT INTO ryw_counters SELECT g, 0 FROM generate_series(0, {}) g", kThreads - 1)}) {
      PgResult r = setup.exec(sql);
      ASSERT_TRUE(r.ok()) << sql << ": " << r.describe();
    }
  }
  // The table must exist on the replica before reads may go there: wait for an eventual read
  // to find the rows.
  {
    PgConnection probe(proxy.conninfo());
    const auto until = Clock::now() + 15s;
    for (;;) {
      PgResult r = probe.exec("/* shardline: consistency=eventual */ SELECT count(*) FROM ryw_counters");
      if (r.ok() && r.value(0, 0) == std::to_string(kThreads)) break;
      ASSERT_LT(Clock::now(), until) << "the table never showed up through eventual reads: " << r.describe();
      std::this_thread::sleep_for(20ms);
    }
  }

  const long target = target_pairs();
  const long served_before = reads_served(proxy);
  Tally tally;
  std::atomic<bool> stop{false};
  std::atomic<long> toggles{0};
  std::string toggle_error;
  std::thread toggler([&] {
    PgConnection su(c.superuser_conninfo(0, 0));
    if (!su.ok()) {
      toggle_error = su.error();
      return;
    }
    bool paused = false;
    while (!stop.load()) {
      PgResult r = su.exec(paused ? "SELECT pg_wal_replay_resume()" : "SELECT pg_wal_replay_pause()");
      if (!r.ok()) {
        toggle_error = r.describe();
        return;
      }
      paused = !paused;
      ++toggles;
      std::this_thread::sleep_for(kToggleEvery);
    }
    if (paused) {
      PgResult r = su.exec("SELECT pg_wal_replay_resume()");
      if (!r.ok()) toggle_error = r.describe();
    }
  });

  const auto start = Clock::now();
  std::vector<std::thread> clients;
  for (int id = 0; id < kThreads; ++id)
    clients.emplace_back(client_thread, std::cref(proxy), id, target, start + kMaxRun, int(c.replica_port(0, 0)),
                         std::ref(tally));
  for (auto& th : clients) th.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  stop = true;
  toggler.join();
  const long served_after = reads_served(proxy);

  const long pairs = tally.pairs.load();
  const long reads = 3 * pairs;
  const long replica_reads = tally.session_replica + tally.cookie_replica + tally.global_replica;
  const char* sync_commit = std::getenv("SHARDLINE_TEST_SYNCHRONOUS_COMMIT");
  std::printf("read-your-writes (synchronous_commit = %s): %ld write/read rounds (%ld writes, %ld reads) by %d "
              "threads in %.1f s (%.0f rounds/s)\n",
              sync_commit && *sync_commit ? sync_commit : "on", pairs, pairs, reads, kThreads, seconds,
              pairs / seconds);
  std::printf("  replay pause/resume toggles: %ld\n", toggles.load());
  const auto pct = [&](long n) { return pairs ? 100.0 * double(n) / double(pairs) : 0.0; };
  std::printf("  reads served by the replica: %ld of %ld: session %ld (%.2f%%), read_after %ld (%.2f%%), "
              "global %ld (%.2f%%); SHOW REPLICAS reads_served %ld -> %ld (+%ld)\n",
              replica_reads, reads, tally.session_replica.load(), pct(tally.session_replica),
              tally.cookie_replica.load(), pct(tally.cookie_replica), tally.global_replica.load(),
              pct(tally.global_replica), served_before, served_after, served_after - served_before);
  std::printf("  stale reads: session %ld, read_after %ld (%ld of these with the UPDATE's own cookie), global %ld\n",
              tally.session_stale.load(), tally.cookie_stale.load(), tally.stale_with_own_cookie.load(),
              tally.global_stale.load());
  std::printf("  PQparameterStatus(shardline.lsn) right after the UPDATE: unchanged %ld, not the UPDATE's own "
              "cookie %ld, of %ld\n",
              tally.cookie_not_updated.load(), tally.cookie_not_own.load(), pairs);
  for (const auto& e : tally.examples) std::printf("  %s\n", e.c_str());

  EXPECT_TRUE(toggle_error.empty()) << "replay toggler: " << toggle_error;
  EXPECT_GE(toggles.load(), 2) << "replay was never paused and resumed";
  EXPECT_EQ(tally.errors.load(), 0);
  EXPECT_EQ(pairs, target) << "only " << pairs << " rounds fit in " << kMaxRun.count() << " s";
  EXPECT_EQ(tally.session_stale.load(), 0) << "session reads returned a value older than the session's own write";
  EXPECT_EQ(tally.cookie_stale.load(), 0) << "read_after reads returned a value older than the cookie's write";
  EXPECT_EQ(tally.global_stale.load(), 0) << "global reads on another connection missed an acknowledged write";
  EXPECT_EQ(tally.cookie_not_updated.load(), 0) << "a write's cookie named the previous write's position";
  EXPECT_GE(served_after - served_before, replica_reads) << "SHOW REPLICAS reads_served missed replica reads";
}

}  // namespace
