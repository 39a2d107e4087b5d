// The replica lag monitor against real streaming replicas: zero lag on an idle primary (where
// now() - pg_last_xact_replay_timestamp() keeps growing), growing lag while replay is paused and
// its return to zero on resume, primary samples that bound every commit acknowledged before
// them (asynchronous commit included), a stopped replica taken out at once and back after a
// restart, a silent one taken out after the health timeout (not before), no healthy node ever
// reported unusable while CPU hogs load the machine, servers that hang or refuse costing the
// others nothing, a prompt stop(), and a promoted replica never used as a replica again.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>

#include "config/loader.hpp"
#include "proxy/control/lag_monitor.hpp"
#include "proxy/control/lsn.hpp"
#include "proxy/control/replica_state.hpp"
#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using shardline::control::kUnknownLag;
using shardline::control::LagMonitor;
using shardline::control::LocalCluster;
using shardline::control::LocalClusterOptions;
using shardline::control::Lsn;
using shardline::control::ReplicaSnapshot;
using shardline::control::ReplicaStatus;
using shardline::control::ServerInfo;
using shardline::testing::PgConnection;
using shardline::testing::test_cluster;
using Snapshot = std::shared_ptr<const ReplicaSnapshot>;
using Clock = std::chrono::steady_clock;

constexpr int kPollMs = 50;

LocalCluster& cluster() { return test_cluster({.shards = 1, .replicas = 1}); }

shardline::config::Config config_of(const LocalCluster& c) {
  auto loaded = shardline::config::parse_config(c.config_yaml(shardline::testing::free_port()), "lag_monitor_test.yaml");
  if (!loaded.ok()) throw std::runtime_error("the cluster's config does not load");
  loaded.config->replicas.poll_interval_ms = kPollMs;
  return *loaded.config;
}

const ServerInfo& replica_server(const LocalCluster& c) {
  for (const auto& s : c.servers())
    if (!s.is_primary()) return s;
  throw std::runtime_error("the cluster has no replica");
}

void exec(const std::string& conninfo, const std::string& sql) {
  PgConnection c(conninfo);
  if (!c.ok()) throw std::runtime_error("cannot connect: " + c.error());
  const auto r = c.exec(sql);
  if (!r.ok()) throw std::runtime_error(sql + ": " + r.describe());
}

long long ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

/// A monitor plus everything it published, for the test thread to wait on.
class Watched {
 public:
  explicit Watched(shardline::config::Config cfg)
      : monitor_(std::move(cfg), [this](Snapshot s) {
          {
            std::lock_guard lock(mu_);
            all_.push_back(std::move(s));
          }
          cv_.notify_all();
        }) {
    monitor_.start();
  }

  LagMonitor& monitor() { return monitor_; }

  /// The first snapshot published from now on that satisfies `pred`, or nullptr after `timeout`.
  Snapshot wait_for(const std::function<bool(const ReplicaSnapshot&)>& pred, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    std::size_t seen = all_.size();
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      for (; seen < all_.size(); ++seen)
        if (pred(*all_[seen])) return all_[seen];
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && seen == all_.size()) return nullptr;
    }
  }
  std::size_t count() {
    std::lock_guard lock(mu_);
    return all_.size();
  }
  std::vector<Snapshot> since(std::size_t from) {
    std::lock_guard lock(mu_);
    return {all_.begin() + static_cast<std::ptrdiff_t>(std::min(from, all_.size())), all_.end()};
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Snapshot> all_;
  LagMonitor monitor_;  ///< last: stopped (joined) before the inbox above goes away
};

const ReplicaStatus& replica0(const ReplicaSnapshot& s) {
  const ReplicaStatus* r = s.find("s0", 0);
  if (r == nullptr) throw std::runtime_error("no s0 replica 0 in the snapshot");
  return *r;
}

bool caught_up(const ReplicaSnapshot& s) {
  const auto& r = replica0(s);
  return r.healthy() && r.lag_bytes == 0 && r.lag_ms < 2 * kPollMs;
}

std::string describe(const ReplicaStatus& r) {
  return "reachable=" + std::to_string(r.reachable) + " in_recovery=" + std::to_string(r.in_recovery) +
         " paused=" + std::to_string(r.replay_paused) + " replay=" + r.replay_lsn.str() +
         " lag_bytes=" + std::to_string(r.lag_bytes) + " lag_ms=" + std::to_string(r.lag_ms) + " error=" + r.error;
}

TEST(LagMonitor, IdleReplicaHasZeroLagWhileItsLastReplayedCommitAges) {
  LocalCluster& c = cluster();
  exec(c.conninfo(0), "CREATE TABLE IF NOT EXISTS lag_probe (n int)");
  exec(c.conninfo(0), "INSERT INTO lag_probe VALUES (1)");
  Watched w(config_of(c));
  ASSERT_TRUE(w.wait_for(caught_up, 5s)) << "the replica never caught up";
  const std::size_t before = w.count();
  std::this_thread::sleep_for(2s);
  const std::size_t rounds = w.count() - before;
  std::printf("rounds in 2 s of idling at %d ms: %zu\n", kPollMs, rounds);
  EXPECT_GE(rounds, 2000u / kPollMs / 2);  // the monitor keeps its pace (loaded machines included)
  EXPECT_LE(rounds, 2000u / kPollMs + 2);

  const Snapshot s = w.wait_for(caught_up, 1s);
  ASSERT_TRUE(s) << describe(replica0(*w.monitor().latest()));
  const ReplicaStatus& r = replica0(*s);
  EXPECT_TRUE(r.reachable);
  EXPECT_TRUE(r.in_recovery);
  EXPECT_FALSE(r.replay_paused);
  EXPECT_FALSE(r.promoted);
  EXPECT_TRUE(r.error.empty()) << r.error;
  EXPECT_EQ(r.lag_bytes, 0);
  EXPECT_LT(r.lag_ms, 2 * kPollMs);
  EXPECT_EQ(r.endpoint.port, replica_server(c).port);
  ASSERT_TRUE(s->primary("s0"));
  // Compared with the insert position, which on an idle shard may sit a page header past the
  // replica's replay position (the end of the last record).
  EXPECT_GE(r.replayed_lsn, *s->primary("s0"));
  EXPECT_GE(r.replayed_lsn, r.replay_lsn);
  EXPECT_LE(r.replayed_lsn.value() - r.replay_lsn.value(), 40u);
  std::printf("idle: primary insert %s, replica replay %s, replayed %s\n", s->primary("s0")->str().c_str(),
              r.replay_lsn.str().c_str(), r.replayed_lsn.str().c_str());
  EXPECT_GT(s->generation, before);
  // What the naive measure would have said: the last replayed commit is seconds old.
  ASSERT_TRUE(r.last_xact_replay);
  const auto naive = std::chrono::system_clock::now() - *r.last_xact_replay;
  std::printf("idle: lag_ms=%lld, now - pg_last_xact_replay_timestamp() = %lld ms\n",
              static_cast<long long>(r.lag_ms),
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(naive).count()));
  EXPECT_GT(naive, 1900ms);
  EXPECT_LT(std::chrono::system_clock::now() - r.sampled_at, 1s);
}

TEST(LagMonitor, AfterAWalSwitchTheCaughtUpReplicaOfAnIdleShardShowsNoLag) {
  // pg_switch_wal() ends the segment: the replica's replay position is then the next segment's
  // first byte, while the idle primary's insert position stays 40 bytes further on, past that
  // segment's long page header, until something else is written.
  LocalCluster& c = cluster();
  exec(c.conninfo(0), "CREATE TABLE IF NOT EXISTS lag_probe (n int)");
  Watched w(config_of(c));
  ASSERT_TRUE(w.wait_for(caught_up, 5s));
  constexpr std::uint64_t kSegment = 16ull * 1024 * 1024;  // initdb's default, as the fixture uses
  Snapshot seen;
  for (int attempt = 0; attempt < 3 && !seen; ++attempt) {
    exec(c.conninfo(0), "INSERT INTO lag_probe VALUES (5)");  // a switch needs something to end
    exec(c.superuser_conninfo(0), "SELECT pg_switch_wal()");
    // A background record (a standby snapshot, a checkpoint) may move the primary on; then try again.
    seen = w.wait_for(
        [](const ReplicaSnapshot& x) {
          const auto& r = replica0(x);
          return caught_up(x) && r.replay_lsn.value() % kSegment == 0 && x.primary("s0") &&
                 x.primary("s0")->value() == r.replay_lsn.value() + 40;
        },
        3s);
  }
  ASSERT_TRUE(seen) << describe(replica0(*w.monitor().latest()));
  const ReplicaStatus& r = replica0(*seen);
  std::printf("after pg_switch_wal: primary insert %s, replica replay %s, replayed %s, lag %lld bytes %lld ms\n",
              seen->primary("s0")->str().c_str(), r.replay_lsn.str().c_str(), r.replayed_lsn.str().c_str(),
              static_cast<long long>(r.lag_bytes), static_cast<long long>(r.lag_ms));
  EXPECT_EQ(r.replayed_lsn, *seen->primary("s0"));
  EXPECT_EQ(r.lag_bytes, 0);
  // And it stays caught up while the shard idles.
  const std::size_t from = w.count();
  std::this_thread::sleep_for(500ms);
  for (const auto& x : w.since(from)) {
    if (x->primary("s0") != seen->primary("s0")) break;  // something was written after all
    EXPECT_TRUE(caught_up(*x)) << describe(replica0(*x));
  }
}

/// Resumes replay on the replica whatever happens to the test.
struct ResumeReplay {
  ~ResumeReplay() {
    try {
      exec(conninfo, "SELECT pg_wal_replay_resume()");
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
  }
  std::string conninfo;
};

TEST(LagMonitor, PausedReplayShowsGrowingLagAndResumeBringsItBackToZero) {
  LocalCluster& c = cluster();
  exec(c.conninfo(0), "CREATE TABLE IF NOT EXISTS lag_probe (n int)");
  Watched w(config_of(c));
  ASSERT_TRUE(w.wait_for(caught_up, 5s));
  {
    ResumeReplay guard{c.superuser_conninfo(0, 0)};
    exec(guard.conninfo, "SELECT pg_wal_replay_pause()");
    exec(c.conninfo(0), "INSERT INTO lag_probe SELECT generate_series(1, 1000)");
    const auto written = Clock::now();
    const std::size_t from = w.count();
    const Snapshot s = w.wait_for([](const ReplicaSnapshot& x) { return replica0(x).lag_ms > 500; }, 5s);
    ASSERT_TRUE(s) << describe(replica0(*w.monitor().latest()));
    const ReplicaStatus& r = replica0(*s);
    std::printf("paused: lag_ms=%lld lag_bytes=%lld after %lld ms\n", static_cast<long long>(r.lag_ms),
                static_cast<long long>(r.lag_bytes), ms_since(written));
    EXPECT_TRUE(r.reachable);
    EXPECT_TRUE(r.in_recovery);
    EXPECT_TRUE(r.replay_paused);
    EXPECT_GT(r.lag_bytes, 0);
    EXPECT_NE(r.lag_bytes, kUnknownLag);
    ASSERT_TRUE(s->primary("s0"));
    EXPECT_EQ(r.lag_bytes, static_cast<std::int64_t>(s->primary("s0")->value() - r.replayed_lsn.value()));
    // Never more than the time since the write plus one sampling interval.
    EXPECT_LE(r.lag_ms, ms_since(written) + 2 * kPollMs);
    // The lag grew round after round: the replay position stood still while time went on.
    std::int64_t previous = -1;
    for (const auto& x : w.since(from)) {
      const auto& y = replica0(*x);
      if (!y.reachable || y.lag_bytes == 0) continue;
      EXPECT_GE(y.lag_ms, previous);
      EXPECT_EQ(y.replay_lsn, r.replay_lsn);
      previous = y.lag_ms;
    }
  }
  const auto resumed = Clock::now();
  const Snapshot back = w.wait_for(caught_up, 1s);
  ASSERT_TRUE(back) << describe(replica0(*w.monitor().latest()));
  std::printf("resume: lag back to 0 after %lld ms\n", ms_since(resumed));
  EXPECT_FALSE(replica0(*back).replay_paused);
}

TEST(LagMonitor, StoppedReplicaIsTakenOutAtOnceAndComesBack) {
  LocalCluster& c = cluster();
  const ServerInfo replica = replica_server(c);
  Watched w(config_of(c));
  ASSERT_TRUE(w.wait_for(caught_up, 5s));
  c.stop_server(replica);
  const auto stopped = Clock::now();
  const auto unreachable = [](const ReplicaSnapshot& x) { return !replica0(x).reachable; };
  Snapshot down = w.monitor().latest();
  if (!unreachable(*down)) down = w.wait_for(unreachable, 5s);
  const auto took = ms_since(stopped);
  ASSERT_TRUE(down) << "the stopped replica was never published unreachable";
  std::printf("stopped replica unreachable %lld ms after pg_ctl stop returned\n", took);
  // Its connection broke: that takes it out at once, without waiting for the health timeout.
  EXPECT_LE(took, w.monitor().health_timeout().count() + kPollMs);
  const ReplicaStatus& r = replica0(*down);
  EXPECT_FALSE(r.healthy());
  EXPECT_EQ(r.lag_bytes, kUnknownLag);
  EXPECT_EQ(r.lag_ms, kUnknownLag);
  EXPECT_FALSE(r.error.empty());
  std::printf("error: %s\n", r.error.c_str());

  // The primary is still sampled at the usual pace while the replica is down.
  const std::size_t from = w.count();
  std::this_thread::sleep_for(1s);
  const auto during = w.since(from);
  EXPECT_GE(during.size(), 1000u / kPollMs / 2);
  for (const auto& x : during) {
    EXPECT_FALSE(replica0(*x).reachable);
    EXPECT_TRUE(x->primary("s0"));
  }

  c.start_server(replica);
  const auto started = Clock::now();
  const Snapshot up = w.wait_for([](const ReplicaSnapshot& x) { return replica0(x).healthy(); }, 5s);
  ASSERT_TRUE(up) << describe(replica0(*w.monitor().latest()));
  std::printf("restarted replica healthy %lld ms after pg_ctl start returned\n", ms_since(started));
  EXPECT_TRUE(replica0(*up).in_recovery);
  EXPECT_TRUE(w.wait_for(caught_up, 5s));
}

TEST(LagMonitor, WithoutItsPrimaryAReplicaLagGrowsInsteadOfLookingCurrent) {
  LocalCluster& c = cluster();
  const ServerInfo& primary = c.servers().front();
  ASSERT_TRUE(primary.is_primary());
  Watched w(config_of(c));
  ASSERT_TRUE(w.wait_for(caught_up, 5s));
  c.stop_server(primary);
  const auto stopped = Clock::now();
  // The replica still answers, but nobody knows where the primary is now: it must not keep
  // reporting zero lag, or reads would go on being served from it with no bound on staleness.
  const Snapshot s = w.wait_for([](const ReplicaSnapshot& x) { return replica0(x).lag_ms > 300; }, 3s);
  ASSERT_TRUE(s) << describe(replica0(*w.monitor().latest()));
  const ReplicaStatus& r = replica0(*s);
  std::printf("primary down %lld ms: replica %s\n", ms_since(stopped), describe(r).c_str());
  EXPECT_TRUE(r.reachable);
  EXPECT_TRUE(r.in_recovery);
  EXPECT_EQ(r.lag_bytes, 0);
  EXPECT_LE(r.lag_ms, ms_since(stopped) + 2 * kPollMs + 500);  // pg_ctl stop itself takes a while
  c.start_server(primary);
  const auto started = Clock::now();
  // The replica's walreceiver retries every wal_retrieve_retry_interval (5 s by default).
  ASSERT_TRUE(w.wait_for(caught_up, 15s)) << describe(replica0(*w.monitor().latest()));
  std::printf("primary back: replica caught up %lld ms after pg_ctl start returned\n", ms_since(started));
}

/// Freezes one server process with SIGSTOP; SIGCONT when it goes out of scope.
struct Frozen {
  explicit Frozen(int pid) : pid(pid) {
    if (::kill(pid, SIGSTOP) != 0) throw std::runtime_error("cannot SIGSTOP " + std::to_string(pid));
  }
  ~Frozen() { ::kill(pid, SIGCONT); }
  int pid;
};

/// The pid of the newest backend of the monitor's connections on the shard's replica.
int monitor_backend_pid(const PgConnection& su) {
  return std::stoi(su.value(
      "SELECT pid FROM pg_stat_activity WHERE application_name = 'shardline-control' ORDER BY backend_start DESC LIMIT 1"));
}

/// Freezes the monitor's backend on the replica and returns how long after the freeze the first
/// snapshot showed the replica out. Until then the replica stays in, its figures from its last
/// answer and never lower than they were.
long long freeze_until_out(Watched& w, const LocalCluster& c) {
  PgConnection su(c.superuser_conninfo(0, 0));
  if (!su.ok()) throw std::runtime_error(su.error());
  const int pid = monitor_backend_pid(su);
  const auto timeout = w.monitor().health_timeout();
  Frozen frozen(pid);  // its next probe gets no answer
  const auto t0 = Clock::now();
  const std::size_t from = w.count();
  const Snapshot out = w.wait_for([](const ReplicaSnapshot& x) { return !replica0(x).reachable; }, timeout + 5s);
  const auto took = ms_since(t0);
  EXPECT_TRUE(out) << describe(replica0(*w.monitor().latest()));
  if (!out) return took;
  std::printf("frozen backend: replica out after %lld ms (health timeout %lld ms): %s\n", took,
              static_cast<long long>(timeout.count()), replica0(*out).error.c_str());
  EXPECT_NE(replica0(*out).error.find("no answer within"), std::string::npos) << replica0(*out).error;
  EXPECT_EQ(replica0(*out).lag_ms, kUnknownLag);
  // Before that the replica was late, not out: reachable, its lag figures only growing.
  int late_rounds = 0;
  std::int64_t previous_ms = -1;
  for (const auto& x : w.since(from)) {
    if (x == out) break;
    const auto& y = replica0(*x);
    EXPECT_TRUE(y.healthy()) << describe(y);
    if (y.unanswered_rounds == 0) continue;
    ++late_rounds;
    EXPECT_GE(y.lag_ms, previous_ms);
    previous_ms = y.lag_ms;
  }
  std::printf("frozen backend: %d rounds published late (unanswered) before the replica was taken out\n", late_rounds);
  EXPECT_GT(late_rounds, 0);
  return took;
}

TEST(LagMonitor, ASilentReplicaIsOutAfterTheHealthTimeoutNotBeforeAndItsConnectionIsReplaced) {
  LocalCluster& c = cluster();
  Watched w(config_of(c));
  ASSERT_EQ(w.monitor().health_timeout(), 1000ms);  // the default: max(1000 ms, 3 x 50 ms)
  ASSERT_TRUE(w.wait_for(caught_up, 5s));
  PgConnection su(c.superuser_conninfo(0, 0));
  ASSERT_TRUE(su.ok()) << su.error();
  const int pid = monitor_backend_pid(su);
  const auto t0 = Clock::now();
  const long long took = freeze_until_out(w, c);
  // The probe left at most one poll interval after the freeze and is judged once per round.
  EXPECT_GE(took, w.monitor().health_timeout().count() - 2 * kPollMs);
  EXPECT_LE(took, w.monitor().health_timeout().count() + 2 * kPollMs + 100);
  // The monitor gave up on that connection and opens a new one, which a fresh backend serves:
  // the replica is back although the old backend was frozen until a moment ago.
  const Snapshot back = w.wait_for(caught_up, 5s);
  ASSERT_TRUE(back) << describe(replica0(*w.monitor().latest()));
  std::printf("frozen backend: replica healthy again over a new connection after %lld ms\n", ms_since(t0));
  EXPECT_NE(monitor_backend_pid(su), pid);
}

TEST(LagMonitor, APrimarySampleBoundsEveryCommitAcknowledgedBeforeItsProbeWasSent) {
  LocalCluster& c = cluster();
  exec(c.conninfo(0), "CREATE TABLE IF NOT EXISTS lag_probe (n int)");
  Watched w(config_of(c));
  ASSERT_TRUE(w.wait_for(caught_up, 5s));
  PgConnection writer(c.conninfo(0));
  ASSERT_TRUE(writer.ok()) << writer.error();
  // Asynchronous commit: acknowledged once its record is inserted, before it is written.
  ASSERT_TRUE(writer.exec("SET synchronous_commit = off").ok());
  int unwritten = 0;
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(writer.exec("INSERT INTO lag_probe VALUES (3)").ok());
    // At or past the end of the commit record just acknowledged.
    const auto positions = writer.exec("SELECT pg_current_wal_insert_lsn(), pg_current_wal_lsn()");
    ASSERT_TRUE(positions.ok()) << positions.describe();
    const auto after = Clock::now();
    const Lsn inserted = *Lsn::parse(positions.value(0, 0));
    if (*Lsn::parse(positions.value(0, 1)) < inserted) ++unwritten;
    const Snapshot s = w.wait_for(
        [&](const ReplicaSnapshot& x) {
          const auto* p = x.primary_sample("s0");
          return p != nullptr && p->sent_at > after;
        },
        5s);
    ASSERT_TRUE(s) << "no primary sample sent after the commit";
    EXPECT_GE(s->primary_sample("s0")->insert_lsn, inserted) << "commit " << i;
    EXPECT_EQ(s->primary("s0"), s->primary_sample("s0")->insert_lsn);
  }
  std::printf("asynchronous commits whose write position still lagged the insert position: %d of 20\n", unwritten);
  // The replica replays them and then shows no lag against the insert position.
  ASSERT_TRUE(w.wait_for(caught_up, 5s)) << describe(replica0(*w.monitor().latest()));
}

/// Busy-looping child processes that keep every core busy; each dies on its own after `bound`
/// (SIGALRM) should the test never get to kill it, and all are killed and reaped at scope exit.
class CpuHogs {
 public:
  CpuHogs(int n, std::chrono::seconds bound) {
    for (int i = 0; i < n; ++i) {
      const pid_t pid = ::fork();
      if (pid < 0) throw std::runtime_error("fork failed");
      if (pid == 0) {
        ::alarm(static_cast<unsigned>(bound.count()));
        volatile unsigned long spin = 0;
        for (;;) spin = spin + 1;
      }
      pids_.push_back(pid);
    }
  }
  ~CpuHogs() {
    for (const pid_t pid : pids_) ::kill(pid, SIGKILL);
    for (const pid_t pid : pids_) ::waitpid(pid, nullptr, 0);
  }
  CpuHogs(const CpuHogs&) = delete;
  CpuHogs& operator=(const CpuHogs&) = delete;

 private:
  std::vector<pid_t> pids_;
};

/// Every message logged while it exists (through the default logger).
class CapturedLog {
 public:
  CapturedLog() : sink_(std::make_shared<Sink>()) { spdlog::default_logger()->sinks().push_back(sink_); }
  ~CapturedLog() {
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  std::vector<std::string> lines() const { return sink_->lines(); }

 private:
  class Sink : public spdlog::sinks::base_sink<std::mutex> {
   public:
    std::vector<std::string> lines() {
      std::lock_guard lock(mutex_);
      return lines_;
    }

   protected:
    void sink_it_(const spdlog::details::log_msg& msg) override { lines_.emplace_back(msg.payload.data(), msg.payload.size()); }
    void flush_() override {}

   private:
    std::vector<std::string> lines_;
  };
  std::shared_ptr<Sink> sink_;
};

/// Makes processes slow but not dead: stops them for `stopped`, lets them run for `running`, over
/// and over on its own thread; they run again when it goes out of scope.
class Stutter {
 public:
  Stutter(std::vector<int> pids, std::chrono::milliseconds stopped, std::chrono::milliseconds running)
      : pids_(std::move(pids)), thread_([this, stopped, running] {
          while (!done_.load()) {
            for (const int pid : pids_) ::kill(pid, SIGSTOP);
            std::this_thread::sleep_for(stopped);
            for (const int pid : pids_) ::kill(pid, SIGCONT);
            ++cycles_;
            std::this_thread::sleep_for(running);
          }
        }) {}
  ~Stutter() {
    done_.store(true);
    thread_.join();
    for (const int pid : pids_) ::kill(pid, SIGCONT);
  }
  int cycles() const { return cycles_.load(); }

 private:
  std::vector<int> pids_;
  std::atomic<bool> done_{false};
  std::atomic<int> cycles_{0};
  std::thread thread_;
};

TEST(LagMonitor, UnderACpuHogNoHealthyNodeIsEverReportedUnusableAndASilentOneStillIs) {
  LocalCluster& c = cluster();
  exec(c.conninfo(0), "CREATE TABLE IF NOT EXISTS lag_probe (n int)");
  CapturedLog log;  // before the monitor starts, so its thread never races the sink list
  auto w = std::make_unique<Watched>(config_of(c));
  ASSERT_TRUE(w->wait_for(caught_up, 5s)) << describe(replica0(*w->monitor().latest()));
  const auto timeout = w->monitor().health_timeout();
  const std::size_t from = w->count();
  const std::size_t log_from = log.lines().size();
  std::vector<Snapshot> during;
  std::vector<std::string> logged;
  long long took = 0;
  int stutter_cycles = 0;
  {
    const int n = 2 * static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
    CpuHogs hogs(std::min(n, 4), 40s);
    // A writer keeps the primary's insert position moving, so lag is measured under load too.
    std::atomic<bool> done{false};
    std::thread writer([&] {
      PgConnection p(c.conninfo(0));
      while (!done.load()) {
        (void)p.exec("INSERT INTO lag_probe VALUES (4)");
        std::this_thread::sleep_for(100ms);
      }
    });
    // However the scheduler treats the hogs, the monitor's own backends on the primary and the
    // replica are made slow for sure: 300 ms without an answer (six poll intervals, well within
    // the health timeout), then 200 ms of service, over and over.
    PgConnection primary_su(c.superuser_conninfo(0));
    PgConnection replica_su(c.superuser_conninfo(0, 0));
    ASSERT_TRUE(primary_su.ok() && replica_su.ok()) << primary_su.error() << replica_su.error();
    {
      Stutter slow({monitor_backend_pid(primary_su), monitor_backend_pid(replica_su)}, 300ms, 200ms);
      std::this_thread::sleep_for(29s);
      stutter_cycles = slow.cycles();
    }
    done.store(true);
    writer.join();
    during = w->since(from);
    const auto all = log.lines();
    logged.assign(all.begin() + static_cast<std::ptrdiff_t>(log_from), all.end());
    // Still under the hog: a replica that stops answering is still taken out in time.
    took = freeze_until_out(*w, c);
  }
  w.reset();

  int transitions = 0;
  int late = 0;
  int primary_late = 0;
  int max_unanswered = 0;
  std::int64_t max_lag_ms = 0;
  bool was_healthy = true;  // caught up when the hog started
  std::optional<Clock::time_point> last_sent;
  std::int64_t previous_lag_ms = 0;
  for (const auto& x : during) {
    const ReplicaStatus& r = replica0(*x);
    if (was_healthy && !r.healthy()) {
      ++transitions;
      ADD_FAILURE() << "round " << x->generation << ": the healthy replica was reported unusable: " << describe(r);
    }
    was_healthy = r.healthy();
    // While unanswered, the replica's figures come from its last answer and only grow.
    if (r.unanswered_rounds > 0 && r.healthy()) {
      ++late;
      EXPECT_GE(r.lag_ms, previous_lag_ms) << "round " << x->generation;
    }
    previous_lag_ms = r.lag_ms;
    max_unanswered = std::max(max_unanswered, r.unanswered_rounds);
    if (r.lag_ms != kUnknownLag) max_lag_ms = std::max(max_lag_ms, r.lag_ms);
    const auto* p = x->primary_sample("s0");
    ASSERT_NE(p, nullptr);
    if (last_sent && p->sent_at == *last_sent) ++primary_late;
    last_sent = p->sent_at;
  }
  int transitions_logged = 0;
  for (const auto& line : logged) {
    if (line.find("lag monitor:") == std::string::npos) continue;
    if (line.find("not usable") != std::string::npos || line.find("is slow") != std::string::npos ||
        line.find("healthy again") != std::string::npos) {
      ++transitions_logged;
      ADD_FAILURE() << "logged under the hog: " << line;
    }
  }
  std::printf("CPU hog 29 s, %d freeze cycles: %zu rounds, replica late (unanswered) in %d of them (at most %d in a "
              "row), primary late in %d, max lag %lld ms; healthy->unusable transitions: %d in snapshots, %d in the "
              "log\n",
              stutter_cycles, during.size(), late, max_unanswered, primary_late, static_cast<long long>(max_lag_ms),
              transitions, transitions_logged);
  EXPECT_EQ(transitions, 0);
  EXPECT_EQ(transitions_logged, 0);
  EXPECT_GE(during.size(), 29000u / kPollMs / 4);  // the monitor kept polling under the load
  // The slow polls did happen, for both nodes: this is what used to take them out.
  EXPECT_GT(stutter_cycles, 0);
  EXPECT_GT(late, 0);
  EXPECT_GT(primary_late, 0);
  std::printf("CPU hog: silent replica out after %lld ms (health timeout %lld ms)\n", took,
              static_cast<long long>(timeout.count()));
  EXPECT_LE(took, timeout.count() + 2 * kPollMs + 500);
}

/// A TCP port that accepts connections into its backlog and never says a word: a hung server.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    port_ = shardline::testing::free_port();
    a.sin_port = htons(port_);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0)
      throw std::runtime_error("cannot listen on a free port");
  }
  ~SilentListener() { ::close(fd_); }
  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

TEST(LagMonitor, HungAndRefusingServersCostTheOthersNothingAndStopIsPrompt) {
  LocalCluster& c = cluster();
  SilentListener silent;
  auto cfg = config_of(c);
  cfg.shards[0].replicas.push_back({"127.0.0.1", silent.port()});
  cfg.shards[0].replicas.push_back({"127.0.0.1", shardline::testing::free_port()});  // nobody listens
  auto w = std::make_unique<Watched>(cfg);
  ASSERT_TRUE(w->wait_for(caught_up, 5s));

  const std::size_t from = w->count();
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(1500ms);
  const auto rounds = w->since(from);
  std::printf("rounds in %lld ms with a hung and a refusing replica: %zu\n", ms_since(t0), rounds.size());
  EXPECT_GE(rounds.size(), 1500u / kPollMs / 2);
  bool saw_give_up = false;
  for (const auto& x : rounds) {
    ASSERT_EQ(x->replicas.size(), 3u);
    EXPECT_TRUE(x->replicas[0].healthy()) << describe(x->replicas[0]);
    const auto& hung = *x->find("s0", 1);
    const auto& refused = *x->find("s0", 2);
    EXPECT_FALSE(hung.reachable);
    EXPECT_FALSE(refused.reachable);
    EXPECT_EQ(hung.lag_ms, kUnknownLag);
    EXPECT_NE(refused.error.find("cannot connect"), std::string::npos) << refused.error;
    EXPECT_TRUE(hung.error.find("no answer yet (connecting)") != std::string::npos ||
                hung.error.find("could not connect within") != std::string::npos)
        << hung.error;
    saw_give_up = saw_give_up || hung.error.find("could not connect within 1000 ms") != std::string::npos;
  }
  EXPECT_TRUE(saw_give_up) << "the hung connection was never abandoned after the health timeout";

  // stop() while a connection to the hung server is being opened.
  const auto stopping = Clock::now();
  w->monitor().stop();
  const auto stop_ms = ms_since(stopping);
  std::printf("stop() took %lld ms\n", stop_ms);
  EXPECT_LT(stop_ms, 1000);
  const std::size_t after_stop = w->count();
  std::this_thread::sleep_for(3 * std::chrono::milliseconds(kPollMs));
  EXPECT_EQ(w->count(), after_stop) << "snapshots were published after stop()";
}

TEST(LagMonitor, RefusesABadConfigAndASecondStart) {
  auto cfg = config_of(cluster());
  cfg.replicas.poll_interval_ms = 0;
  EXPECT_THROW(LagMonitor(cfg, [](Snapshot) {}), std::invalid_argument);
  cfg.replicas.poll_interval_ms = kPollMs;
  EXPECT_THROW(LagMonitor(cfg, nullptr), std::invalid_argument);
  LagMonitor m(cfg, [](Snapshot) {});
  m.start();
  EXPECT_THROW(m.start(), std::logic_error);
  m.stop();
  m.stop();  // idempotent
}

/// A cluster of this test's own: promoting a replica must not break the shared one.
struct OwnCluster {
  OwnCluster() {
    std::string tmpl = "/tmp/shardline-lag-test-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir = tmpl;
    // mkdtemp makes it 0700; the servers' OS user (postgres, when run as root) must traverse it.
    fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
    LocalClusterOptions o;
    o.dir = dir;
    o.shards = 1;
    o.replicas = 1;
    o.base_port = shardline::testing::free_port_block(2);
    cluster = std::make_unique<LocalCluster>(o);
    cluster->start();
  }
  ~OwnCluster() {
    cluster.reset();
    LocalCluster::shutdown_dir(dir);
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  fs::path dir;
  std::unique_ptr<LocalCluster> cluster;
};

TEST(LagMonitor, PromotedReplicaIsNeverUsedAsAReplicaAgain) {
  OwnCluster own;
  Watched w(config_of(*own.cluster));
  ASSERT_TRUE(w.wait_for(caught_up, 5s));
  exec(own.cluster->superuser_conninfo(0, 0), "SELECT pg_promote(true, 30)");
  const Snapshot s = w.wait_for([](const ReplicaSnapshot& x) { return !replica0(x).in_recovery; }, 5s);
  ASSERT_TRUE(s) << describe(replica0(*w.monitor().latest()));
  const ReplicaStatus& r = replica0(*s);
  std::printf("promoted: %s\n", describe(r).c_str());
  EXPECT_TRUE(r.reachable);
  EXPECT_TRUE(r.promoted);
  EXPECT_FALSE(r.healthy());
  EXPECT_EQ(r.lag_bytes, kUnknownLag);
  EXPECT_EQ(r.lag_ms, kUnknownLag);
  EXPECT_NE(r.error.find("promoted"), std::string::npos);
  // It stays out, round after round.
  const std::size_t from = w.count();
  std::this_thread::sleep_for(500ms);
  for (const auto& x : w.since(from)) {
    EXPECT_TRUE(replica0(*x).promoted);
    EXPECT_FALSE(replica0(*x).healthy());
  }
}

}  // namespace
