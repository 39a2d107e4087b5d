// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it: secrets, the server side (clients
// logging in to the proxy) and the client side (the proxy logging in to a shard). Longer than our
// usual ~500 lines because both sides share the message grammar and its validation (attributes,
// nonces, saslnames, base64) in the anonymous namespace below, which no other file needs.

#include "proxy/protocol/scram.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <span>
#include <stdexcept>
#include <utility>
#include <vector>

#include "proxy/protocol/base64.hpp"

namespace shardline::proxy::protocol {
namespace {

using Key = std::array<unsigned char, 32>;

constexpr std::size_t kSaltLength = 16;        // what PostgreSQL generates
constexpr std::size_t kNonceRandomBytes = 18;  // base64: 24 printable characters
constexpr std::string_view kSecretPrefix = "SCRAM-SHA-256$";
constexpr std::string_view kPasswordFailed = "password authentication failed";

std::span<const unsigned char> bytes_of(std::string_view s) {
  return {reinterpret_cast<const unsigned char*>(s.data()), s.size()};
}

[[nodiscard]] bool hmac_sha256(std::span<const unsigned char> key, std::string_view message,
                               Key& out) {
  unsigned int length = 0;
  if (key.size() > static_cast<std::size_t>(INT_MAX)) return false;
  const unsigned char* result =
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), bytes_of(message).data(),
           message.size(), out.data(), &length);
  return result != nullptr && length == out.size();
}

[[nodiscard]] bool sha256(std::span<const unsigned char> data, Key& out) {
  unsigned int length = 0;
  return EVP_Digest(data.data(), data.size(), out.data(), &length, EVP_sha256(), nullptr) == 1 &&
         length == out.size();
}

/// The keys derived from a password: SaltedPassword feeds both, ClientKey only the client.
struct DerivedKeys {
  Key client_key{};
  Key stored_key{};
  Key server_key{};
  ~DerivedKeys() {
    OPENSSL_cleanse(client_key.data(), client_key.size());
    OPENSSL_cleanse(stored_key.data(), stored_key.size());
    OPENSSL_cleanse(server_key.data(), server_key.size());
  }
};

/// RFC 5802 section 3: SaltedPassword = Hi(password, salt, i) (= PBKDF2-HMAC-SHA-256), then
/// ClientKey, StoredKey = H(ClientKey) and ServerKey.
[[nodiscard]] bool derive_keys(std::string_view password, std::string_view salt, int iterations,
                               DerivedKeys& out) {
  if (iterations < 1 || password.size() > static_cast<std::size_t>(INT_MAX) ||
      salt.size() > static_cast<std::size_t>(INT_MAX)) {
    return false;
  }
  Key salted{};
  const bool ok =
      PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        bytes_of(salt).data(), static_cast<int>(salt.size()), iterations,
                        EVP_sha256(), static_cast<int>(salted.size()), salted.data()) == 1 &&
      hmac_sha256(salted, "Client Key", out.client_key) && sha256(out.client_key, out.stored_key) &&
      hmac_sha256(salted, "Server Key", out.server_key);
  OPENSSL_cleanse(salted.data(), salted.size());
  return ok;
}

/// derive_keys for the proxy's logins to its backends, remembered: a server keeps one salt and
/// iteration count per role, so only the first login to it pays the PBKDF2 (thousands of
/// HMACs on the I/O thread) and every reconnect after it costs two HMACs (as PgBouncer does).
/// A few entries per thread; holding them is no worse than holding the password itself.
[[nodiscard]] bool derive_keys_cached(std::string_view password, std::string_view salt, int iterations,
                                      DerivedKeys& out) {
  struct Entry {
    std::string password, salt;
    int iterations = 0;
    DerivedKeys keys;
  };
  thread_local std::vector<Entry> cache;
  for (const Entry& e : cache) {
    if (e.iterations == iterations && e.salt == salt && e.password == password) {
      out.client_key = e.keys.client_key;
      out.stored_key = e.keys.stored_key;
      out.server_key = e.keys.server_key;
      return true;
    }
  }
  if (!derive_keys(password, salt, iterations, out)) return false;
  if (cache.size() >= 16) cache.erase(cache.begin());
  Entry& e = cache.emplace_back();
  e.password = std::string(password);
  e.salt = std::string(salt);
  e.iterations = iterations;
  e.keys.client_key = out.client_key;
  e.keys.stored_key = out.stored_key;
  e.keys.server_key = out.server_key;
  return true;
}

std::optional<std::string> random_base64(std::size_t byte_count) {
  std::vector<unsigned char> bytes(byte_count);
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) return std::nullopt;
  return base64_encode(std::span<const unsigned char>(bytes));
}

/// RFC 5802 "printable": %x21-2B / %x2D-7E, i.e. visible ASCII except ','.
bool is_valid_nonce(std::string_view nonce) {
  if (nonce.empty()) return false;
  for (const char c : nonce) {
    if (c < 0x21 || c > 0x7E || c == ',') return false;
  }
  return true;
}

/// RFC 5802 saslname: no ',' and '=' only in the escapes "=2C" and "=3D"; no NUL.
bool is_valid_saslname(std::string_view name) {
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '\0' || name[i] == ',') return false;
    if (name[i] == '=') {
      const std::string_view escape = name.substr(i, 3);
      if (escape != "=2C" && escape != "=3D") return false;
      i += 2;
    }
  }
  return true;
}

std::string escape_saslname(std::string_view name) {
  std::string out;
  for (const char c : name) {
    if (c == '=') {
      out += "=3D";
    } else if (c == ',') {
      out += "=2C";
    } else {
      out += c;
    }
  }
  return out;
}

/// A positive decimal integer that fits in int, digits only (no sign, no spaces).
std::optional<int> parse_positive_int(std::string_view text) {
  if (text.empty()) return std::nullopt;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 1) return std::nullopt;
  return value;
}

/// One "<letter>=<value>" attribute of a SCRAM message; `offset` is where its letter starts.
struct Attribute {
  char name;
  std::string_view value;
  std::size_t offset;
};

/// Splits a SCRAM message into attributes. Values cannot contain ',' (the RFC grammar escapes it),
/// so a plain split is exact.
Result<std::vector<Attribute>> split_attributes(std::string_view text, std::string_view what) {
  if (text.empty()) return Error{"malformed SCRAM " + std::string(what) + ": empty message"};
  std::vector<Attribute> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    const std::string_view piece =
        text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    const bool letter = !piece.empty() && ((piece[0] >= 'a' && piece[0] <= 'z') ||
                                           (piece[0] >= 'A' && piece[0] <= 'Z'));
    if (!letter || piece.size() < 2 || piece[1] != '=') {
      return Error{"malformed SCRAM " + std::string(what) + ": expected attribute \"<letter>=\" at offset " +
                   std::to_string(start)};
    }
    out.push_back(Attribute{piece[0], piece.substr(2), start});
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

/// Letters RFC 5802 assigns; an optional extension may not reuse them.
bool is_reserved_attribute(char name) {
  constexpr std::string_view kReserved = "acefimnprsv";
  return kReserved.find(name) != std::string_view::npos;
}

Error malformed(std::string_view what, std::string_view detail) {
  return Error{"malformed SCRAM " + std::string(what) + ": " + std::string(detail)};
}

Error attribute_error(std::string_view what, char expected, const std::vector<Attribute>& attrs,
                      std::size_t index) {
  if (index >= attrs.size()) {
    return malformed(what, std::string("missing attribute \"") + expected + "=\"");
  }
  return malformed(what, std::string("expected attribute \"") + expected + "=\" but found \"" +
                             attrs[index].name + "=\"");
}

Error channel_binding_unsupported() {
  return Error{
      "SCRAM channel binding (p=) is not supported by this server; connect with "
      "SCRAM-SHA-256 without channel binding (e.g. libpq channel_binding=disable or prefer)"};
}

}  // namespace

// ---- secrets -----------------------------------------------------------------------------------

ScramSecret make_scram_secret(std::string_view password, std::string_view salt, int iterations) {
  if (iterations < 1) throw std::invalid_argument("SCRAM iteration count must be at least 1");
  if (salt.empty()) throw std::invalid_argument("SCRAM salt must not be empty");
  DerivedKeys keys;
  if (!derive_keys(password, salt, iterations, keys)) {
    throw std::runtime_error("OpenSSL failed to derive SCRAM keys");
  }
  ScramSecret secret;
  secret.salt = std::string(salt);
  secret.iterations = iterations;
  secret.stored_key = keys.stored_key;
  secret.server_key = keys.server_key;
  return secret;
}

ScramSecret make_scram_secret(std::string_view password, int iterations) {
  std::string salt(kSaltLength, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size())) !=
      1) {
    throw std::runtime_error("OpenSSL could not generate a random SCRAM salt");
  }
  return make_scram_secret(password, salt, iterations);
}

std::optional<ScramSecret> parse_scram_secret(std::string_view text) {
  if (!text.starts_with(kSecretPrefix)) return std::nullopt;
  text.remove_prefix(kSecretPrefix.size());
  // <iterations>:<salt>$<StoredKey>:<ServerKey>; base64 has no ':' or '$', so splits are exact.
  const std::size_t dollar = text.find('$');
  if (dollar == std::string_view::npos) return std::nullopt;
  const std::string_view params = text.substr(0, dollar);
  const std::string_view keys = text.substr(dollar + 1);
  const std::size_t colon1 = params.find(':');
  const std::size_t colon2 = keys.find(':');
  if (colon1 == std::string_view::npos || colon2 == std::string_view::npos) return std::nullopt;

  const std::optional<int> iterations = parse_positive_int(params.substr(0, colon1));
  std::optional<std::string> salt = base64_decode(params.substr(colon1 + 1));
  const std::optional<std::string> stored_key = base64_decode(keys.substr(0, colon2));
  const std::optional<std::string> server_key = base64_decode(keys.substr(colon2 + 1));
  if (!iterations || !salt || salt->empty() || !stored_key || stored_key->size() != 32 ||
      !server_key || server_key->size() != 32) {
    return std::nullopt;
  }
  ScramSecret secret;
  secret.salt = std::move(*salt);
  secret.iterations = *iterations;
  std::copy(stored_key->begin(), stored_key->end(), secret.stored_key.begin());
  std::copy(server_key->begin(), server_key->end(), secret.server_key.begin());
  return secret;
}

std::string format_scram_secret(const ScramSecret& secret) {
  return std::string(kSecretPrefix) + std::to_string(secret.iterations) + ":" +
         base64_encode(secret.salt) + "$" + base64_encode(secret.stored_key) + ":" +
         base64_encode(secret.server_key);
}

// ---- server ------------------------------------------------------------------------------------

ScramServer::ScramServer(ScramSecret secret) : secret_(std::move(secret)) {}

ScramServer::ScramServer(ScramSecret secret, std::string fixed_server_nonce)
    : secret_(std::move(secret)), fixed_server_nonce_(std::move(fixed_server_nonce)) {}

Result<std::string> ScramServer::on_client_first(std::string_view client_first) {
  constexpr std::string_view kWhat = "client-first-message";
  if (state_ != State::ExpectClientFirst) {
    state_ = State::Done;
    return Error{"SCRAM client-first-message received out of order"};
  }
  state_ = State::Done;  // any early return below ends the exchange

  // GS2 header: cbind-flag "," [authzid] ","
  if (client_first.empty()) return malformed(kWhat, "empty message");
  const char flag = client_first[0];
  if (flag == 'p') return channel_binding_unsupported();
  if (flag != 'n' && flag != 'y') {
    return malformed(kWhat, "channel binding flag must be 'n', 'y' or 'p'");
  }
  if (client_first.size() < 2 || client_first[1] != ',') {
    return malformed(kWhat, "expected ',' after the channel binding flag");
  }
  if (client_first.substr(2).starts_with("a=")) {
    return Error{"SCRAM authorization identity (a=) is not supported"};
  }
  if (client_first.size() < 3 || client_first[2] != ',') {
    return malformed(kWhat, "expected ',' after the GS2 header");
  }
  const std::string_view bare = client_first.substr(3);

  Result<std::vector<Attribute>> split = split_attributes(bare, kWhat);
  if (!split.ok()) return Error{split.error()};
  const std::vector<Attribute>& attrs = split.value();
  if (attrs[0].name == 'm') return Error{"unsupported mandatory SCRAM extension (m=)"};
  if (attrs[0].name != 'n') return attribute_error(kWhat, 'n', attrs, 0);
  // The user name is ignored (PostgreSQL uses the startup packet's), but must be well formed.
  if (!is_valid_saslname(attrs[0].value)) return malformed(kWhat, "invalid user name in n=");
  if (attrs.size() < 2 || attrs[1].name != 'r') return attribute_error(kWhat, 'r', attrs, 1);
  if (!is_valid_nonce(attrs[1].value)) {
    return malformed(kWhat, "nonce must be non-empty printable ASCII without ','");
  }
  for (std::size_t i = 2; i < attrs.size(); ++i) {
    if (is_reserved_attribute(attrs[i].name)) {
      return malformed(kWhat, std::string("unexpected attribute \"") + attrs[i].name + "=\"");
    }
  }

  if (secret_.iterations < 1 || secret_.salt.empty()) {
    return Error{"invalid SCRAM secret configured for this user"};
  }
  std::string server_nonce;
  if (fixed_server_nonce_.empty()) {
    std::optional<std::string> random = random_base64(kNonceRandomBytes);
    if (!random) return Error{"could not generate a random SCRAM nonce"};
    server_nonce = std::move(*random);
  } else {
    if (!is_valid_nonce(fixed_server_nonce_)) return Error{"invalid fixed SCRAM server nonce"};
    server_nonce = fixed_server_nonce_;
  }

  gs2_header_ = std::string(client_first.substr(0, 3));
  client_first_bare_ = std::string(bare);
  nonce_ = std::string(attrs[1].value) + server_nonce;
  server_first_ = "r=" + nonce_ + ",s=" + base64_encode(secret_.salt) +
                  ",i=" + std::to_string(secret_.iterations);
  state_ = State::ExpectClientFinal;
  return server_first_;
}

Result<std::string> ScramServer::on_client_final(std::string_view client_final) {
  constexpr std::string_view kWhat = "client-final-message";
  if (state_ != State::ExpectClientFinal) {
    state_ = State::Done;
    return Error{"SCRAM client-final-message received out of order"};
  }
  state_ = State::Done;  // one attempt only, success or not

  Result<std::vector<Attribute>> split = split_attributes(client_final, kWhat);
  if (!split.ok()) return Error{split.error()};
  const std::vector<Attribute>& attrs = split.value();

  if (attrs[0].name != 'c') return attribute_error(kWhat, 'c', attrs, 0);
  const std::optional<std::string> binding = base64_decode(attrs[0].value);
  if (!binding) return malformed(kWhat, "c= is not valid base64");
  if (*binding != gs2_header_) {
    if (binding->starts_with("p")) return channel_binding_unsupported();
    return Error{"SCRAM channel binding check failed: c= does not match the client-first-message"};
  }
  if (attrs.size() < 2 || attrs[1].name != 'r') return attribute_error(kWhat, 'r', attrs, 1);
  if (attrs[1].value != nonce_) return Error{"SCRAM nonce mismatch"};
  if (attrs.back().name != 'p' || attrs.size() < 3) {
    return malformed(kWhat, "the last attribute must be the proof \"p=\"");
  }
  for (std::size_t i = 2; i + 1 < attrs.size(); ++i) {
    if (is_reserved_attribute(attrs[i].name)) {
      return malformed(kWhat, std::string("unexpected attribute \"") + attrs[i].name + "=\"");
    }
  }
  const std::optional<std::string> proof = base64_decode(attrs.back().value);
  if (!proof || proof->size() != 32) {
    return malformed(kWhat, "p= must be the base64 of a 32-byte proof");
  }

  // AuthMessage = client-first-bare "," server-first "," client-final-without-proof
  const std::string_view without_proof = client_final.substr(0, attrs.back().offset - 1);
  std::string auth_message;
  auth_message.reserve(client_first_bare_.size() + server_first_.size() + without_proof.size() + 2);
  auth_message.append(client_first_bare_).append(",").append(server_first_).append(",").append(
      without_proof);

  // ClientKey = proof XOR HMAC(StoredKey, AuthMessage); the client knows the password iff
  // H(ClientKey) == StoredKey.
  Key client_signature{};
  if (!hmac_sha256(secret_.stored_key, auth_message, client_signature)) {
    return Error{"SCRAM verification failed inside OpenSSL"};
  }
  Key client_key{};
  for (std::size_t i = 0; i < client_key.size(); ++i) {
    client_key[i] = static_cast<unsigned char>(static_cast<unsigned char>((*proof)[i]) ^
                                               client_signature[i]);
  }
  Key computed_stored_key{};
  const bool hashed = sha256(client_key, computed_stored_key);
  OPENSSL_cleanse(client_key.data(), client_key.size());
  if (!hashed) return Error{"SCRAM verification failed inside OpenSSL"};
  if (CRYPTO_memcmp(computed_stored_key.data(), secret_.stored_key.data(),
                    secret_.stored_key.size()) != 0) {
    return Error{std::string(kPasswordFailed)};
  }

  Key server_signature{};
  if (!hmac_sha256(secret_.server_key, auth_message, server_signature)) {
    return Error{"SCRAM verification failed inside OpenSSL"};
  }
  return "v=" + base64_encode(server_signature);
}

// ---- client ------------------------------------------------------------------------------------

ScramClient::ScramClient(std::string password) : password_(std::move(password)) {
  std::optional<std::string> nonce = random_base64(kNonceRandomBytes);
  if (!nonce) throw std::runtime_error("OpenSSL could not generate a random SCRAM nonce");
  client_nonce_ = std::move(*nonce);
}

ScramClient::ScramClient(std::string password, std::string fixed_client_nonce,
                         std::string username)
    : password_(std::move(password)),
      client_nonce_(std::move(fixed_client_nonce)),
      username_(std::move(username)) {
  if (!is_valid_nonce(client_nonce_)) {
    throw std::invalid_argument("SCRAM client nonce must be non-empty printable ASCII without ','");
  }
}

ScramClient::~ScramClient() {
  // data() points at capacity()+1 bytes; wipe all of them, not only the current size.
  OPENSSL_cleanse(password_.data(), password_.capacity());
}

std::string ScramClient::client_first() {
  client_first_bare_ = "n=" + escape_saslname(username_) + ",r=" + client_nonce_;
  state_ = State::ExpectServerFirst;
  return "n,," + client_first_bare_;
}

Result<std::string> ScramClient::on_server_first(std::string_view server_first) {
  constexpr std::string_view kWhat = "server-first-message";
  if (state_ != State::ExpectServerFirst) {
    state_ = State::Done;
    return Error{"SCRAM server-first-message received out of order"};
  }
  state_ = State::Done;

  Result<std::vector<Attribute>> split = split_attributes(server_first, kWhat);
  if (!split.ok()) return Error{split.error()};
  const std::vector<Attribute>& attrs = split.value();
  if (attrs[0].name == 'm') return Error{"server requires an unsupported SCRAM extension (m=)"};
  if (attrs[0].name != 'r') return attribute_error(kWhat, 'r', attrs, 0);
  if (attrs.size() < 2 || attrs[1].name != 's') return attribute_error(kWhat, 's', attrs, 1);
  if (attrs.size() < 3 || attrs[2].name != 'i') return attribute_error(kWhat, 'i', attrs, 2);
  if (attrs.size() > 3) {
    return malformed(kWhat, std::string("unexpected attribute \"") + attrs[3].name +
                                "=\" after the iteration count");
  }

  const std::string_view nonce = attrs[0].value;
  if (!is_valid_nonce(nonce)) {
    return malformed(kWhat, "nonce must be non-empty printable ASCII without ','");
  }
  if (nonce.size() > kMaxScramNonce) {
    return malformed(kWhat, "the nonce is " + std::to_string(nonce.size()) + " characters long, more than the " +
                                std::to_string(kMaxScramNonce) + " the proxy accepts");
  }
  if (nonce.size() <= client_nonce_.size() || !nonce.starts_with(client_nonce_)) {
    return Error{"SCRAM nonce mismatch: the server nonce does not extend the client nonce"};
  }
  const std::optional<std::string> salt = base64_decode(attrs[1].value);
  if (!salt || salt->empty()) return malformed(kWhat, "s= must be a non-empty base64 salt");
  const std::optional<int> iterations = parse_positive_int(attrs[2].value);
  if (!iterations) return malformed(kWhat, "i= must be an iteration count of at least 1");
  if (*iterations > kMaxScramIterations) {
    return malformed(kWhat, "the server asks for " + std::to_string(*iterations) +
                                " iterations, more than the " + std::to_string(kMaxScramIterations) +
                                " the proxy computes");
  }

  DerivedKeys keys;
  if (!derive_keys_cached(password_, *salt, *iterations, keys)) {
    return Error{"SCRAM key derivation failed inside OpenSSL"};
  }
  // No channel binding: c= is base64("n,,").
  const std::string without_proof = "c=" + base64_encode(std::string_view("n,,")) + ",r=" +
                                    std::string(nonce);
  std::string auth_message = client_first_bare_;
  auth_message.append(",").append(server_first).append(",").append(without_proof);

  Key client_signature{};
  if (!hmac_sha256(keys.stored_key, auth_message, client_signature) ||
      !hmac_sha256(keys.server_key, auth_message, expected_server_signature_)) {
    return Error{"SCRAM proof computation failed inside OpenSSL"};
  }
  Key proof{};
  for (std::size_t i = 0; i < proof.size(); ++i) {
    proof[i] = static_cast<unsigned char>(keys.client_key[i] ^ client_signature[i]);
  }
  state_ = State::ExpectServerFinal;
  return without_proof + ",p=" + base64_encode(proof);
}

Result<void> ScramClient::on_server_final(std::string_view server_final) {
  constexpr std::string_view kWhat = "server-final-message";
  if (state_ != State::ExpectServerFinal) {
    state_ = State::Done;
    return Error{"SCRAM server-final-message received out of order"};
  }
  state_ = State::Done;

  Result<std::vector<Attribute>> split = split_attributes(server_final, kWhat);
  if (!split.ok()) return Error{split.error()};
  const std::vector<Attribute>& attrs = split.value();
  if (attrs.size() != 1) return malformed(kWhat, "expected exactly one attribute (v= or e=)");
  if (attrs[0].name == 'e') {
    return Error{"server rejected SCRAM authentication: " + std::string(attrs[0].value)};
  }
  if (attrs[0].name != 'v') return attribute_error(kWhat, 'v', attrs, 0);
  const std::optional<std::string> signature = base64_decode(attrs[0].value);
  if (!signature || signature->size() != expected_server_signature_.size()) {
    return malformed(kWhat, "v= must be the base64 of a 32-byte signature");
  }
  if (CRYPTO_memcmp(signature->data(), expected_server_signature_.data(),
                    expected_server_signature_.size()) != 0) {
    return Error{"invalid SCRAM server signature: the server does not hold this user's secret"};
  }
  return {};
}

}  // namespace shardline::proxy::protocol
