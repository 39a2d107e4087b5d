// Client startup: SSLRequest / GSSENCRequest / CancelRequest / StartupMessage, authentication,
// and the ParameterStatus + BackendKeyData + ReadyForQuery that end it.
// https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP

#include <openssl/rand.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/ssl/stream_base.hpp>

#include "proxy/exec/server_io.hpp"
#include "proxy/protocol/md5_auth.hpp"
#include "proxy/protocol/message_writer.hpp"
#include "proxy/protocol/scram.hpp"
#include "proxy/session/client_session.hpp"

namespace shardline::proxy::session {

using protocol::SqlError;
namespace sqlstate = protocol::sqlstate;

namespace {
constexpr std::int32_t kProtocol3 = 3 << 16;
constexpr std::int32_t kCancelRequest = 80877102;
constexpr std::int32_t kSslRequest = 80877103;
constexpr std::int32_t kGssEncRequest = 80877104;
constexpr std::string_view kAdminDatabase = "shardline";

/// Startup parameters that are connection attributes, not settings to replay with SET.
bool is_connection_attribute(std::string_view name) {
  return name == "user" || name == "database" || name == "replication" || name == "options";
}
}  // namespace

asio::awaitable<bool> ClientSession::read_startup_frame(protocol::Frame& f) {
  for (;;) {
    auto st = protocol::decode_startup(in_.readable(), f);
    if (st == protocol::DecodeStatus::Ok) co_return true;
    if (st == protocol::DecodeStatus::Malformed) {
      co_await send_fatal(SqlError::fatal(sqlstate::kProtocolViolation, "invalid startup packet length"));
      co_return false;
    }
    boost::system::error_code ec;
    auto n = co_await stream_.read_some(in_.prepare(1024), ec);
    if (ec) co_return false;
    in_.commit(n);
  }
}

asio::awaitable<bool> ClientSession::read_frame(protocol::Frame& f) {
  for (;;) {
    auto st = protocol::decode_frame(in_.readable(), f);
    if (st == protocol::DecodeStatus::Ok) co_return true;
    if (st == protocol::DecodeStatus::Malformed) {
      co_await send_fatal(SqlError::fatal(sqlstate::kProtocolViolation, "invalid message length"));
      co_return false;
    }
    boost::system::error_code ec;
    auto n = co_await stream_.read_some(in_.prepare(1024), ec);
    if (ec) co_return false;
    in_.commit(n);
  }
}

asio::awaitable<bool> ClientSession::startup() {
  std::unordered_map<std::string, std::string> params;
  if (!co_await read_startup_packet(params)) co_return false;
  if (!co_await admit(params)) co_return false;
  std::map<std::string, std::string> normalized;
  if (!admin_ && !co_await normalize_startup_settings(normalized)) co_return false;
  std::string out;
  protocol::MessageWriter w(out);
  w.auth_request(0);
  startup_parameters_for_client(out, normalized);
  w.backend_key_data(pid_, secret_);
  w.ready_for_query('I');
  co_return co_await write_client(out);
}

asio::awaitable<bool> ClientSession::read_startup_packet(std::unordered_map<std::string, std::string>& params) {
  protocol::Frame f;
  for (;;) {
    if (!co_await read_startup_frame(f)) co_return false;
    protocol::BodyReader r(f.body);
    const std::int32_t code = r.i32().value_or(0);
    if (code == kSslRequest || code == kGssEncRequest) {
      in_.consume(f.total_size);
      if (!co_await answer_encryption_request(code == kSslRequest)) co_return false;
      continue;
    }
    if (code == kCancelRequest) {
      auto pid = r.i32();
      auto secret = r.i32();
      in_.consume(f.total_size);
      if (pid && secret) {
        auto it = services_.sessions.find(*pid);
        // Constant-time comparison of the secret; a wrong key is silently ignored, as in PostgreSQL.
        if (it != services_.sessions.end() &&
            CRYPTO_memcmp(&it->second->secret_, &*secret, sizeof(std::int32_t)) == 0)
          co_await it->second->cancel_running_query();
      }
      co_return false;
    }
    if ((code >> 16) != 3) {
      co_await send_fatal(SqlError::fatal(
          sqlstate::kFeatureNotSupported,
          fmt::format("unsupported frontend protocol {}.{}: server supports 3.0", code >> 16, code & 0xffff)));
      co_return false;
    }
    std::vector<std::string> unsupported_options;
    while (r.ok() && !r.at_end()) {
      auto name = r.cstr();
      if (!name || name->empty()) break;
      auto value = r.cstr();
      if (!value) break;
      if (name->starts_with("_pq_.")) {
        unsupported_options.emplace_back(*name);
        continue;
      }
      params[std::string(*name)] = std::string(*value);
    }
    in_.consume(f.total_size);
    if (!r.ok()) {
      co_await send_fatal(SqlError::fatal(sqlstate::kProtocolViolation, "invalid startup packet layout"));
      co_return false;
    }
    if ((code & 0xffff) == 0 && unsupported_options.empty()) co_return true;
    // NegotiateProtocolVersion: we speak 3.0 and none of the requested protocol options.
    std::string out;
    protocol::MessageWriter w(out);
    w.begin('v').i32(kProtocol3).i32(std::int32_t(unsupported_options.size()));
    for (const auto& o : unsupported_options) w.cstr(o);
    w.end();
    co_return co_await write_client(out);
  }
}

asio::awaitable<bool> ClientSession::answer_encryption_request(bool ssl) {
  if (!in_.empty()) {  // bytes after SSLRequest before the handshake: not allowed
    co_await send_fatal(SqlError::fatal(sqlstate::kProtocolViolation, "received unencrypted data after SSL request"));
    co_return false;
  }
  const bool tls = ssl && services_.client_tls && !stream_.is_tls();
  boost::system::error_code ec;
  co_await stream_.write_all(tls ? "S" : "N", ec);
  if (ec) co_return false;
  if (!tls) co_return true;
  try {
    co_await stream_.start_tls(*services_.client_tls, asio::ssl::stream_base::server);
  } catch (const boost::system::system_error& e) {
    spdlog::info("client {}: TLS handshake failed: {}", peer_, e.what());
    co_return false;
  }
  co_return true;
}

asio::awaitable<bool> ClientSession::admit(std::unordered_map<std::string, std::string>& params) {
  user_ = params["user"];
  database_ = params.count("database") && !params["database"].empty() ? params["database"] : user_;
  application_name_ = params.count("application_name") ? params["application_name"] : "";
  if (login_refusal_) {
    co_await send_fatal(*login_refusal_);
    co_return false;
  }
  if (user_.empty()) {
    co_await send_fatal(SqlError::fatal(sqlstate::kInvalidAuthorization, "no PostgreSQL user name specified in startup packet"));
    co_return false;
  }
  if (params.count("replication") && params["replication"] != "false" && params["replication"] != "0") {
    co_await send_fatal(SqlError::fatal(sqlstate::kFeatureNotSupported,
                                        "replication connections are not supported through shardline"));
    co_return false;
  }

  const auto& cfg = services_.cluster.config();
  auto cred_it = services_.credentials.find(user_);
  admin_ = database_ == kAdminDatabase;
  if (cred_it == services_.credentials.end()) {
    // Same answer as a wrong password, so user names cannot be probed.
    co_await send_fatal(SqlError::fatal(sqlstate::kInvalidPassword,
                                        fmt::format("password authentication failed for user \"{}\"", user_)));
    co_return false;
  }
  if (!co_await authenticate(cred_it->second)) co_return false;

  if (admin_) {
    bool allowed = std::find(cfg.admin.users.begin(), cfg.admin.users.end(), user_) != cfg.admin.users.end();
    if (!allowed)
      co_await send_fatal(SqlError::fatal(sqlstate::kInsufficientPrivilege,
                                          fmt::format("user \"{}\" is not allowed on the admin database "
                                                      "\"shardline\" (admin.users)", user_)));
    co_return allowed;
  }
  const auto& allowed_db = cred_it->second.user.database;
  if (!allowed_db.empty() && allowed_db != database_) {
    co_await send_fatal(SqlError::fatal(sqlstate::kInvalidCatalogName,
                                        fmt::format("database \"{}\" does not exist (user \"{}\" may connect to "
                                                    "\"{}\")", database_, user_, allowed_db)));
    co_return false;
  }
  if (services_.stopping) {
    co_await send_fatal(SqlError::fatal(sqlstate::kCannotConnectNow, "the proxy is shutting down"));
    co_return false;
  }
  if (auto bad_setting = apply_startup_settings(params)) {
    co_await send_fatal(*bad_setting);
    co_return false;
  }
  // The parameter set clients expect comes from a real server; connect once if we have
  // never talked to one (also tells the client at once if the home shard is down).
  if (!services_.cluster.server_parameters()) {
    SqlError err;
    auto& pool = services_.cluster.primary(services_.cluster.home_shard());
    auto lease = co_await pool.acquire(
        backend::Clock::now() + std::chrono::milliseconds(cfg.pool.query_wait_timeout_ms), err);
    if (!lease) {
      err.severity = "FATAL";
      co_await send_fatal(err);
      co_return false;
    }
  }
  co_return true;
}

std::optional<SqlError> ClientSession::apply_startup_settings(std::unordered_map<std::string, std::string>& params) {
  // Settings from the startup packet become session settings, re-applied on every server
  // this client gets (the pool's servers were started with none of them).
  // shardline.* parameters are the proxy's own and never reach a server; a bad value fails
  // the connection, as a bad startup setting does in PostgreSQL.
  std::optional<SqlError> bad_setting;
  auto apply = [&](const std::string& name, const std::string& value) {
    if (!name.starts_with("shardline.")) {
      vars_.set(name, backend::SessionVars::set_sql(name, value));
      return true;
    }
    if (auto err = set_proxy_setting(name, value)) {
      err->severity = "FATAL";
      bad_setting = std::move(err);
      return false;
    }
    return true;
  };
  for (const auto& [name, value] : params) {
    if (is_connection_attribute(name)) continue;
    if (!apply(name, value)) break;
  }
  if (!params.count("options")) return bad_setting;
  // "-c name=value" pairs, as libpq's PGOPTIONS passes them.
  std::string_view o = params["options"];
  std::size_t i = 0;
  while (i < o.size()) {
    while (i < o.size() && o[i] == ' ') ++i;
    std::size_t j = o.find(' ', i);
    std::string_view tok = o.substr(i, j == std::string_view::npos ? o.npos : j - i);
    i = j == std::string_view::npos ? o.size() : j;
    if (tok == "-c") continue;
    if (tok.starts_with("-c")) tok.remove_prefix(2);
    if (tok.starts_with("--")) tok.remove_prefix(2);
    auto eq = tok.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    std::string name(tok.substr(0, eq));
    for (auto& ch : name) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    std::replace(name.begin(), name.end(), '-', '_');
    if (!bad_setting && !apply(name, std::string(tok.substr(eq + 1)))) break;
  }
  return bad_setting;
}

asio::awaitable<bool> ClientSession::normalize_startup_settings(std::map<std::string, std::string>& normalized) {
  // Only the settings PostgreSQL reports in ParameterStatus matter here; the server is asked
  // for them (current_setting gives exactly what its ParameterStatus would say).
  std::vector<std::string> names;
  if (services_.cluster.server_parameters())
    for (const auto& [name, value] : *services_.cluster.server_parameters()) {
      std::string lower = name;
      for (auto& ch : lower) ch = char(std::tolower(static_cast<unsigned char>(ch)));
      if (lower != "application_name" && vars_.vars().count(lower)) names.push_back(lower);
    }
  if (names.empty()) co_return true;
  std::string key;
  for (const auto& n : names) key += vars_.vars().at(n) + ";";
  if (auto hit = services_.normalized_settings.find(key); hit != services_.normalized_settings.end()) {
    normalized = hit->second;
    co_return true;
  }
  const auto& cfg = services_.cluster.config();
  SqlError err;
  auto lease = co_await services_.cluster.primary(services_.cluster.home_shard())
                   .acquire(backend::Clock::now() + std::chrono::milliseconds(cfg.pool.query_wait_timeout_ms), err);
  if (!lease) {
    err.severity = "FATAL";
    co_await send_fatal(err);
    co_return false;
  }
  std::string sql = vars_.diff_from(lease->vars);
  sql += "SELECT current_setting(n) FROM unnest(ARRAY[";
  for (std::size_t i = 0; i < names.size(); ++i) sql += (i ? "," : "") + exec::quote_literal(names[i]);
  sql += "]::text[]) WITH ORDINALITY AS t(n, i) ORDER BY i";
  std::optional<SqlError> error;
  auto values = co_await exec::query_column(*lease, sql, error);
  if (error || values.size() != names.size()) {
    // As PostgreSQL does with a bad startup parameter: FATAL, naming it.
    lease->broken = true;
    SqlError e = error ? *error : SqlError::error(sqlstate::kInternalError, "cannot read the session settings back");
    e.severity = "FATAL";
    co_await send_fatal(e);
    co_return false;
  }
  lease->vars = vars_;
  for (std::size_t i = 0; i < names.size(); ++i)
    if (values[i]) normalized[names[i]] = *values[i];
  if (services_.normalized_settings.size() > 1024) services_.normalized_settings.clear();
  services_.normalized_settings[key] = normalized;
  co_return true;
}

void ClientSession::startup_parameters_for_client(std::string& out, const std::map<std::string, std::string>& normalized) {
  protocol::MessageWriter w(out);
  std::vector<std::pair<std::string, std::string>> params;
  if (services_.cluster.server_parameters()) params = *services_.cluster.server_parameters();
  if (params.empty() || admin_) {
    params = {{"server_version", "15.0 (shardline)"}, {"server_encoding", "UTF8"},
              {"client_encoding", "UTF8"}, {"DateStyle", "ISO, MDY"},
              {"integer_datetimes", "on"}, {"standard_conforming_strings", "on"},
              {"TimeZone", "UTC"}, {"IntervalStyle", "postgres"}, {"is_superuser", "off"},
              {"application_name", ""}, {"default_transaction_read_only", "off"},
              {"in_hot_standby", "off"}, {"session_authorization", ""}};
  }
  for (auto& [name, value] : params) {
    std::string lower = name;
    for (auto& ch : lower) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    if (name == "session_authorization") value = user_;
    if (auto n = normalized.find(lower); n != normalized.end()) {
      value = n->second;
    } else if (auto it = vars_.vars().find(lower); it != vars_.vars().end()) {
      // The client asked for this at startup: report its value (the server will agree once
      // the SET is applied, and that ParameterStatus is then filtered as unchanged).
      const std::string& sql = it->second;
      auto q = sql.find(" = '");
      if (q != std::string::npos && sql.size() >= q + 5) {
        std::string v;
        for (std::size_t i = q + 4; i + 1 < sql.size(); ++i) {
          if (sql[i] == '\'' && sql[i + 1] == '\'') ++i;
          v += sql[i];
        }
        value = v;
      }
    }
    if (lower == "application_name") value = application_name_;
    w.parameter_status(name, value);
  }
  reported_.assign(services_.intern_parameters(std::move(params)));
}

asio::awaitable<bool> ClientSession::authenticate(const Credentials& cred) {
  std::string out;
  protocol::MessageWriter w(out);
  const auto failed = SqlError::fatal(sqlstate::kInvalidPassword,
                                      fmt::format("password authentication failed for user \"{}\"", user_));
  switch (cred.user.auth) {
    case config::AuthMethod::Trust:
      co_return true;
    case config::AuthMethod::Md5: {
      std::array<unsigned char, 4> salt;
      RAND_bytes(salt.data(), 4);
      w.auth_request(5, std::string_view(reinterpret_cast<const char*>(salt.data()), 4));
      if (!co_await write_client(out)) co_return false;
      protocol::Frame f;
      if (!co_await read_frame(f)) co_return false;
      if (f.tag != 'p') {
        co_await send_fatal(SqlError::fatal(sqlstate::kProtocolViolation,
                                            fmt::format("expected password response, got message type {}", f.tag)));
        co_return false;
      }
      protocol::BodyReader r(f.body);
      auto given = r.cstr();
      std::string expected = protocol::md5_password_response(user_, cred.user.password, salt);
      bool ok = given && protocol::md5_response_matches(expected, *given);
      in_.consume(f.total_size);
      if (!ok) {
        co_await send_fatal(failed);
        co_return false;
      }
      co_return true;
    }
    case config::AuthMethod::ScramSha256: {
      std::string mechs(protocol::kScramSha256Mechanism);
      mechs.push_back('\0');
      mechs.push_back('\0');
      w.auth_request(10, mechs);
      if (!co_await write_client(out)) co_return false;
      protocol::ScramServer scram(cred.scram);
      protocol::Frame f;
      if (!co_await read_frame(f)) co_return false;
      if (f.tag != 'p') {
        co_await send_fatal(SqlError::fatal(sqlstate::kProtocolViolation, "expected SASL response"));
        co_return false;
      }
      protocol::BodyReader r(f.body);
      auto mech = r.cstr();
      auto len = r.i32();
      if (!mech || !len || *mech != protocol::kScramSha256Mechanism || *len < 0 ||
          std::size_t(*len) != r.remaining()) {
        in_.consume(f.total_size);
        co_await send_fatal(SqlError::fatal(sqlstate::kProtocolViolation,
                                            "invalid SASLInitialResponse: expected mechanism SCRAM-SHA-256"));
        co_return false;
      }
      auto first = scram.on_client_first(std::string_view(r.pos(), r.remaining()));
      in_.consume(f.total_size);
      if (!first.ok()) {
        co_await send_fatal(SqlError::fatal(sqlstate::kProtocolViolation, "SCRAM: " + first.error()));
        co_return false;
      }
      out.clear();
      w.auth_request(11, first.value());
      if (!co_await write_client(out)) co_return false;
      if (!co_await read_frame(f)) co_return false;
      if (f.tag != 'p') {
        co_await send_fatal(SqlError::fatal(sqlstate::kProtocolViolation, "expected SASL response"));
        co_return false;
      }
      auto fin = scram.on_client_final(std::string_view(f.body.data(), f.body.size()));
      in_.consume(f.total_size);
      if (!fin.ok()) {
        co_await send_fatal(failed);
        co_return false;
      }
      out.clear();
      w.auth_request(12, fin.value());
      co_return co_await write_client(out);
    }
  }
  co_return false;
}

}  // namespace shardline::proxy::session
