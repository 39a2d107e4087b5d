#include "proxy/session/prepared_statements.hpp"

#include "proxy/protocol/message_writer.hpp"

namespace shardline::proxy::session {

std::shared_ptr<const PreparedStatement> StatementRegistry::intern(std::string_view query,
                                                                   std::string_view param_types) {
  std::string key;
  key.reserve(query.size() + 1 + param_types.size());
  key.append(query).push_back('\0');
  key.append(param_types);
  auto& slot = by_key_[key];
  if (auto existing = slot.lock()) return existing;
  auto st = std::make_shared<PreparedStatement>();
  st->id = next_id_++;
  st->server_name = "_sl" + std::to_string(st->id);
  st->query = std::string(query);
  st->param_types = std::string(param_types);
  protocol::MessageWriter w(st->parse_message);
  w.begin('P').cstr(st->server_name).cstr(query).raw(param_types).end();
  slot = st;
  if (by_key_.size() > 4096) {  // drop entries whose statements no client holds any more
    for (auto it = by_key_.begin(); it != by_key_.end();)
      it = it->second.expired() ? by_key_.erase(it) : std::next(it);
  }
  return st;
}

}  // namespace shardline::proxy::session
