#include "proxy/protocol/scram.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <string>
#include <vector>

#include "proxy/protocol/base64.hpp"

namespace shardline::proxy::protocol {
namespace {

// RFC 7677 section 3 (SCRAM-SHA-256 example exchange).
constexpr std::string_view kRfcClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerNoncePart = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kRfcSaltB64 = "W22ZaJ0SNY7soEsUEjb6gQ==";
constexpr std::string_view kRfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kRfcClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kRfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

// Produced by a real PostgreSQL 15 server:
//   SET password_encryption='scram-sha-256'; CREATE ROLE x PASSWORD 'pw';
//   SELECT rolpassword FROM pg_authid WHERE rolname='x';
constexpr std::string_view kPostgresSecretForPw =
    "SCRAM-SHA-256$4096:tD+QxoqdCErbOd6ZXJlh0Q==$109IGm8v9xes5OUGYNdBBH3fmnSJnKXJcq0SfD7xTvc=:"
    "A/iRvM5mKeXROQaulezMSvkHipLaEjzxrS6KtFt764Y=";

ScramSecret rfc_secret() {
  return make_scram_secret("pencil", base64_decode(kRfcSaltB64).value(), 4096);
}

/// Runs a full exchange between our client and our server; returns the first error or "".
std::string exchange(ScramClient& client, ScramServer& server) {
  auto server_first = server.on_client_first(client.client_first());
  if (!server_first.ok()) return "server first: " + server_first.error();
  auto client_final = client.on_server_first(server_first.value());
  if (!client_final.ok()) return "client final: " + client_final.error();
  auto server_final = server.on_client_final(client_final.value());
  if (!server_final.ok()) return server_final.error();
  auto verified = client.on_server_final(server_final.value());
  if (!verified.ok()) return "client verify: " + verified.error();
  return "";
}

/// An independent client-final computation straight from RFC 5802 with OpenSSL, so tests can
/// send what our ScramClient never sends (GS2 "y,,", extensions).
std::string hand_made_client_final(std::string_view password, const ScramSecret& secret,
                                   std::string_view client_first_bare,
                                   std::string_view server_first,
                                   std::string_view without_proof) {
  std::array<unsigned char, 32> salted{}, client_key{}, stored_key{}, signature{};
  unsigned int len = 0;
  EXPECT_EQ(1, PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                                 reinterpret_cast<const unsigned char*>(secret.salt.data()),
                                 static_cast<int>(secret.salt.size()), secret.iterations,
                                 EVP_sha256(), 32, salted.data()));
  HMAC(EVP_sha256(), salted.data(), 32, reinterpret_cast<const unsigned char*>("Client Key"), 10,
       client_key.data(), &len);
  EVP_Digest(client_key.data(), 32, stored_key.data(), &len, EVP_sha256(), nullptr);
  const std::string auth = std::string(client_first_bare) + "," + std::string(server_first) +
                           "," + std::string(without_proof);
  HMAC(EVP_sha256(), stored_key.data(), 32, reinterpret_cast<const unsigned char*>(auth.data()),
       auth.size(), signature.data(), &len);
  std::array<unsigned char, 32> proof{};
  for (int i = 0; i < 32; ++i) proof[i] = client_key[i] ^ signature[i];
  return std::string(without_proof) + ",p=" + base64_encode(proof);
}

// ---- RFC 7677 test vector ----------------------------------------------------------------------

TEST(ScramRfc7677, ClientProducesTheRfcMessages) {
  ScramClient client("pencil", std::string(kRfcClientNonce), "user");
  EXPECT_EQ(client.client_first(), kRfcClientFirst);
  auto client_final = client.on_server_first(kRfcServerFirst);
  ASSERT_TRUE(client_final.ok()) << client_final.error();
  EXPECT_EQ(client_final.value(), kRfcClientFinal);
  auto verified = client.on_server_final(kRfcServerFinal);
  EXPECT_TRUE(verified.ok()) << verified.error();
}

TEST(ScramRfc7677, ServerProducesTheRfcMessages) {
  ScramServer server(rfc_secret(), std::string(kRfcServerNoncePart));
  auto server_first = server.on_client_first(kRfcClientFirst);
  ASSERT_TRUE(server_first.ok()) << server_first.error();
  EXPECT_EQ(server_first.value(), kRfcServerFirst);
  auto server_final = server.on_client_final(kRfcClientFinal);
  ASSERT_TRUE(server_final.ok()) << server_final.error();
  EXPECT_EQ(server_final.value(), kRfcServerFinal);
}

TEST(ScramRfc7677, ClientRejectsAForgedServerSignature) {
  ScramClient client("pencil", std::string(kRfcClientNonce), "user");
  (void)client.client_first();
  ASSERT_TRUE(client.on_server_first(kRfcServerFirst).ok());
  // Same length, last significant character changed.
  auto verified = client.on_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G0=");
  ASSERT_FALSE(verified.ok());
  EXPECT_NE(verified.error().find("invalid SCRAM server signature"), std::string::npos);
}

TEST(ScramRfc7677, WrongPasswordGivesADifferentProof) {
  ScramClient client("pencil2", std::string(kRfcClientNonce), "user");
  (void)client.client_first();
  auto client_final = client.on_server_first(kRfcServerFirst);
  ASSERT_TRUE(client_final.ok());
  EXPECT_NE(client_final.value(), kRfcClientFinal);
  ScramServer server(rfc_secret(), std::string(kRfcServerNoncePart));
  ASSERT_TRUE(server.on_client_first(kRfcClientFirst).ok());
  auto server_final = server.on_client_final(client_final.value());
  ASSERT_FALSE(server_final.ok());
  EXPECT_EQ(server_final.error(), "password authentication failed");
}

// ---- round trips ---------------------------------------------------------------------------------

TEST(ScramRoundTrip, RightPasswordAuthenticatesBothWays) {
  ScramClient client("correct horse");
  ScramServer server(make_scram_secret("correct horse"));
  EXPECT_EQ(exchange(client, server), "");
}

TEST(ScramRoundTrip, WrongPasswordIsRejected) {
  ScramClient client("correct horse!");
  ScramServer server(make_scram_secret("correct horse"));
  EXPECT_EQ(exchange(client, server), "password authentication failed");
}

TEST(ScramRoundTrip, EmptyAndBinaryPasswords) {
  const std::string binary("p\0w\xff,=", 6);
  {
    ScramClient client(binary);
    ScramServer server(make_scram_secret(binary, 7));
    EXPECT_EQ(exchange(client, server), "");
  }
  {
    ScramClient client("");
    ScramServer server(make_scram_secret("", 1));
    EXPECT_EQ(exchange(client, server), "");
  }
  {
    ScramClient client("");
    ScramServer server(make_scram_secret(binary, 1));
    EXPECT_EQ(exchange(client, server), "password authentication failed");
  }
}

TEST(ScramRoundTrip, ClientMessagesHavePostgresShape) {
  ScramClient client("pw");
  const std::string first = client.client_first();
  ASSERT_TRUE(first.starts_with("n,,n=,r="));
  const std::string nonce = first.substr(8);
  EXPECT_EQ(nonce.size(), 24u);  // 18 random bytes, base64
  EXPECT_TRUE(base64_decode(nonce).has_value());
  EXPECT_NE(ScramClient("pw").client_first(), first);  // nonces are random
}

TEST(ScramRoundTrip, ServerNonceExtendsClientNonceRandomly) {
  const ScramSecret secret = make_scram_secret("pw", "0123456789abcdef", 4096);
  ScramServer a(secret), b(secret);
  auto first_a = a.on_client_first("n,,n=,r=clientnonce");
  auto first_b = b.on_client_first("n,,n=,r=clientnonce");
  ASSERT_TRUE(first_a.ok() && first_b.ok());
  EXPECT_TRUE(first_a.value().starts_with("r=clientnonce"));
  EXPECT_TRUE(first_a.value().ends_with(",s=MDEyMzQ1Njc4OWFiY2RlZg==,i=4096"));
  EXPECT_EQ(first_a.value().size(), std::string("r=clientnonce,s=MDEyMzQ1Njc4OWFiY2RlZg==,i=4096").size() + 24);
  EXPECT_NE(first_a.value(), first_b.value());
}

TEST(ScramRoundTrip, ServerAcceptsGs2YAndExtensionsAndIgnoresUserName) {
  const ScramSecret secret = rfc_secret();
  ScramServer server(secret, "SERVER");
  const std::string bare = "n=someone=2Celse,r=abc,x=ext";
  auto first = server.on_client_first("y,," + bare);
  ASSERT_TRUE(first.ok()) << first.error();
  EXPECT_EQ(first.value(), "r=abcSERVER,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
  const std::string final_msg =
      hand_made_client_final("pencil", secret, bare, first.value(), "c=eSws,r=abcSERVER,z=1");
  auto server_final = server.on_client_final(final_msg);
  EXPECT_TRUE(server_final.ok()) << server_final.error();
}

// ---- real PostgreSQL secret ------------------------------------------------------------------

TEST(ScramPostgresSecret, ParsesARealPgAuthidSecret) {
  auto secret = parse_scram_secret(kPostgresSecretForPw);
  ASSERT_TRUE(secret.has_value());
  EXPECT_EQ(secret->iterations, 4096);
  EXPECT_EQ(secret->salt.size(), 16u);
  EXPECT_EQ(format_scram_secret(*secret), kPostgresSecretForPw);
  // Our derivation with PostgreSQL's salt reproduces PostgreSQL's keys.
  const ScramSecret ours = make_scram_secret("pw", secret->salt, 4096);
  EXPECT_EQ(ours.stored_key, secret->stored_key);
  EXPECT_EQ(ours.server_key, secret->server_key);
}

TEST(ScramPostgresSecret, ClientWithRightPasswordVerifiesAgainstIt) {
  auto secret = parse_scram_secret(kPostgresSecretForPw);
  ASSERT_TRUE(secret.has_value());
  ScramClient client("pw");
  ScramServer server(*secret);
  EXPECT_EQ(exchange(client, server), "");
}

TEST(ScramPostgresSecret, ClientWithWrongPasswordFails) {
  auto secret = parse_scram_secret(kPostgresSecretForPw);
  ASSERT_TRUE(secret.has_value());
  ScramClient client("pW");
  ScramServer server(*secret);
  EXPECT_EQ(exchange(client, server), "password authentication failed");
}

TEST(ScramSecretFormat, RejectsMalformedSecrets) {
  const std::string salt = "tD+QxoqdCErbOd6ZXJlh0Q==";
  const std::string key = "109IGm8v9xes5OUGYNdBBH3fmnSJnKXJcq0SfD7xTvc=";
  const std::string key31 = base64_encode(std::string(31, 'k'));
  const std::vector<std::string> bad = {
      "",
      "SCRAM-SHA-256$",
      "md5fb12b880d7b52e2ba1e55afe59ba4d3b",
      "scram-sha-256$4096:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$4096:" + salt + "$" + key,          // no ServerKey
      "SCRAM-SHA-256$4096" + salt + "$" + key + ":" + key,  // no ':' after iterations
      "SCRAM-SHA-256$0:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$-1:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$+5:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$99999999999:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$:" + salt + "$" + key + ":" + key,
      "SCRAM-SHA-256$4096:$" + key + ":" + key,  // empty salt
      "SCRAM-SHA-256$4096:t!+QxoqdCErbOd6ZXJlh0Q==$" + key + ":" + key,
      "SCRAM-SHA-256$4096:" + salt + "$" + key31 + ":" + key,
      "SCRAM-SHA-256$4096:" + salt + "$" + key + ":" + key31,
      "SCRAM-SHA-256$4096:" + salt + "$" + key + ":" + key + "$",
      "SCRAM-SHA-256$4096:" + salt + "$" + key + ":" + key + ":" + key,
      "SCRAM-SHA-256$4096:" + salt + ":x$" + key + ":" + key,
  };
  for (const std::string& text : bad) {
    EXPECT_FALSE(parse_scram_secret(text).has_value()) << text;
  }
  EXPECT_TRUE(parse_scram_secret("SCRAM-SHA-256$1:" + salt + "$" + key + ":" + key).has_value());
}

TEST(ScramSecretFormat, MakeSecretRandomSaltAndArguments) {
  const ScramSecret a = make_scram_secret("pw");
  const ScramSecret b = make_scram_secret("pw");
  EXPECT_EQ(a.salt.size(), 16u);
  EXPECT_EQ(a.iterations, 4096);
  EXPECT_NE(a.salt, b.salt);
  EXPECT_NE(a.stored_key, b.stored_key);
  auto reparsed = parse_scram_secret(format_scram_secret(a));
  ASSERT_TRUE(reparsed.has_value());
  EXPECT_EQ(reparsed->salt, a.salt);
  EXPECT_EQ(reparsed->stored_key, a.stored_key);
  EXPECT_EQ(reparsed->server_key, a.server_key);
  EXPECT_THROW(make_scram_secret("pw", 0), std::invalid_argument);
  EXPECT_THROW(make_scram_secret("pw", "salt", -3), std::invalid_argument);
  EXPECT_THROW(make_scram_secret("pw", "", 4096), std::invalid_argument);
}

// ---- server: malformed client-first-message ----------------------------------------------------

struct BadMessage {
  std::string message;
  std::string expected_error_part;
};

TEST(ScramServerRejects, MalformedClientFirst) {
  const std::vector<BadMessage> cases = {
      {"", "empty message"},
      {"p=tls-server-end-point,,n=,r=abc", "channel binding (p=) is not supported"},
      {"x,,n=,r=abc", "channel binding flag"},
      {"n", "expected ',' after the channel binding flag"},
      {"nn,n=,r=abc", "expected ',' after the channel binding flag"},
      {"n,a=bob,n=,r=abc", "authorization identity (a=) is not supported"},
      {"n,", "expected ',' after the GS2 header"},
      {"n,x,n=,r=abc", "expected ',' after the GS2 header"},
      {"n,,", "empty message"},
      {"n,,r=abc", "expected attribute \"n=\" but found \"r=\""},
      {"n,,m=ext,n=,r=abc", "unsupported mandatory SCRAM extension"},
      {"n,,n=", "missing attribute \"r=\""},
      {"n,,n=,", "expected attribute \"<letter>=\""},
      {"n,,n=,s=abc", "expected attribute \"r=\" but found \"s=\""},
      {"n,,n=,r=", "nonce must be non-empty"},
      {"n,,n=,r=ab c", "nonce must be non-empty"},
      {std::string("n,,n=,r=ab\x7f", 11), "nonce must be non-empty"},
      {std::string("n,,n=,r=ab\0", 11), "nonce must be non-empty"},
      {"n,,n=a=b,r=abc", "invalid user name"},
      {"n,,n=a=2,r=abc", "invalid user name"},
      {"n,,n=,r=abc,r=def", "unexpected attribute \"r=\""},
      {"n,,n=,r=abc,p=def", "unexpected attribute \"p=\""},
      {"n,,n=,r=abc,=x", "expected attribute \"<letter>=\""},
      {"n,,n=,r=abc,xx", "expected attribute \"<letter>=\""},
      {"n,,n=,r=abc,", "expected attribute \"<letter>=\""},
      {"n,,n=,r=abc,1=x", "expected attribute \"<letter>=\""},
  };
  for (const BadMessage& c : cases) {
    ScramServer server(rfc_secret());
    auto result = server.on_client_first(c.message);
    ASSERT_FALSE(result.ok()) << c.message;
    EXPECT_NE(result.error().find(c.expected_error_part), std::string::npos)
        << c.message << " -> " << result.error();
    // The exchange is over after an error.
    EXPECT_FALSE(server.on_client_final(kRfcClientFinal).ok());
  }
}

TEST(ScramServerRejects, InvalidConfiguredSecret) {
  ScramSecret secret = rfc_secret();
  secret.iterations = 0;
  ScramServer server(secret);
  auto result = server.on_client_first(kRfcClientFirst);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error(), "invalid SCRAM secret configured for this user");
}

// ---- server: malformed client-final-message ----------------------------------------------------

TEST(ScramServerRejects, MalformedClientFinal) {
  const std::string nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  const std::string proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  const std::vector<BadMessage> cases = {
      {"", "empty message"},
      {"r=" + nonce + "," + proof, "expected attribute \"c=\" but found \"r=\""},
      {"c=biws", "missing attribute \"r=\""},
      {"c=bi!s,r=" + nonce + "," + proof, "c= is not valid base64"},
      {"c=biw,r=" + nonce + "," + proof, "c= is not valid base64"},
      {"c=eSws,r=" + nonce + "," + proof, "c= does not match the client-first-message"},
      {"c=" + base64_encode(std::string_view("p=tls-server-end-point,,")) + ",r=" + nonce + "," +
           proof,
       "channel binding (p=) is not supported"},
      {"c=biws,p=abc,r=" + nonce, "expected attribute \"r=\" but found \"p=\""},
      {"c=biws,r=" + nonce + "X," + proof, "SCRAM nonce mismatch"},
      {"c=biws,r=rOprNGfwEbeRWgbNEkqO," + proof, "SCRAM nonce mismatch"},
      {"c=biws,r=" + nonce, "the last attribute must be the proof"},
      {"c=biws,r=" + nonce + ",x=y", "the last attribute must be the proof"},
      {"c=biws,r=" + nonce + "," + proof + ",x=y", "the last attribute must be the proof"},
      {"c=biws,r=" + nonce + "," + proof + ",", "expected attribute \"<letter>=\""},
      {"c=biws,r=" + nonce + ",r=x," + proof, "unexpected attribute \"r=\""},
      {"c=biws,r=" + nonce + ",p=!!!!", "p= must be the base64 of a 32-byte proof"},
      {"c=biws,r=" + nonce + ",p=", "p= must be the base64 of a 32-byte proof"},
      {"c=biws,r=" + nonce + ",p=" + base64_encode(std::string(31, 'x')),
       "p= must be the base64 of a 32-byte proof"},
      {"c=biws,r=" + nonce + ",p=" + base64_encode(std::string(33, 'x')),
       "p= must be the base64 of a 32-byte proof"},
      {"c=biws,r=" + nonce + ",p=" + base64_encode(std::string(32, 'x')),
       "password authentication failed"},
  };
  for (const BadMessage& c : cases) {
    ScramServer server(rfc_secret(), std::string(kRfcServerNoncePart));
    ASSERT_TRUE(server.on_client_first(kRfcClientFirst).ok());
    auto result = server.on_client_final(c.message);
    ASSERT_FALSE(result.ok()) << c.message;
    EXPECT_NE(result.error().find(c.expected_error_part), std::string::npos)
        << c.message << " -> " << result.error();
    // One attempt only: even the right message is refused afterwards.
    EXPECT_FALSE(server.on_client_final(kRfcClientFinal).ok());
  }
}

TEST(ScramServerRejects, GsHeaderYMustBeEchoedAsY) {
  ScramServer server(rfc_secret(), std::string(kRfcServerNoncePart));
  ASSERT_TRUE(server.on_client_first("y,,n=user,r=rOprNGfwEbeRWgbNEkqO").ok());
  auto result = server.on_client_final(kRfcClientFinal);  // c=biws is "n,,"
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().find("c= does not match"), std::string::npos);
}

TEST(ScramServerRejects, OutOfOrderCalls) {
  {
    ScramServer server(rfc_secret(), std::string(kRfcServerNoncePart));
    auto result = server.on_client_final(kRfcClientFinal);
    ASSERT_FALSE(result.ok());
    EXPECT_NE(result.error().find("out of order"), std::string::npos);
  }
  {
    ScramServer server(rfc_secret(), std::string(kRfcServerNoncePart));
    ASSERT_TRUE(server.on_client_first(kRfcClientFirst).ok());
    EXPECT_FALSE(server.on_client_first(kRfcClientFirst).ok());
    EXPECT_FALSE(server.on_client_final(kRfcClientFinal).ok());  // failed exchange stays over
  }
  {
    ScramServer server(rfc_secret(), std::string(kRfcServerNoncePart));
    ASSERT_TRUE(server.on_client_first(kRfcClientFirst).ok());
    ASSERT_TRUE(server.on_client_final(kRfcClientFinal).ok());
    EXPECT_FALSE(server.on_client_final(kRfcClientFinal).ok());  // no replay
  }
}

// ---- client: malformed server messages ---------------------------------------------------------

TEST(ScramClientRejects, MalformedServerFirst) {
  const std::string n = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  const std::string s = "s=W22ZaJ0SNY7soEsUEjb6gQ==";
  const std::vector<BadMessage> cases = {
      {"", "empty message"},
      {"m=ext,r=" + n + "," + s + ",i=4096", "unsupported SCRAM extension (m=)"},
      {s + ",r=" + n + ",i=4096", "expected attribute \"r=\" but found \"s=\""},
      {"r=" + n + ",i=4096," + s, "expected attribute \"s=\" but found \"i=\""},
      {"r=" + n + "," + s, "missing attribute \"i=\""},
      {"r=" + n + "," + s + ",i=4096,x=y", "unexpected attribute \"x=\""},
      {"r=" + n + "," + s + ",i=4096,", "expected attribute \"<letter>=\""},
      {"r=" + n + "," + s + ",,i=4096", "expected attribute \"<letter>=\""},
      {"r=XOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj," + s + ",i=4096", "SCRAM nonce mismatch"},
      {"r=rOprNGfwEbeRWgbNEkqO," + s + ",i=4096", "SCRAM nonce mismatch"},
      {"r=rOprNGfwEbeRWgbNEkq," + s + ",i=4096", "SCRAM nonce mismatch"},
      {"r=" + n + " x," + s + ",i=4096", "nonce must be non-empty"},
      {"r=," + s + ",i=4096", "nonce must be non-empty"},
      {"r=" + n + ",s=,i=4096", "s= must be a non-empty base64 salt"},
      {"r=" + n + ",s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096", "s= must be a non-empty base64 salt"},
      {"r=" + n + ",s=W22Za J0SNY7soEsUEjb6gQ==,i=4096", "s= must be a non-empty base64 salt"},
      {"r=" + n + "," + s + ",i=0", "i= must be an iteration count of at least 1"},
      {"r=" + n + "," + s + ",i=-1", "i= must be an iteration count of at least 1"},
      {"r=" + n + "," + s + ",i=+4096", "i= must be an iteration count of at least 1"},
      {"r=" + n + "," + s + ",i=", "i= must be an iteration count of at least 1"},
      {"r=" + n + "," + s + ",i=40x", "i= must be an iteration count of at least 1"},
      {"r=" + n + "," + s + ",i=4096 ", "i= must be an iteration count of at least 1"},
      {"r=" + n + "," + s + ",i=99999999999", "i= must be an iteration count of at least 1"},
      // A hostile server stalling the proxy's I/O thread with key derivation, or its memory.
      {"r=" + n + "," + s + ",i=2000000000", "more than the 100000 the proxy computes"},
      {"r=" + n + "," + s + ",i=100001", "more than the 100000 the proxy computes"},
      {"r=" + n + std::string(300, 'x') + "," + s + ",i=4096", "more than the 256 the proxy accepts"},
  };
  for (const BadMessage& c : cases) {
    ScramClient client("pencil", std::string(kRfcClientNonce), "user");
    (void)client.client_first();
    auto result = client.on_server_first(c.message);
    ASSERT_FALSE(result.ok()) << c.message;
    EXPECT_NE(result.error().find(c.expected_error_part), std::string::npos)
        << c.message << " -> " << result.error();
    EXPECT_FALSE(client.on_server_final(kRfcServerFinal).ok());
  }
}

TEST(ScramClientRejects, MalformedServerFinal) {
  const std::vector<BadMessage> cases = {
      {"", "empty message"},
      {"e=invalid-proof", "server rejected SCRAM authentication: invalid-proof"},
      {"x=abc", "expected attribute \"v=\" but found \"x=\""},
      {"v=", "v= must be the base64 of a 32-byte signature"},
      {"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4", "v= must be the base64"},
      {"v=" + base64_encode(std::string(31, 's')), "v= must be the base64"},
      {std::string(kRfcServerFinal) + ",x=y", "expected exactly one attribute"},
      {std::string(kRfcServerFinal) + ",", "expected attribute \"<letter>=\""},
      {"v=" + base64_encode(std::string(32, 's')), "invalid SCRAM server signature"},
  };
  for (const BadMessage& c : cases) {
    ScramClient client("pencil", std::string(kRfcClientNonce), "user");
    (void)client.client_first();
    ASSERT_TRUE(client.on_server_first(kRfcServerFirst).ok());
    auto result = client.on_server_final(c.message);
    ASSERT_FALSE(result.ok()) << c.message;
    EXPECT_NE(result.error().find(c.expected_error_part), std::string::npos)
        << c.message << " -> " << result.error();
    EXPECT_FALSE(client.on_server_final(kRfcServerFinal).ok());  // exchange is over
  }
}

TEST(ScramClientRejects, OutOfOrderCalls) {
  {
    ScramClient client("pencil", std::string(kRfcClientNonce), "user");
    auto result = client.on_server_first(kRfcServerFirst);  // client_first() not sent yet
    ASSERT_FALSE(result.ok());
    EXPECT_NE(result.error().find("out of order"), std::string::npos);
  }
  {
    ScramClient client("pencil", std::string(kRfcClientNonce), "user");
    (void)client.client_first();
    EXPECT_FALSE(client.on_server_final(kRfcServerFinal).ok());
  }
}

// Every single-byte change to a valid client-final-message must be refused: the proof covers
// the whole message, and the parser must not read outside the (shorter or odd) input.
TEST(ScramServerRejects, EverySingleByteChangeOfClientFinal) {
  const ScramSecret secret = rfc_secret();
  const std::string original(kRfcClientFinal);
  int rejected = 0;
  for (std::size_t pos = 0; pos < original.size(); ++pos) {
    for (int byte = 0; byte < 256; ++byte) {
      if (static_cast<char>(byte) == original[pos]) continue;
      std::string mutated = original;
      mutated[pos] = static_cast<char>(byte);
      ScramServer server(secret, std::string(kRfcServerNoncePart));
      ASSERT_TRUE(server.on_client_first(kRfcClientFirst).ok());
      auto result = server.on_client_final(mutated);
      EXPECT_FALSE(result.ok()) << mutated;
      rejected += result.ok() ? 0 : 1;
    }
    // Truncations too.
    ScramServer server(secret, std::string(kRfcServerNoncePart));
    ASSERT_TRUE(server.on_client_first(kRfcClientFirst).ok());
    EXPECT_FALSE(server.on_client_final(original.substr(0, pos)).ok()) << pos;
  }
  EXPECT_EQ(rejected, static_cast<int>(original.size()) * 255);
}

// A tampered server-first-message may still parse, but then the real server signature no longer
// matches, so the client refuses the (impersonating) server.
TEST(ScramClientRejects, TamperedServerFirstNeverVerifies) {
  const std::string original(kRfcServerFirst);
  for (std::size_t pos = 0; pos < original.size(); ++pos) {
    for (const char byte : {'\0', ',', '=', 'a', '1', '+', '\xff'}) {
      if (byte == original[pos]) continue;
      std::string mutated = original;
      mutated[pos] = byte;
      ScramClient client("pencil", std::string(kRfcClientNonce), "user");
      (void)client.client_first();
      auto client_final = client.on_server_first(mutated);
      if (client_final.ok()) {
        EXPECT_FALSE(client.on_server_final(kRfcServerFinal).ok()) << mutated;
      }
    }
    // Truncations: "i=409" still parses, but nothing shorter verifies.
    ScramClient client("pencil", std::string(kRfcClientNonce), "user");
    (void)client.client_first();
    if (client.on_server_first(original.substr(0, pos)).ok()) {
      EXPECT_GT(pos, original.find(",i=")) << pos;
      EXPECT_FALSE(client.on_server_final(kRfcServerFinal).ok()) << pos;
    }
  }
}

TEST(ScramClient, FixedNonceMustBePrintable) {
  EXPECT_THROW(ScramClient("pw", "", ""), std::invalid_argument);
  EXPECT_THROW(ScramClient("pw", "a,b", ""), std::invalid_argument);
  EXPECT_THROW(ScramClient("pw", "a b", ""), std::invalid_argument);
}

TEST(ScramClient, EscapesUserName) {
  ScramClient client("pw", "nonce", "a=b,c");
  EXPECT_EQ(client.client_first(), "n,,n=a=3Db=2Cc,r=nonce");
  // And our server accepts that escaped name.
  ScramServer server(make_scram_secret("pw", "salt", 2));
  EXPECT_EQ(exchange(client, server), "");
}

}  // namespace
}  // namespace shardline::proxy::protocol
