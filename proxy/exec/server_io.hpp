#pragma once
// Small blocking-free helpers for the multi-shard paths, which talk to several servers directly
// (not through a session's pump): build a Query, read whole messages, run a one-column query.

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/backend/server_connection.hpp"
#include "proxy/protocol/sql_error.hpp"

namespace shardline::proxy::exec {

/// A simple-protocol Query message.
std::string query_message(std::string_view sql);

/// The next whole message from a server (tag, length and body), or nullopt if the connection broke.
boost::asio::awaitable<std::optional<std::string>> next_message(backend::ServerConnection& server);

/// Runs `sql` and collects the first column of every row (NULLs as nullopt). `error` is set to
/// the server's error (or a connection failure) when it fails.
boost::asio::awaitable<std::vector<std::optional<std::string>>> query_column(backend::ServerConnection& server,
                                                                            std::string_view sql,
                                                                            std::optional<protocol::SqlError>& error);

/// `'text'` as an SQL string literal.
std::string quote_literal(std::string_view s);

}  // namespace shardline::proxy::exec
