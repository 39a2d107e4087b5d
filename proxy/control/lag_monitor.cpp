// LagMonitor: the control-plane shell that probes every replica's replay position and lag
// (lag_probe.*) and publishes immutable snapshots. A little over our usual ~500 lines: the probe
// loop and the snapshot it builds share the per-replica state kept here.

#include "proxy/control/lag_monitor.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "proxy/control/conninfo.hpp"
#include "proxy/control/lag_probe.hpp"
#include "proxy/control/wal_geometry.hpp"

namespace shardline::control {
namespace {

using Clock = std::chrono::steady_clock;
using SysClock = std::chrono::system_clock;

/// Thrown inside the monitor thread when stop() wakes it; unwinds to run().
struct Stopped {};

struct ConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

/// libpq's message on one line (it spreads FATAL text and hints over several).
std::string one_line(std::string raw) {
  std::string s;
  for (const char c : raw) {
    if (c == '\n' || c == '\t' || c == '\r') {
      if (!s.empty() && s.back() != ' ') s += ' ';
    } else {
      s += c;
    }
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::string libpq_error(PGconn* conn) {
  if (conn == nullptr) return "out of memory";
  std::string s = one_line(PQerrorMessage(conn));
  return s.empty() ? "connection lost" : s;
}

/// libpq prints notices, and the FATAL a server sends an idle session when it shuts down, on
/// stderr unless told otherwise; the monitor reports failures itself, so these go to the debug log.
void log_notice(void* label, const char* message) {
  spdlog::debug("lag monitor: {}: {}", *static_cast<const std::string*>(label), one_line(message));
}

std::int64_t ceil_ms(Clock::duration d) {
  return std::max<std::int64_t>(0, std::chrono::ceil<std::chrono::milliseconds>(d).count());
}

}  // namespace

/// What the log last said about a server, so that only real transitions are logged.
enum class LagMonitor::Logged {
  Unknown,   ///< nothing yet: the first answer (or failure) decides, quietly if it is good news
  Usable,
  Unusable,
  Slow,      ///< primaries only: silent past the health timeout, yet not reported unusable
};

struct LagMonitor::Server {
  enum class Phase { Down, Connecting, Idle, Flushing, Waiting };

  explicit Server(std::chrono::milliseconds health_timeout) : health(health_timeout) {}

  std::size_t shard = 0;
  int replica = -1;  ///< -1: the shard's primary
  config::Endpoint endpoint;
  std::string conninfo;
  std::string label;  ///< "s0 replica 0 (127.0.0.1:15401)", for the log

  std::unique_ptr<PGconn, ConnCloser> conn;
  Phase phase = Phase::Down;
  PostgresPollingStatusType connect_status = PGRES_POLLING_WRITING;
  Clock::time_point connect_deadline;
  Clock::time_point sent_at;
  Clock::time_point query_deadline;
  /// The probe's outcome so far: its result can arrive in one read and ReadyForQuery in a later one.
  std::optional<Probe> partial;
  std::string partial_error;

  NodeHealth health;
  std::optional<Probe> last_answer;
  bool fresh = false;          ///< an answer arrived since the last snapshot
  int unanswered_rounds = 0;   ///< snapshots since the last answer
  SysClock::time_point failed_at;  ///< when the last failure or give-up was seen
  bool promoted = false;
  Logged logged = Logged::Unknown;

  bool is_primary() const { return replica < 0; }
  bool busy() const { return phase == Phase::Connecting || phase == Phase::Flushing || phase == Phase::Waiting; }
};

LagMonitor::LagMonitor(config::Config cfg, Publish publish)
    : cfg_(std::move(cfg)), publish_(std::move(publish)) {
  if (!publish_) throw std::invalid_argument("LagMonitor needs a publish callback");
  if (cfg_.replicas.poll_interval_ms <= 0)
    throw std::invalid_argument(
        fmt::format("replicas.poll_interval_ms must be positive, not {}", cfg_.replicas.poll_interval_ms));
  if (cfg_.replicas.health_timeout_ms < 0)
    throw std::invalid_argument(
        fmt::format("replicas.health_timeout_ms must not be negative, not {}", cfg_.replicas.health_timeout_ms));
  interval_ = std::chrono::milliseconds(cfg_.replicas.poll_interval_ms);
  // A probe is judged once per round: a shorter timeout would act as the interval anyway.
  health_timeout_ = std::max(interval_, std::chrono::milliseconds(cfg_.replicas.health_timeout()));

  config::Backend backend = cfg_.backend;
  backend.connect_timeout_ms = static_cast<int>(health_timeout_.count());
  // The server gives up on a probe no later than we do, so a hung probe never holds a backend.
  const std::string options = fmt::format(" options='-c statement_timeout={}'", health_timeout_.count());
  for (std::size_t i = 0; i < cfg_.shards.size(); ++i) {
    const auto& shard = cfg_.shards[i];
    estimators_.emplace_back();
    for (int r = -1; r < static_cast<int>(shard.replicas.size()); ++r) {
      auto s = std::make_unique<Server>(health_timeout_);
      s->shard = i;
      s->replica = r;
      s->endpoint = r < 0 ? shard.primary : shard.replicas[static_cast<std::size_t>(r)];
      s->conninfo = libpq_conninfo(backend, s->endpoint, "shardline-control") + options;
      s->label = r < 0 ? fmt::format("{} primary ({}:{})", shard.name, s->endpoint.host, s->endpoint.port)
                       : fmt::format("{} replica {} ({}:{})", shard.name, r, s->endpoint.host, s->endpoint.port);
      servers_.push_back(std::move(s));
    }
  }
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

LagMonitor::~LagMonitor() {
  stop();
  ::close(wake_fd_);
}

void LagMonitor::start() {
  if (thread_.joinable() || stopping_.load()) throw std::logic_error("LagMonitor::start: the monitor was already started or stopped");
  thread_ = std::thread([this] { run(); });
}

void LagMonitor::stop() {
  stopping_.store(true);
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(wake_fd_, &one, sizeof one);
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void LagMonitor::run() {
  try {
    while (!stopping_.load()) {
      const auto round_end = Clock::now() + interval_;
      begin_round();
      service(round_end, true);
      end_round();
      auto snapshot = build_snapshot();
      latest_.store(snapshot);
      try {
        publish_(std::move(snapshot));
      } catch (const std::exception& e) {
        spdlog::error("lag monitor: the publish callback threw: {}", e.what());
      }
      // Connections being opened and late answers make progress while we wait for the next round.
      service(round_end, false);
    }
  } catch (const Stopped&) {
  } catch (const std::exception& e) {
    // Only poll() itself failing gets here. The last snapshot must not stay in force as if it
    // were current: a final one takes every replica out, so reads go to the primaries.
    spdlog::critical("lag monitor stopped: {}", e.what());
    try {
      for (auto& s : servers_) fail(*s, fmt::format("lag monitor stopped: {}", e.what()));
      auto snapshot = build_snapshot();
      latest_.store(snapshot);
      publish_(std::move(snapshot));
    } catch (const std::exception& again) {
      spdlog::critical("lag monitor: cannot publish its final snapshot: {}", again.what());
    }
  }
  for (auto& s : servers_) s->conn.reset();
}

void LagMonitor::begin_round() {
  collecting_ = true;
  for (auto& sp : servers_) {
    Server& s = *sp;
    switch (s.phase) {
      case Server::Phase::Down: start_connect(s); break;
      case Server::Phase::Idle: send_probe(s); break;
      // A connection being opened, or a probe from an earlier round still unanswered: its answer
      // is as good as a fresh one when it comes (its replay LSN can only be older, so the lag
      // computed from it errs high), and the server's time to answer keeps running.
      case Server::Phase::Connecting:
      case Server::Phase::Flushing:
      case Server::Phase::Waiting: break;
    }
  }
}

void LagMonitor::service(Clock::time_point until, bool until_answered) {
  std::vector<pollfd> fds;
  std::vector<Server*> owners;
  for (;;) {
    if (until_answered && std::none_of(servers_.begin(), servers_.end(), [](const auto& s) { return s->busy(); }))
      return;
    fds.assign(1, pollfd{wake_fd_, POLLIN, 0});
    owners.assign(1, nullptr);
    for (auto& sp : servers_) {
      short events = 0;
      switch (sp->phase) {
        case Server::Phase::Down: break;
        case Server::Phase::Connecting:
          events = sp->connect_status == PGRES_POLLING_READING ? POLLIN : POLLOUT;
          break;
        case Server::Phase::Flushing: events = POLLIN | POLLOUT; break;
        // Idle connections are watched too, so a server that shuts down is noticed at once.
        case Server::Phase::Idle:
        case Server::Phase::Waiting: events = POLLIN; break;
      }
      if (events == 0) continue;
      fds.push_back({PQsocket(sp->conn.get()), events, 0});
      owners.push_back(sp.get());
    }
    // Past the deadline we still look once without waiting: on a busy machine this thread may
    // wake late, and answers already sitting in the sockets must count before anyone is judged.
    const auto left = until - Clock::now();
    const bool last = left <= Clock::duration::zero();
    const int timeout = last ? 0 : static_cast<int>(std::min<std::int64_t>(ceil_ms(left), 60'000));
    const int n = ::poll(fds.data(), fds.size(), timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "poll");
    }
    if (fds[0].revents != 0) throw Stopped{};
    for (std::size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      Server& s = *owners[i];
      switch (s.phase) {
        case Server::Phase::Connecting: advance_connect(s); break;
        case Server::Phase::Flushing:
          if ((fds[i].revents & (POLLIN | POLLERR | POLLHUP)) != 0 && PQconsumeInput(s.conn.get()) == 0) {
            fail(s, libpq_error(s.conn.get()));
            break;
          }
          flush(s);
          break;
        case Server::Phase::Waiting: read_answer(s); break;
        case Server::Phase::Idle:
          // Between probes a server only speaks to end the session (e.g. FATAL 57P01 on shutdown)
          // or to send a notice.
          // A closed socket makes PQconsumeInput fail (after it read the server's last words).
          if (PQconsumeInput(s.conn.get()) == 0 || PQstatus(s.conn.get()) == CONNECTION_BAD) {
            fail(s, "connection closed by the server: " + libpq_error(s.conn.get()));
          } else {
            while (PGnotify* note = PQnotifies(s.conn.get())) PQfreemem(note);
          }
          break;
        case Server::Phase::Down: break;
      }
    }
    if (last) return;
  }
}

void LagMonitor::end_round() {
  const auto now = Clock::now();
  for (auto& sp : servers_) {
    Server& s = *sp;
    if (s.phase == Server::Phase::Connecting && now >= s.connect_deadline) {
      give_up(s, fmt::format("could not connect within {} ms", health_timeout_.count()));
    } else if ((s.phase == Server::Phase::Flushing || s.phase == Server::Phase::Waiting) && now >= s.query_deadline) {
      give_up(s, fmt::format("no answer within {} ms; connection closed", health_timeout_.count()));
    }
  }
  collecting_ = false;
}

void LagMonitor::start_connect(Server& s) {
  const auto now = Clock::now();
  s.health.asked(now);
  s.conn.reset(PQconnectStart(s.conninfo.c_str()));
  if (!s.conn || PQstatus(s.conn.get()) == CONNECTION_BAD) {
    fail(s, "cannot connect: " + libpq_error(s.conn.get()));
    return;
  }
  PQsetNoticeProcessor(s.conn.get(), &log_notice, &s.label);
  s.phase = Server::Phase::Connecting;
  // libpq's protocol for a non-blocking connect: behave as if PQconnectPoll had said WRITING.
  s.connect_status = PGRES_POLLING_WRITING;
  s.connect_deadline = now + health_timeout_;
}

void LagMonitor::advance_connect(Server& s) {
  s.connect_status = PQconnectPoll(s.conn.get());
  if (s.connect_status == PGRES_POLLING_FAILED) {
    fail(s, "cannot connect: " + libpq_error(s.conn.get()));
    return;
  }
  if (s.connect_status != PGRES_POLLING_OK) return;
  if (PQsetnonblocking(s.conn.get(), 1) != 0) {
    fail(s, "cannot make the connection non-blocking: " + libpq_error(s.conn.get()));
    return;
  }
  s.phase = Server::Phase::Idle;
  // A connection that completes after the round's snapshot waits for the next round's probe.
  if (collecting_) send_probe(s);
}

void LagMonitor::send_probe(Server& s) {
  s.sent_at = Clock::now();
  s.health.asked(s.sent_at);  // after a connection attempt, its time to answer runs from there
  s.partial.reset();
  s.partial_error.clear();
  s.query_deadline = s.sent_at + health_timeout_;
  if (PQsendQuery(s.conn.get(), kProbeSql) == 0) {
    fail(s, "cannot send the probe: " + libpq_error(s.conn.get()));
    return;
  }
  s.phase = Server::Phase::Flushing;
  flush(s);
}

void LagMonitor::flush(Server& s) {
  const int r = PQflush(s.conn.get());
  if (r < 0) fail(s, "cannot send the probe: " + libpq_error(s.conn.get()));
  else if (r == 0) s.phase = Server::Phase::Waiting;
}

void LagMonitor::read_answer(Server& s) {
  PGconn* conn = s.conn.get();
  if (PQconsumeInput(conn) == 0) {
    fail(s, libpq_error(conn));
    return;
  }
  std::optional<Probe>& probe = s.partial;
  std::string& error = s.partial_error;
  while (PQisBusy(conn) == 0) {
    Result r(PQgetResult(conn));
    if (!r) {
      s.phase = Server::Phase::Idle;
      break;
    }
    if (!error.empty() || probe) continue;  // drain whatever follows the first outcome
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
      error = "probe failed: " + one_line(PQresultErrorMessage(r.get()));
      continue;
    }
    try {
      probe = parse_probe(r.get());
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  if (PQstatus(conn) == CONNECTION_BAD) {
    fail(s, error.empty() ? libpq_error(conn) : error);
    return;
  }
  if (s.phase != Server::Phase::Idle) return;  // the rest of the answer is still on its way
  if (!probe) {
    // The connection is fine and takes the next round's probe; the server is out until it answers.
    s.health.failed(error.empty() ? "the probe returned no result" : error);
    s.failed_at = SysClock::now();
    return;
  }
  probe->sent_at = s.sent_at;
  probe->received_at = SysClock::now();
  s.health.answered(Clock::now());
  if (s.is_primary() && !probe->in_recovery && probe->insert_lsn)
    estimators_[s.shard].add_sample(probe->sent_at, *probe->insert_lsn);
  s.last_answer = std::move(probe);
  s.fresh = true;
  s.partial.reset();
}

void LagMonitor::fail(Server& s, std::string message) {
  s.conn.reset();
  s.phase = Server::Phase::Down;
  s.health.failed(std::move(message));
  s.failed_at = SysClock::now();
}

void LagMonitor::give_up(Server& s, std::string message) {
  s.conn.reset();
  s.phase = Server::Phase::Down;
  s.health.timed_out(std::move(message));
  s.failed_at = SysClock::now();
}

void LagMonitor::note_health(Server& s, Logged state, const std::string& why) {
  if (state == s.logged || state == Logged::Unknown) return;
  const Logged before = std::exchange(s.logged, state);
  switch (state) {
    case Logged::Usable:
      if (before != Logged::Unknown) spdlog::info("lag monitor: {} is healthy again", s.label);
      break;
    case Logged::Unusable: spdlog::warn("lag monitor: {} is not usable: {}", s.label, why); break;
    case Logged::Slow:
      spdlog::warn("lag monitor: {} is slow: {}; its replicas' lag counts from its last answer", s.label, why);
      break;
    case Logged::Unknown: break;
  }
}

std::shared_ptr<const ReplicaSnapshot> LagMonitor::build_snapshot() {
  auto snap = std::make_shared<ReplicaSnapshot>();
  snap->generation = ++generation_;
  const auto now = Clock::now();
  for (auto& sp : servers_) sp->unanswered_rounds = sp->fresh ? 0 : sp->unanswered_rounds + 1;
  std::vector<bool> primary_current(cfg_.shards.size(), false);
  std::vector<std::string> primary_problem(cfg_.shards.size());
  std::vector<bool> primary_unknown(cfg_.shards.size(), false);
  for (auto& sp : servers_) {
    Server& s = *sp;
    if (!s.is_primary()) continue;
    const auto& est = estimators_[s.shard];
    if (const auto lsn = est.latest_lsn()) snap->primaries.push_back({cfg_.shards[s.shard].name, *lsn, *est.latest_time()});
    const NodeHealth::State state = s.health.state(now);
    Logged logged = Logged::Usable;
    if (state == NodeHealth::State::Ok && s.last_answer->in_recovery) {
      primary_problem[s.shard] = "the configured primary is in recovery";
      logged = Logged::Unusable;
    } else if (state != NodeHealth::State::Ok) {
      primary_problem[s.shard] = s.health.problem(now);
      if (state == NodeHealth::State::Unknown && s.phase == Server::Phase::Connecting)
        primary_problem[s.shard] += " (connecting)";
      logged = state == NodeHealth::State::Unknown  ? Logged::Unknown
               : state == NodeHealth::State::Silent ? Logged::Slow
                                                    : Logged::Unusable;
    }
    primary_unknown[s.shard] = state == NodeHealth::State::Unknown;
    // Answered in this round as a primary: its latest sample says where it is now.
    primary_current[s.shard] = s.fresh && logged == Logged::Usable;
    note_health(s, logged, primary_problem[s.shard]);
  }

  for (auto& sp : servers_) {
    Server& s = *sp;
    if (s.is_primary()) continue;
    ReplicaStatus st;
    st.shard = cfg_.shards[s.shard].name;
    st.replica = s.replica;
    st.endpoint = s.endpoint;
    st.unanswered_rounds = s.unanswered_rounds;
    if (s.last_answer) {
      st.in_recovery = s.last_answer->in_recovery;
      st.replay_paused = s.last_answer->replay_paused;
      st.replay_lsn = s.last_answer->replay_lsn.value_or(Lsn{});
      st.replayed_lsn = s.last_answer->wal.past_page_header(st.replay_lsn);
      st.last_xact_replay = s.last_answer->last_xact_replay;
    }
    if (s.fresh && !s.last_answer->in_recovery && !s.promoted) {
      s.promoted = true;
      spdlog::warn("lag monitor: {} is no longer in recovery (promoted?); it is not used as a replica again "
                   "until the monitor restarts", s.label);
    }
    st.promoted = s.promoted;
    const NodeHealth::State state = s.health.state(now);
    // Not known yet: the first answer (or a real failure) is awaited before anything is logged.
    bool undetermined = state == NodeHealth::State::Unknown;
    if (state != NodeHealth::State::Ok) {
      st.error = s.health.problem(now);
      if (state == NodeHealth::State::Unknown && s.phase == Server::Phase::Connecting) st.error += " (connecting)";
      st.sampled_at = state == NodeHealth::State::Unknown ? SysClock::now() : s.failed_at;
    } else {
      st.reachable = true;
      st.sampled_at = s.last_answer->received_at;
      const LagEstimator& est = estimators_[s.shard];
      if (s.promoted) {
        st.error = s.last_answer->in_recovery ? "was seen out of recovery (promoted) since the monitor started"
                                              : "not in recovery: promoted";
      } else if (!s.last_answer->replay_lsn) {
        st.error = "no replay position yet";
      } else if (const auto e = est.estimate(st.replayed_lsn, now, primary_current[s.shard])) {
        // From the last answer, as of now: if it is from an earlier round, the replica has
        // replayed at least that much, so these figures can only be higher than the truth.
        st.lag_bytes = e->bytes;
        st.lag_ms = e->ms;
        st.lag_ms_lower_bound = e->lower_bound;
      } else {
        st.error = "primary position unknown: " + primary_problem[s.shard];
        undetermined = undetermined || primary_unknown[s.shard];
      }
    }
    note_health(s, undetermined ? Logged::Unknown : st.healthy() ? Logged::Usable : Logged::Unusable, st.error);
    snap->replicas.push_back(std::move(st));
  }

  for (auto& sp : servers_) sp->fresh = false;
  return snap;
}

}  // namespace shardline::control
