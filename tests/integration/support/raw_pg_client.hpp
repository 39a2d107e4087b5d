#pragma once
// A PostgreSQL frontend that speaks the wire protocol by hand, for messages the project's libpq
// cannot send: Close of a prepared statement or a portal ('C'), which libpq offers only from 17
// on (PQclosePrepared, PQclosePortal), while the project installs 15. Messages are queued and
// sent in one write by send(), the way drivers pipeline an extended-protocol batch; replies are
// read as whole messages. https://www.postgresql.org/docs/current/protocol-message-formats.html

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardline::testing {

/// One backend message: its type byte and its body (without the length word).
struct BackendMessage {
  char tag = 0;
  std::string body;

  /// ErrorResponse or NoticeResponse field `code` ('C' SQLSTATE, 'M' message), "" if absent.
  std::string field(char code) const;
  /// DataRow: the value of column `col` (nullopt for NULL); throws std::runtime_error otherwise.
  std::optional<std::string> column(int col) const;
};

class RawPgClient {
 public:
  /// Connects to 127.0.0.1:`port` and logs in (trust, cleartext, MD5 or SCRAM-SHA-256, as the
  /// server asks) up to the first ReadyForQuery. Throws std::runtime_error naming what failed,
  /// with the server's SQLSTATE and message if it refused.
  RawPgClient(std::uint16_t port, const std::string& user, const std::string& password, const std::string& database,
              std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~RawPgClient();
  RawPgClient(const RawPgClient&) = delete;
  RawPgClient& operator=(const RawPgClient&) = delete;

  // Frontend messages, queued until send(). Parameters are text format; nullopt is NULL.
  RawPgClient& query(std::string_view sql);
  RawPgClient& parse(std::string_view statement, std::string_view sql);
  RawPgClient& bind(std::string_view portal, std::string_view statement,
                    const std::vector<std::optional<std::string>>& params = {});
  RawPgClient& execute(std::string_view portal, std::int32_t max_rows = 0);
  RawPgClient& close_statement(std::string_view statement);
  RawPgClient& close_portal(std::string_view portal);
  RawPgClient& sync();
  /// Writes everything queued in one send; throws std::runtime_error if the peer is gone.
  void send();

  /// Reads messages up to and including the next ReadyForQuery (sending what is queued first).
  /// Throws std::runtime_error on timeout, on a closed connection or on a malformed message.
  std::vector<BackendMessage> until_ready(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  /// The server's pid from BackendKeyData.
  std::int32_t backend_pid() const { return backend_pid_; }

 private:
  BackendMessage read_message(std::chrono::steady_clock::time_point deadline);
  void authenticate(const std::string& user, const std::string& password, std::chrono::steady_clock::time_point deadline);
  void message(char tag, const std::string& body);

  int fd_ = -1;
  std::string out_;
  std::string in_;
  std::int32_t backend_pid_ = 0;
};

/// The tags of `messages` as a string, e.g. "1" "2" "C" "3" "Z" -> "12C3Z", for compact checks.
std::string tags(const std::vector<BackendMessage>& messages);
/// The SQLSTATE of the first ErrorResponse, "" if none.
std::string first_sqlstate(const std::vector<BackendMessage>& messages);

}  // namespace shardline::testing
