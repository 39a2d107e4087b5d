#include "tests/integration/support/pg_connection.hpp"

#include <algorithm>

#include <poll.h>

#include <fmt/format.h>

#include <regex>
#include <stdexcept>

namespace shardline::testing {

namespace {

std::vector<const char*> param_pointers(const std::vector<std::optional<std::string>>& params) {
  std::vector<const char*> out;
  out.reserve(params.size());
  for (const auto& p : params) out.push_back(p ? p->c_str() : nullptr);
  return out;
}

}  // namespace

PgConnection::PgConnection(const std::string& conninfo, std::chrono::milliseconds timeout)
    : state_(std::make_unique<State>()) {
  state_->conn.reset(PQconnectStart(conninfo.c_str()));
  PGconn* c = get();
  if (c == nullptr) throw std::bad_alloc();
  // Verbose errors must be chosen before the handshake: they put the SQLSTATE into the message.
  PQsetErrorVerbosity(c, PQERRORS_VERBOSE);
  PQsetNoticeReceiver(
      c,
      [](void* arg, const PGresult* res) {
        const char* s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        static_cast<State*>(arg)->notices.emplace_back(s ? s : "");
      },
      state_.get());
  if (PQstatus(c) == CONNECTION_BAD) return;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      // The half-open connection is not CONNECTION_OK, so ok() is false; error() says why.
      state_->timed_out = fmt::format("connection attempt timed out after {} ms", timeout.count());
      return;
    }
    pollfd pfd{PQsocket(c), static_cast<short>(st == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
    ::poll(&pfd, 1, static_cast<int>(left.count()));
    st = PQconnectPoll(c);
  }
}

std::vector<std::string> PgConnection::error_sqlstates() const {
  static const std::regex kState(R"((FATAL|ERROR|PANIC):\s+([0-9A-Z]{5}):)");
  const std::string msg = PQerrorMessage(get());
  std::vector<std::string> out;
  for (auto it = std::sregex_iterator(msg.begin(), msg.end(), kState); it != std::sregex_iterator(); ++it)
    out.push_back((*it)[2]);
  return out;
}

std::string PgConnection::connect_sqlstate() const {
  const auto states = error_sqlstates();
  return states.empty() ? "" : states.front();
}

PgResult PgConnection::exec_params(const std::string& sql,
                                   const std::vector<std::optional<std::string>>& params) const {
  const auto ptrs = param_pointers(params);
  return PgResult(PQexecParams(get(), sql.c_str(), static_cast<int>(ptrs.size()), nullptr, ptrs.data(),
                               nullptr, nullptr, 0));
}

PgResult PgConnection::exec_prepared(const std::string& name,
                                     const std::vector<std::optional<std::string>>& params) const {
  const auto ptrs = param_pointers(params);
  return PgResult(PQexecPrepared(get(), name.c_str(), static_cast<int>(ptrs.size()), ptrs.data(), nullptr,
                                 nullptr, 0));
}

std::string PgConnection::value(const std::string& sql) const {
  const PgResult r = exec(sql);
  if (r.status() != PGRES_TUPLES_OK || r.rows() != 1 || r.columns() != 1)
    throw std::runtime_error(fmt::format("`{}` did not return one value: {} ({} row(s)) {}", sql, r.describe(),
                                         r.rows(), PQerrorMessage(get())));
  return r.value(0, 0);
}

PgResult copy_from_stdin(const PgConnection& c, const std::string& sql, const std::string& data) {
  PgResult start(PQexec(c.get(), sql.c_str()));
  if (start.status() != PGRES_COPY_IN) return start;
  constexpr std::size_t kChunk = 8191;
  for (std::size_t pos = 0; pos < data.size(); pos += kChunk) {
    const std::size_t n = std::min(kChunk, data.size() - pos);
    if (PQputCopyData(c.get(), data.data() + pos, static_cast<int>(n)) != 1)
      throw std::runtime_error(std::string("PQputCopyData: ") + PQerrorMessage(c.get()));
  }
  if (PQputCopyEnd(c.get(), nullptr) != 1) throw std::runtime_error(std::string("PQputCopyEnd: ") + PQerrorMessage(c.get()));
  PgResult result(PQgetResult(c.get()));
  while (PGresult* extra = PQgetResult(c.get())) PQclear(extra);
  return result;
}

void must(const PgConnection& c, const std::string& sql) {
  const PgResult r = c.exec(sql);
  if (!r.ok()) throw std::runtime_error(fmt::format("`{}` failed: {}", sql, r.describe()));
}

bool PgConnection::wait_input(std::chrono::milliseconds timeout) const {
  pollfd pfd{PQsocket(get()), POLLIN, 0};
  if (pfd.fd < 0) return false;
  const int n = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  if (n <= 0) return false;
  PQconsumeInput(get());
  // PQconsumeInput only buffers; PQisBusy parses, which hands notices and errors that arrived
  // while idle to the notice receiver before a later EOF drops the buffer.
  PQisBusy(get());
  return true;
}

}  // namespace shardline::testing
