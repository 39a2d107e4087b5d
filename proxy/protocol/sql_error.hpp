#pragma once
// An error the proxy itself raises: it reaches the client as an ordinary ErrorResponse with a
// SQLSTATE and a message naming the cause (like PgBouncer's send_pooler_error).

#include <string>

namespace shardline::proxy::protocol {

struct SqlError {
  std::string sqlstate;  ///< five characters, e.g. "08006"
  std::string message;
  std::string severity = "ERROR";  ///< ERROR, or FATAL when the connection is closed after it
  std::string detail;
  std::string hint;

  static SqlError fatal(std::string code, std::string msg) {
    return SqlError{std::move(code), std::move(msg), "FATAL", {}, {}};
  }
  static SqlError error(std::string code, std::string msg) {
    return SqlError{std::move(code), std::move(msg), "ERROR", {}, {}};
  }
};

namespace sqlstate {
inline constexpr const char* kProtocolViolation = "08P01";
inline constexpr const char* kConnectionFailure = "08006";
inline constexpr const char* kCannotConnectNow = "57P03";
inline constexpr const char* kAdminShutdown = "57P01";
inline constexpr const char* kQueryCanceled = "57014";
inline constexpr const char* kTooManyConnections = "53300";
inline constexpr const char* kInvalidPassword = "28P01";
inline constexpr const char* kInvalidAuthorization = "28000";
inline constexpr const char* kInsufficientPrivilege = "42501";
inline constexpr const char* kFeatureNotSupported = "0A000";
inline constexpr const char* kInvalidParameterValue = "22023";
inline constexpr const char* kSyntaxError = "42601";
inline constexpr const char* kDuplicatePreparedStatement = "42P05";
inline constexpr const char* kUndefinedPreparedStatement = "26000";
inline constexpr const char* kInvalidCatalogName = "3D000";
inline constexpr const char* kUndefinedObject = "42704";
inline constexpr const char* kInternalError = "XX000";
}  // namespace sqlstate

}  // namespace shardline::proxy::protocol
