#include "tests/integration/support/pg_result.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace shardline::testing {

bool PgResult::ok() const {
  const auto s = status();
  return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

std::string PgResult::sqlstate() const {
  if (!res_) return "";
  const char* s = PQresultErrorField(res_.get(), PG_DIAG_SQLSTATE);
  return s ? s : "";
}

std::string PgResult::message() const {
  if (!res_) return "no result (connection lost?)";
  if (const char* m = PQresultErrorField(res_.get(), PG_DIAG_MESSAGE_PRIMARY)) return m;
  return PQresultErrorMessage(res_.get());
}

std::string PgResult::column_name(int col) const {
  if (col < 0 || col >= columns())
    throw std::out_of_range(fmt::format("PgResult: no column {} (result has {})", col, columns()));
  return PQfname(res_.get(), col);
}

std::string PgResult::value(int row, int col) const {
  if (row < 0 || row >= rows() || col < 0 || col >= columns())
    throw std::out_of_range(fmt::format("PgResult: no cell ({}, {}) in a result of {} row(s) x {} column(s) [{}]",
                                        row, col, rows(), columns(), describe()));
  return PQgetvalue(res_.get(), row, col);
}

bool PgResult::is_null(int row, int col) const {
  if (row < 0 || row >= rows() || col < 0 || col >= columns())
    throw std::out_of_range(fmt::format("PgResult: no cell ({}, {})", row, col));
  return PQgetisnull(res_.get(), row, col) != 0;
}

std::string PgResult::describe() const {
  std::string s = PQresStatus(status());
  if (!ok() && status() != PGRES_COPY_IN && status() != PGRES_COPY_OUT)
    s += fmt::format(" {} {}", sqlstate(), message());
  return s;
}

}  // namespace shardline::testing
