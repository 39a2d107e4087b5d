#pragma once
// An owned libpq result with the accessors integration tests assert on (status, SQLSTATE,
// values), so a failed statement shows its server message in the test output.

#include <libpq-fe.h>

#include <memory>
#include <string>

namespace shardline::testing {

class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* res) : res_(res, &PQclear) {}

  PGresult* get() const { return res_.get(); }
  explicit operator bool() const { return res_ != nullptr; }
  /// PGRES_FATAL_ERROR for a missing result (libpq returns none when the connection is gone).
  ExecStatusType status() const { return res_ ? PQresultStatus(res_.get()) : PGRES_FATAL_ERROR; }
  /// COMMAND_OK or TUPLES_OK.
  bool ok() const;
  /// The ErrorResponse's SQLSTATE, "" when the result carries none.
  std::string sqlstate() const;
  /// The primary error message, or libpq's own text when the server sent none.
  std::string message() const;
  int rows() const { return res_ ? PQntuples(res_.get()) : 0; }
  int columns() const { return res_ ? PQnfields(res_.get()) : 0; }
  std::string column_name(int col) const;
  /// Throws std::out_of_range naming the cell if it does not exist.
  std::string value(int row, int col) const;
  bool is_null(int row, int col) const;
  /// The command tag's row count ("INSERT 0 3" -> "3").
  std::string cmd_tuples() const { return res_ ? PQcmdTuples(res_.get()) : ""; }
  /// "PGRES_TUPLES_OK" or "PGRES_FATAL_ERROR 22012 division by zero": for assertion messages.
  std::string describe() const;

 private:
  std::shared_ptr<PGresult> res_;
};

}  // namespace shardline::testing
