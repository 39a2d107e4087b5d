#pragma once
// A libpq connection for integration tests: uses verbose errors (so a refused connection's or a
// FATAL's message carries its SQLSTATE, which libpq has no other way to report), records
// the notices and asynchronous errors the server pushes, and offers the one-liners tests need.

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/support/pg_result.hpp"

namespace shardline::testing {

class PgConnection {
 public:
  /// Connects (blocking, at most `timeout`); never throws: check ok() and error().
  explicit PgConnection(const std::string& conninfo,
                        std::chrono::milliseconds timeout = std::chrono::seconds(10));

  bool ok() const { return PQstatus(get()) == CONNECTION_OK; }
  PGconn* get() const { return state_->conn.get(); }
  /// libpq's error text (for a failed connection: the server's FATAL with its SQLSTATE).
  std::string error() const { return state_->timed_out + PQerrorMessage(get()); }
  /// The SQLSTATE of the FATAL/ERROR that ended a failed connection attempt, "" if none
  /// (e.g. connection refused, or a client-side TLS refusal).
  std::string connect_sqlstate() const;
  /// The SQLSTATEs of every server error in libpq's error text for the last statement (or
  /// connection attempt), in arrival order. libpq drops a FATAL's SQLSTATE from the PGresult
  /// when the connection closes right after it; the verbose text keeps it.
  std::vector<std::string> error_sqlstates() const;

  PgResult exec(const std::string& sql) const { return PgResult(PQexec(get(), sql.c_str())); }
  /// Text-format parameters; nullopt is SQL NULL.
  PgResult exec_params(const std::string& sql, const std::vector<std::optional<std::string>>& params) const;
  PgResult exec_prepared(const std::string& name, const std::vector<std::optional<std::string>>& params) const;
  /// The single value of a one-row, one-column query; throws std::runtime_error with the
  /// server's message if the statement fails or returns another shape.
  std::string value(const std::string& sql) const;
  int backend_pid() const { return std::stoi(value("SELECT pg_backend_pid()")); }
  int server_port() const { return std::stoi(value("SELECT inet_server_port()")); }

  /// Waits until the socket is readable (or `timeout` passes), then reads and parses what
  /// arrived (PQconsumeInput + PQisBusy). Returns whether anything was readable.
  bool wait_input(std::chrono::milliseconds timeout) const;
  /// SQLSTATEs of notices and of errors that arrived while no query ran (e.g. 57P01 on an idle
  /// session), in arrival order.
  std::vector<std::string> async_sqlstates() const { return state_->notices; }

 private:
  struct State {
    std::unique_ptr<PGconn, decltype(&PQfinish)> conn{nullptr, &PQfinish};
    std::vector<std::string> notices;
    std::string timed_out;  ///< set when the handshake did not finish in time
  };
  std::unique_ptr<State> state_;
};

/// Runs a COPY ... FROM STDIN with `data`, sent in chunks that cut rows at arbitrary bytes;
/// the COPY's result (or the failed start's).
PgResult copy_from_stdin(const PgConnection& c, const std::string& sql, const std::string& data);

/// Runs `sql` on `c`; throws std::runtime_error with the statement and the server's error if it
/// fails (for setup steps, where a failure makes the rest of a test meaningless).
void must(const PgConnection& c, const std::string& sql);

}  // namespace shardline::testing
