// Cancel race: many busy sessions share few servers (transaction pooling), and CancelRequests
// aimed at random sessions must stop only the targeted session's own query, never the query of
// another session that now runs on the server the target used before. A cancel for a session
// that is waiting for a server, or idle, cancels nothing.
//
// Each session runs short pg_sleep queries back to back; the test records, per session, which
// of its queries were in flight when a cancel for it was sent (PQcancel returns once the proxy
// closed the cancel connection). A query that ends with 57014 while no cancel for its own
// session was sent during its lifetime was cancelled by a cancel meant for someone else.

#include <libpq-fe.h>
#include <poll.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"

namespace {

using namespace std::chrono_literals;
using shardline::testing::free_port;
using shardline::testing::PgConnection;
using shardline::testing::PgResult;
using shardline::testing::ProxyConfig;
using shardline::testing::ProxyProcess;
using Clock = std::chrono::steady_clock;

shardline::control::LocalCluster& cluster() { return shardline::testing::test_cluster({.shards = 1}); }

struct Session {
  std::unique_ptr<PgConnection> conn;
  PGcancel* cancel = nullptr;
  int seq = 0;                    ///< the query in flight
  std::set<int> targeted;         ///< queries in flight when a cancel for this session was sent
  bool failed = false;            ///< the query in flight got 57014
  std::string other_error;        ///< an error that is not a cancel
};

struct RoundFigures {
  int cancels = 0;
  int queries = 0;
  int own_cancels = 0;      ///< queries cancelled by a cancel aimed at their session
  int foreign_cancels = 0;  ///< queries cancelled with no cancel aimed at their session
  std::vector<std::string> errors;
};

void send_next(Session& s) {
  ++s.seq;
  s.failed = false;
  // Varying lengths keep servers changing hands at every moment of a query's life.
  const char* sql = (s.seq % 3 == 0) ? "SELECT pg_sleep(0.002)" : "SELECT pg_sleep(0.015)";
  if (PQsendQuery(s.conn->get(), sql) != 1) s.other_error = PQerrorMessage(s.conn->get());
}

/// Reads what arrived; true when the query in flight has ended (its results all read).
bool collect(Session& s) {
  if (PQconsumeInput(s.conn->get()) != 1) {
    s.other_error = PQerrorMessage(s.conn->get());
    return false;
  }
  while (PQisBusy(s.conn->get()) == 0) {
    PGresult* raw = PQgetResult(s.conn->get());
    if (!raw) return true;
    PgResult r(raw);
    if (r.status() == PGRES_FATAL_ERROR) {
      if (r.sqlstate() == "57014") s.failed = true;
      else s.other_error = r.describe();
    }
  }
  return false;
}

RoundFigures run_round(const ProxyProcess& proxy, int sessions, int cancels, unsigned seed) {
  RoundFigures fig;
  std::vector<Session> all(static_cast<std::size_t>(sessions));
  const std::string conninfo = proxy.conninfo() + " sslmode=disable gssencmode=disable connect_timeout=5";
  for (auto& s : all) {
    s.conn = std::make_unique<PgConnection>(conninfo);
    if (!s.conn->ok()) {
      fig.errors.push_back("connect: " + s.conn->error());
      return fig;
    }
    PQsetnonblocking(s.conn->get(), 1);
    s.cancel = PQgetCancel(s.conn->get());
    send_next(s);
  }
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::size_t> pick(0, all.size() - 1);
  std::vector<pollfd> fds(all.size());
  auto last_cancel = Clock::now();
  const auto deadline = Clock::now() + 120s;
  while ((fig.cancels < cancels) && Clock::now() < deadline) {
    for (std::size_t i = 0; i < all.size(); ++i) fds[i] = pollfd{PQsocket(all[i].conn->get()), POLLIN, 0};
    (void)::poll(fds.data(), fds.size(), 1);
    for (std::size_t i = 0; i < all.size(); ++i) {
      Session& s = all[i];
      if (!(fds[i].revents & (POLLIN | POLLERR | POLLHUP)) || !collect(s)) continue;
      ++fig.queries;
      if (s.failed) {
        if (s.targeted.count(s.seq)) ++fig.own_cancels;
        else ++fig.foreign_cancels;
      }
      send_next(s);
    }
    if (Clock::now() - last_cancel >= 2ms) {
      Session& target = all[pick(rng)];
      target.targeted.insert(target.seq);
      char err[256] = {0};
      if (PQcancel(target.cancel, err, sizeof err) != 1) fig.errors.push_back(std::string("PQcancel: ") + err);
      ++fig.cancels;
      last_cancel = Clock::now();
    }
  }
  for (auto& s : all) {
    // Finish the query in flight (it may be cancelled too: still attributed).
    PQsetnonblocking(s.conn->get(), 0);
    for (;;) {
      PGresult* raw = PQgetResult(s.conn->get());
      if (!raw) break;
      PgResult r(raw);
      if (r.status() == PGRES_FATAL_ERROR && r.sqlstate() == "57014") {
        if (s.targeted.count(s.seq)) ++fig.own_cancels;
        else ++fig.foreign_cancels;
      } else if (r.status() == PGRES_FATAL_ERROR) {
        s.other_error = r.describe();
      }
    }
    if (!s.other_error.empty()) fig.errors.push_back(s.other_error);
    PQfreeCancel(s.cancel);
  }
  return fig;
}

TEST(CancelRace, CancelsNeverReachAnotherSessionsQuery) {
  ProxyConfig cfg(cluster(), free_port());
  cfg.pool_size(10).query_wait_timeout_ms(30000);
  ProxyProcess proxy(cfg.yaml());
  // CANCEL_RACE_ROUNDS=10 for the figure; make test runs fewer (each round ~3 s).
  const int rounds = std::getenv("CANCEL_RACE_ROUNDS") ? std::atoi(std::getenv("CANCEL_RACE_ROUNDS")) : 2;
  int total_own = 0;
  for (int round = 0; round < rounds; ++round) {
    const auto started = Clock::now();
    RoundFigures f = run_round(proxy, 50, 1000, 1234u + unsigned(round));
    const double secs = std::chrono::duration<double>(Clock::now() - started).count();
    std::printf("round %d: %d cancels, %d queries, %d cancelled by their own cancel, %d foreign, %.1f s\n",
                round + 1, f.cancels, f.queries, f.own_cancels, f.foreign_cancels, secs);
    EXPECT_EQ(f.cancels, 1000);
    EXPECT_EQ(f.foreign_cancels, 0) << "round " << round + 1 << ": queries cancelled by a cancel for another session";
    EXPECT_TRUE(f.errors.empty()) << "round " << round + 1 << ": " << f.errors.size() << " errors, first: "
                                  << (f.errors.empty() ? "" : f.errors.front());
    total_own += f.own_cancels;
  }
  // The cancels did reach their targets: the test would not notice a proxy that drops them all.
  EXPECT_GT(total_own, rounds * 50);
}

}  // namespace
