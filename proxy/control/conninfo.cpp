#include "proxy/control/conninfo.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <map>
#include <memory>

#include <fmt/format.h>

namespace shardline::control {
namespace {

/// libpq's quoting: single quotes around the value, backslash before ' and \.
std::string quoted(std::string_view value) {
  std::string out = "'";
  for (const char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
  return out;
}

std::string_view sslmode(config::BackendTlsMode mode) {
  switch (mode) {
    case config::BackendTlsMode::Disable: return "disable";
    case config::BackendTlsMode::Prefer: return "prefer";
    case config::BackendTlsMode::Require: return "require";
  }
  return "prefer";
}

}  // namespace

std::string libpq_conninfo(const config::Backend& backend, const config::Endpoint& endpoint,
                           std::string_view application_name) {
  // libpq counts connect_timeout in whole seconds (and raises anything below 2 to 2).
  const int timeout_s = std::max(1, (backend.connect_timeout_ms + 999) / 1000);
  return fmt::format("host={} port={} user={} password={} dbname={} sslmode={} connect_timeout={} "
                     "application_name={}",
                     quoted(endpoint.host), endpoint.port, quoted(backend.user),
                     quoted(backend.password), quoted(backend.database), sslmode(backend.tls),
                     timeout_s, quoted(application_name));
}

std::string describe_conninfo(const std::string& conninfo) {
  char* err = nullptr;
  std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> opts(
      PQconninfoParse(conninfo.c_str(), &err), &PQconninfoFree);
  if (err != nullptr) PQfreemem(err);
  if (!opts) return "(unparsable conninfo)";
  std::map<std::string, std::string> v;
  for (const PQconninfoOption* o = opts.get(); o->keyword != nullptr; ++o)
    if (o->val != nullptr) v[o->keyword] = o->val;
  const std::string host = v.count("host") ? v["host"] : v.count("hostaddr") ? v["hostaddr"] : "localhost";
  const std::string port = v.count("port") ? v["port"] : "5432";
  return fmt::format("{}:{}/{}", host, port, v.count("dbname") ? v["dbname"] : v.count("user") ? v["user"] : "");
}

}  // namespace shardline::control
