// shardline's own run-time parameters (SET / RESET / SHOW shardline.*), answered by the proxy
// for the simple and the extended protocol alike; they never reach a server.

#include <fmt/format.h>

#include "proxy/session/client_session.hpp"
#include "proxy/session/lsn_token.hpp"

namespace shardline::proxy::session {

using protocol::SqlError;
namespace sqlstate = protocol::sqlstate;

bool ClientSession::is_proxy_setting(const router::Statement& st) {
  return (st.kind == router::StatementKind::Set && st.set && st.set->name.starts_with("shardline.")) ||
         (st.kind == router::StatementKind::Show && st.show_name && st.show_name->starts_with("shardline."));
}

std::string ClientSession::lsn_token() const {
  std::vector<ShardLsn> lsns;
  for (std::size_t i = 0; i < writes_.size(); ++i)
    if (writes_[i] && writes_[i]->highest()) lsns.push_back({int(i), writes_[i]->highest()});
  return lsns.empty() ? std::string() : format_lsn_token(lsns, services_.directory->shard_names());
}

std::optional<SqlError> ClientSession::proxy_setting(const router::Statement& st, std::string& tag,
                                                     std::optional<std::pair<std::string, std::string>>& shown) {
  using K = router::SetCommand::Kind;
  if (st.kind == router::StatementKind::Show) {
    const std::string& name = *st.show_name;
    std::string value;
    if (name == "shardline.tenant") value = tenant_.value_or("");
    else if (name == "shardline.consistency") value = config::consistency_name(consistency_);
    else if (name == "shardline.read_after") value = read_after_text_;
    else if (name == "shardline.lsn") value = lsn_token();
    else return SqlError::error(sqlstate::kUndefinedObject, fmt::format("unrecognized configuration parameter \"{}\"", name));
    shown = std::make_pair(name, value);
    tag = "SHOW";
    return std::nullopt;
  }
  const std::string& name = st.set->name;
  const bool reset = st.set->kind != K::Value;
  if (st.set->kind == K::Local)
    return SqlError::error(sqlstate::kFeatureNotSupported, fmt::format("SET LOCAL {} is not supported; use SET", name));
  tag = reset ? "RESET" : "SET";
  return set_proxy_setting(name, reset ? std::optional<std::string>() : std::optional<std::string>(st.set->value));
}

std::optional<SqlError> ClientSession::set_proxy_setting(const std::string& name, const std::optional<std::string>& value) {
  const bool reset = !value;
  if (name == "shardline.tenant") {
    if (reset) tenant_.reset();
    else tenant_ = *value;
  } else if (name == "shardline.consistency") {
    if (reset) {
      consistency_ = services_.cluster.config().replicas.default_consistency;
    } else if (auto c = config::parse_consistency(*value)) {
      consistency_ = *c;
    } else {
      return SqlError::error(sqlstate::kInvalidParameterValue,
                             fmt::format("invalid value for parameter \"shardline.consistency\": \"{}\" (expected "
                                         "strong, global, session or eventual)", *value));
    }
  } else if (name == "shardline.read_after") {
    if (reset || value->empty()) {
      read_after_.clear();
      read_after_text_.clear();
    } else {
      std::string error;
      auto parsed = parse_lsn_token(*value, services_.directory->shard_names(), &error);
      if (!parsed)
        return SqlError::error(sqlstate::kInvalidParameterValue,
                               "invalid value for parameter \"shardline.read_after\": " + error);
      read_after_ = std::move(*parsed);
      read_after_text_ = *value;
    }
  } else if (name == "shardline.lsn") {
    return SqlError::error("55P02", "parameter \"shardline.lsn\" cannot be changed: it reports this session's writes");
  } else {
    return SqlError::error(sqlstate::kUndefinedObject, fmt::format("unrecognized configuration parameter \"{}\"", name));
  }
  return std::nullopt;
}

}  // namespace shardline::proxy::session
