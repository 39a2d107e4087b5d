#pragma once
// The admin console: database `shardline` on the proxy port, for the users in admin.users.
// Answers SHOW SHARDS/POOLS/CLIENTS/SERVERS/STATS/TENANTS/CONFIG..., PAUSE, RESUME, RELOAD as ordinary result
// sets so psql prints them (in the spirit of PgBouncer's console).

#include <boost/asio/awaitable.hpp>
#include <string>
#include <vector>

#include "proxy/admin/admin_tables.hpp"
#include "proxy/session/services.hpp"

namespace shardline::proxy::session {
class ClientSession;
}

namespace shardline::proxy::admin {

class AdminConsole {
 public:
  AdminConsole(session::Services& services, session::ClientSession& session)
      : services_(services), session_(session) {}
  boost::asio::awaitable<void> run();

  /// Executes one command; the reply messages (without ReadyForQuery) are appended to `out`.
  boost::asio::awaitable<void> execute(std::string_view command, std::string& out);

 private:
  session::Services& services_;
  session::ClientSession& session_;
};

}  // namespace shardline::proxy::admin
