#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/protocol/result.hpp"

/// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it inside SASL authentication:
/// https://www.postgresql.org/docs/current/sasl-authentication.html
/// Differences from the RFCs that PostgreSQL makes and we follow: the user name in the client's
/// "n=" is ignored (the startup packet's user counts), and no channel binding is offered, so the
/// GS2 header is "n,," or "y,," and the mechanism is plain SCRAM-SHA-256 (never -PLUS).
/// Passwords are used as their raw bytes: PostgreSQL applies SASLprep first, which is the
/// identity for ASCII passwords without control characters but may differ for other Unicode.
namespace shardline::proxy::protocol {

/// The SASL mechanism name in AuthenticationSASL / SASLInitialResponse.
inline constexpr std::string_view kScramSha256Mechanism = "SCRAM-SHA-256";
/// PostgreSQL's default iteration count (scram_iterations) for newly stored secrets.
inline constexpr int kDefaultScramIterations = 4096;

/// What a server stores for a SCRAM user (like pg_authid's SCRAM secret): enough to verify a
/// client's proof without knowing the password.
struct ScramSecret {
  std::string salt;  ///< raw bytes
  int iterations = 0;
  std::array<unsigned char, 32> stored_key{};  ///< H(HMAC(SaltedPassword, "Client Key"))
  std::array<unsigned char, 32> server_key{};  ///< HMAC(SaltedPassword, "Server Key")
};

/// Derives a secret with a random 16-byte salt (PostgreSQL's salt length).
/// Throws std::invalid_argument if iterations < 1 and std::runtime_error if OpenSSL fails:
/// secrets are made at configuration time, a boundary where exceptions are converted.
ScramSecret make_scram_secret(std::string_view password, int iterations = kDefaultScramIterations);
/// Same with a given salt (deterministic; for tests and for re-deriving a known secret).
ScramSecret make_scram_secret(std::string_view password, std::string_view salt, int iterations);

/// Parses PostgreSQL's stored form
/// "SCRAM-SHA-256$<iterations>:<salt base64>$<StoredKey base64>:<ServerKey base64>".
/// nullopt if anything is malformed (so a config can say which user's secret is bad).
std::optional<ScramSecret> parse_scram_secret(std::string_view text);
/// The inverse of parse_scram_secret: what PostgreSQL would store in pg_authid.rolpassword.
std::string format_scram_secret(const ScramSecret& secret);

/// Server side: the proxy verifying an application that connects to it.
/// One instance per authentication exchange; the methods must be called in order, once each.
/// After any error the exchange is over and later calls fail too.
class ScramServer {
 public:
  explicit ScramServer(ScramSecret secret);
  /// Tests only: a fixed server nonce part (appended to the client's nonce) instead of a random
  /// one, so RFC test vectors can be reproduced byte for byte.
  ScramServer(ScramSecret secret, std::string fixed_server_nonce);

  /// SASLInitialResponse data (client-first-message) -> server-first-message, or an error.
  Result<std::string> on_client_first(std::string_view client_first);
  /// SASLResponse data (client-final-message) -> server-final-message ("v=..."), or the error
  /// "password authentication failed" when the proof is wrong (or another error if malformed).
  Result<std::string> on_client_final(std::string_view client_final);

 private:
  enum class State { ExpectClientFirst, ExpectClientFinal, Done };

  ScramSecret secret_;
  std::string fixed_server_nonce_;  ///< empty: random
  State state_ = State::ExpectClientFirst;
  std::string gs2_header_;           ///< "n,," or "y,," as the client sent it
  std::string client_first_bare_;
  std::string server_first_;
  std::string nonce_;                ///< client nonce + server nonce
};

/// What the proxy accepts from a backend's server-first-message. The key derivation runs on the
/// I/O thread, so a server (or something posing as one) asking for more iterations would stall
/// every client of the proxy: PostgreSQL's default is 4096 (scram_iterations), 100,000 is
/// ~25 times that and costs tens of milliseconds. PostgreSQL's own nonces are under 64 chars.
inline constexpr int kMaxScramIterations = 100000;
inline constexpr std::size_t kMaxScramNonce = 256;

/// Client side: the proxy authenticating to a PostgreSQL backend.
/// One instance per authentication exchange; call client_first, on_server_first, on_server_final
/// in that order. After any error the exchange is over and later calls fail too.
class ScramClient {
 public:
  /// Throws std::runtime_error only if OpenSSL cannot produce random bytes for the nonce.
  explicit ScramClient(std::string password);
  /// Tests only: a fixed client nonce (printable ASCII except ',') and a user name for "n="
  /// (PostgreSQL ignores it; RFC test vectors include it). Throws std::invalid_argument for an
  /// unusable nonce.
  ScramClient(std::string password, std::string fixed_client_nonce, std::string username);
  ~ScramClient();
  ScramClient(const ScramClient&) = delete;
  ScramClient& operator=(const ScramClient&) = delete;
  ScramClient(ScramClient&&) noexcept = default;
  ScramClient& operator=(ScramClient&&) noexcept = default;

  /// The SASLInitialResponse data: "n,,n=<user>,r=<nonce>" (user empty unless set for tests).
  std::string client_first();
  /// AuthenticationSASLContinue data (server-first-message) -> client-final-message.
  Result<std::string> on_server_first(std::string_view server_first);
  /// AuthenticationSASLFinal data (server-final-message): succeeds only when the server proved
  /// it knows the secret, so a backend impersonator is refused.
  Result<void> on_server_final(std::string_view server_final);

 private:
  enum class State { Start, ExpectServerFirst, ExpectServerFinal, Done };

  std::string password_;
  std::string client_nonce_;
  std::string username_;
  State state_ = State::Start;
  std::string client_first_bare_;
  std::array<unsigned char, 32> expected_server_signature_{};
};

}  // namespace shardline::proxy::protocol
