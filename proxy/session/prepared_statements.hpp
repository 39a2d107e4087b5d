#pragma once
// Protocol-level prepared statements under transaction pooling. A client's named statement
// lives on whichever server the client happens to get, so statements are identified by their
// text and parameter types: equal statements from any client share one id and one server-side
// name ("_sl<id>"), and a server that already has it is not asked to parse it again.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace shardline::proxy::session {

struct PreparedStatement {
  std::uint64_t id;
  std::string server_name;
  std::string query;
  std::string param_types;  ///< the Parse message's parameter-type part (count + OIDs)
  /// A complete Parse message under server_name, ready to send to a server that lacks it.
  std::string parse_message;
};

/// Process-wide registry (data-plane thread only): statement text + types -> shared statement.
class StatementRegistry {
 public:
  /// `param_types` is the raw parameter-type part of the client's Parse message.
  std::shared_ptr<const PreparedStatement> intern(std::string_view query, std::string_view param_types);
  std::size_t size() const { return by_key_.size(); }
  /// After a schema change: statements prepared from now on get new ids and server names, so
  /// no client gets a server-side plan made before the change. Clients that prepared earlier
  /// keep theirs, as on PostgreSQL (whose own check then reports 0A000 to them).
  void invalidate_all() { by_key_.clear(); }

 private:
  std::unordered_map<std::string, std::weak_ptr<const PreparedStatement>> by_key_;
  std::uint64_t next_id_ = 1;
};

/// One client's names -> shared statements.
using ClientStatements = std::unordered_map<std::string, std::shared_ptr<const PreparedStatement>>;

}  // namespace shardline::proxy::session
