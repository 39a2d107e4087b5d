#pragma once
// A raw wire-protocol client for integration tests: it logs in with libpq (so every auth method
// of the test config works, TLS off), then takes over the socket and sends exactly the messages
// a test builds (Parse/Describe/Flush without Sync, pipelines, ...) and reads the replies one
// typed message at a time. That is how drivers such as asyncpg, ruby-pg and psycopg talk, and
// what libpq's own API cannot express.
// https://www.postgresql.org/docs/current/protocol-message-formats.html

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardline::testing {

/// One backend message: its tag and body (without the length).
struct RawMessage {
  char tag = 0;
  std::string body;

  /// ErrorResponse/NoticeResponse: the SQLSTATE field ("" if none).
  std::string sqlstate() const;
  /// ErrorResponse/NoticeResponse: the message field.
  std::string message() const;
  /// CommandComplete: the tag ("INSERT 0 1").
  std::string command_tag() const;
  /// ReadyForQuery: the transaction status ('I', 'T' or 'E').
  char status() const;
  /// DataRow: the values, text as sent (nullopt for NULL).
  std::vector<std::optional<std::string>> row() const;
  /// ParameterStatus: name and value.
  std::pair<std::string, std::string> parameter() const;
  /// A short comparable form: "1", "T", "D:[1,x]", "C:INSERT 0 1", "E:26000", "Z:T", "S:name=value".
  std::string summary() const;
};

/// Builders of frontend messages (text parameters; nullopt is NULL).
namespace raw {
std::string query(std::string_view sql);
std::string parse(std::string_view name, std::string_view sql, const std::vector<std::uint32_t>& param_oids = {});
/// `result_formats` as in Bind: empty = every column text, one code = that code for every
/// column (1 = binary), else one code per column.
std::string bind(std::string_view portal, std::string_view statement,
                 const std::vector<std::optional<std::string>>& params = {},
                 const std::vector<std::int16_t>& result_formats = {});
std::string describe(char kind, std::string_view name);  ///< kind 'S' (statement) or 'P' (portal)
std::string execute(std::string_view portal, std::int32_t max_rows = 0);
std::string close(char kind, std::string_view name);
std::string flush();
std::string sync();
/// Any message: tag, length word, body (for bytes no builder above makes).
std::string message(char tag, std::string_view body);
/// A big-endian int32, as the protocol writes it.
std::string be32(std::uint32_t v);
}  // namespace raw

/// Reads and drops what arrives on `fd` until the peer closes (true) or `limit` passes (false);
/// what arrived is appended to `got` if given.
bool peer_closed_within(int fd, std::chrono::milliseconds limit, std::string* got = nullptr);

class RawClient {
 public:
  /// Connects and authenticates with libpq (sslmode=disable is added); throws
  /// std::runtime_error with libpq's message on failure. `timeout` bounds every read, so a
  /// missing reply fails the test instead of hanging it.
  explicit RawClient(const std::string& conninfo, std::chrono::milliseconds timeout = std::chrono::seconds(30));

  /// The value of a ParameterStatus the server sent during startup ("" if none).
  std::string startup_parameter(const std::string& name) const;
  void send(std::string_view bytes);
  /// The next message; throws std::runtime_error if the connection closes or the read times out.
  RawMessage read();
  /// Messages up to and including the first with tag `tag`.
  std::vector<RawMessage> read_until(char tag);
  std::vector<RawMessage> read_until_ready() { return read_until('Z'); }
  /// Sends `bytes` and reads until ReadyForQuery.
  std::vector<RawMessage> round_trip(std::string_view bytes);
  /// A simple Query that must succeed; returns its rows' first values.
  std::vector<std::optional<std::string>> query_values(std::string_view sql);
  /// The client disappears without a Terminate message, as a killed process or a lost network
  /// does (both directions of the socket are shut; nothing is sent after this).
  void vanish();
  /// The socket, for tests that send bytes no builder makes.
  int socket_fd() const { return fd_; }

  /// Summaries joined by spaces. ParameterStatus of the proxy's own `shardline.*` settings
  /// (its version cookies) are left out, so a proxy's sequence compares equal to PostgreSQL's.
  static std::string summary(const std::vector<RawMessage>& messages);

 private:
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn_{nullptr, &PQfinish};
  int fd_ = -1;
  std::chrono::milliseconds timeout_;
  std::string in_;
};

}  // namespace shardline::testing
