#include "proxy/control/directory_watcher.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "proxy/control/catalog.hpp"
#include "proxy/control/catalog_error.hpp"
#include "proxy/control/conninfo.hpp"
#include "proxy/control/directory_rows.hpp"

namespace shardline::control {
namespace {

using Clock = std::chrono::steady_clock;

/// Thrown inside the watcher thread when stop() wakes it; unwinds to run().
struct Stopped {};

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

/// libpq's message on one line (it spreads FATAL text and hints over several), for the log.
std::string libpq_error(PGconn* conn) {
  const std::string raw = conn ? PQerrorMessage(conn) : "out of memory";
  std::string s;
  for (const char c : raw) {
    if (c == '\n' || c == '\t') {
      if (!s.empty() && s.back() != ' ') s += ' ';
    } else {
      s += c;
    }
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

/// Waits until `fd` has `events` (true), `deadline` passes (false) or the wake fd fires
/// (Stopped). fd < 0 waits on the wake fd alone.
bool wait_fd(int fd, short events, int wake_fd, Clock::time_point deadline) {
  for (;;) {
    pollfd fds[2] = {{wake_fd, POLLIN, 0}, {fd, events, 0}};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    const int timeout = static_cast<int>(std::clamp<std::int64_t>(left.count(), 0, 60'000));
    const int n = ::poll(fds, fd >= 0 ? 2 : 1, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "poll");
    }
    if (fds[0].revents != 0) throw Stopped{};
    if (fd >= 0 && fds[1].revents != 0) return true;
    if (Clock::now() >= deadline) return false;
  }
}

}  // namespace

/// One LISTENing libpq connection whose every wait can be interrupted through the wake fd.
class DirectoryWatcher::Session {
 public:
  Session(const std::string& conninfo, int wake_fd, const DirectoryWatcherOptions& options)
      : wake_fd_(wake_fd), options_(options) {
    conn_.reset(PQconnectStart(conninfo.c_str()));
    if (!conn_ || PQstatus(conn_.get()) == CONNECTION_BAD)
      throw std::runtime_error("cannot connect: " + libpq_error(conn_.get()));
    const auto deadline = Clock::now() + options_.connect_timeout;
    // libpq's protocol for a non-blocking connect: act as if PQconnectPoll had said WRITING.
    PostgresPollingStatusType status = PGRES_POLLING_WRITING;
    while (status != PGRES_POLLING_OK) {
      if (status == PGRES_POLLING_FAILED) throw std::runtime_error("cannot connect: " + libpq_error(conn_.get()));
      const short events = status == PGRES_POLLING_READING ? POLLIN : POLLOUT;
      if (!wait_fd(PQsocket(conn_.get()), events, wake_fd_, deadline))
        throw std::runtime_error(fmt::format("cannot connect: no answer within {} ms", options_.connect_timeout.count()));
      status = PQconnectPoll(conn_.get());
    }
  }

  PGconn* get() const { return conn_.get(); }

  /// Runs one statement; throws std::runtime_error with the server's message on any failure.
  Result exec(std::string_view sql) {
    if (!PQsendQuery(get(), std::string(sql).c_str())) throw std::runtime_error(libpq_error(get()));
    const auto deadline = Clock::now() + options_.query_timeout;
    Result first_error;
    Result last;
    for (;;) {
      while (PQisBusy(get())) {
        if (!wait_fd(PQsocket(get()), POLLIN, wake_fd_, deadline))
          throw std::runtime_error(fmt::format("no answer to `{}` within {} ms", sql, options_.query_timeout.count()));
        if (!PQconsumeInput(get())) throw std::runtime_error(libpq_error(get()));
      }
      Result r(PQgetResult(get()));
      if (!r) break;
      const auto st = PQresultStatus(r.get());
      if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        if (!first_error) first_error = std::move(r);
      } else {
        last = std::move(r);
      }
    }
    if (first_error) {
      std::string msg = PQresultErrorMessage(first_error.get());
      while (!msg.empty() && msg.back() == '\n') msg.pop_back();
      throw std::runtime_error(fmt::format("`{}` failed: {}", sql, msg));
    }
    if (!last) throw std::runtime_error(fmt::format("`{}` returned no result: {}", sql, libpq_error(get())));
    return last;
  }

  /// Waits for server input until `deadline`; returns whether a directory notification arrived.
  /// A closed connection throws.
  bool wait_notification(Clock::time_point deadline) {
    if (!wait_fd(PQsocket(get()), POLLIN, wake_fd_, deadline)) return false;
    if (!PQconsumeInput(get())) throw std::runtime_error(libpq_error(get()));
    bool ours = false;
    while (PGnotify* n = PQnotifies(get())) {
      ours = ours || kDirectoryChannel == n->relname;
      PQfreemem(n);
    }
    return ours;
  }

 private:
  struct ConnDeleter {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  std::unique_ptr<PGconn, ConnDeleter> conn_;
  int wake_fd_;
  const DirectoryWatcherOptions& options_;
};

DirectoryWatcher::DirectoryWatcher(std::string conninfo, config::Config cfg, std::uint64_t known_epoch,
                                   Callback on_change, DirectoryWatcherOptions options)
    : conninfo_(std::move(conninfo)),
      cfg_(std::move(cfg)),
      on_change_(std::move(on_change)),
      options_(std::move(options)),
      epoch_(known_epoch) {
  if (!on_change_) throw std::invalid_argument("DirectoryWatcher needs a callback");
  if (options_.poll_interval.count() <= 0 || options_.min_backoff.count() <= 0 ||
      options_.max_backoff < options_.min_backoff || options_.connect_timeout.count() <= 0 ||
      options_.query_timeout.count() <= 0)
    throw std::invalid_argument("DirectoryWatcherOptions: intervals must be positive and max_backoff >= min_backoff");
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  thread_ = std::thread([this] { run(); });
}

DirectoryWatcher::~DirectoryWatcher() {
  stop();
  ::close(wake_fd_);
}

void DirectoryWatcher::stop() {
  stopping_.store(true);
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(wake_fd_, &one, sizeof one);
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void DirectoryWatcher::report(const std::string& message) {
  spdlog::warn("directory watcher ({}): {}", describe_conninfo(conninfo_), message);
  if (!options_.on_error) return;
  try {
    options_.on_error(message);
  } catch (const std::exception& e) {
    spdlog::error("directory watcher: error callback threw: {}", e.what());
  }
}

void DirectoryWatcher::run() {
  auto backoff = options_.min_backoff;
  while (!stopping_.load()) {
    try {
      Session session(conninfo_, wake_fd_, options_);
      session.exec(fmt::format("LISTEN {}", kDirectoryChannel));
      backend_pid_.store(PQbackendPID(session.get()));
      connected_.store(true);
      backoff = options_.min_backoff;
      // Changes made while we were not listening are found by reading the epoch once now.
      check(session);
      auto next_poll = Clock::now() + options_.poll_interval;
      for (;;) {
        if (session.wait_notification(next_poll)) check(session);
        if (Clock::now() >= next_poll) {
          check(session);
          next_poll = Clock::now() + options_.poll_interval;
        }
      }
    } catch (const Stopped&) {
      break;
    } catch (const std::exception& e) {
      report(fmt::format("{}; retrying in {} ms", e.what(), backoff.count()));
    }
    connected_.store(false);
    backend_pid_.store(0);
    try {
      wait_fd(-1, 0, wake_fd_, Clock::now() + backoff);
    } catch (const Stopped&) {
      break;
    }
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  connected_.store(false);
  backend_pid_.store(0);
}

void DirectoryWatcher::check(Session& session) {
  const Result epoch_result = session.exec(kReadEpochSql);
  if (PQntuples(epoch_result.get()) != 1)
    throw std::runtime_error("shardline.directory_epoch does not hold exactly one row");
  const std::uint64_t epoch = std::stoull(PQgetvalue(epoch_result.get(), 0, 0));
  if (epoch == epoch_.load() || (has_refused_ && epoch == refused_epoch_)) return acknowledge(session);

  const Result r = session.exec(kReadDirectorySql);
  std::uint64_t read_epoch = epoch;
  std::vector<DirectoryRow> rows;
  std::vector<TenantRow> tenants;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    read_epoch = std::stoull(PQgetvalue(r.get(), i, 0));
    if (!PQgetisnull(r.get(), i, 1))
      rows.push_back({std::stoi(PQgetvalue(r.get(), i, 1)), PQgetvalue(r.get(), i, 2),
                      PQgetvalue(r.get(), i, 3)[0] == 't'});
    else if (!PQgetisnull(r.get(), i, 4))
      tenants.push_back({std::string(PQgetvalue(r.get(), i, 4), std::size_t(PQgetlength(r.get(), i, 4))),
                         PQgetvalue(r.get(), i, 2), PQgetvalue(r.get(), i, 3)[0] == 't',
                         PQgetvalue(r.get(), i, 5)[0] == 't'});
  }
  if (read_epoch == epoch_.load()) return;
  std::shared_ptr<const router::DirectorySnapshot> snapshot;
  try {
    snapshot = directory_from_rows(read_epoch, std::move(rows), cfg_, std::move(tenants));
  } catch (const CatalogError& e) {
    refused_epoch_ = read_epoch;
    has_refused_ = true;
    report(fmt::format("{}; keeping epoch {}", e.what(), epoch_.load()));
    return;
  }
  has_refused_ = false;
  epoch_.store(read_epoch);
  try {
    on_change_(std::move(snapshot));
  } catch (const std::exception& e) {
    spdlog::error("directory watcher: the change callback for epoch {} threw: {}", read_epoch, e.what());
  }
  acknowledge(session);
}

void DirectoryWatcher::acknowledge(Session& session) {
  if (options_.proxy_id.empty()) return;
  // The id is made by the proxy itself (hex), so it needs no quoting beyond the literal.
  session.exec(fmt::format("INSERT INTO shardline.proxy_epochs (proxy, epoch, seen_at) VALUES ('{}', {}, now()) "
                           "ON CONFLICT (proxy) DO UPDATE SET epoch = EXCLUDED.epoch, seen_at = EXCLUDED.seen_at",
                           options_.proxy_id, epoch_.load()));
}

}  // namespace shardline::control
