#include "proxy/admin/admin_reshard.hpp"

#include <fmt/format.h>

#include <cctype>
#include <vector>

#include "proxy/protocol/message_writer.hpp"

namespace shardline::proxy::admin {

namespace {

/// Words of the command, a '...' literal as one word (quotes removed, '' unescaped).
std::vector<std::string> words(std::string_view s, bool& bad_quote) {
  std::vector<std::string> out;
  std::size_t i = 0;
  bad_quote = false;
  while (i < s.size()) {
    if (std::isspace(static_cast<unsigned char>(s[i])) || s[i] == ';') {
      ++i;
      continue;
    }
    std::string w;
    if (s[i] == '\'') {
      for (++i;; ++i) {
        if (i >= s.size()) {
          bad_quote = true;
          return out;
        }
        if (s[i] == '\'' && i + 1 < s.size() && s[i + 1] == '\'') w += s[i++];
        else if (s[i] == '\'') break;
        else w += s[i];
      }
      ++i;
      out.push_back("'" + w);  // marked as a literal
      continue;
    }
    while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i])) && s[i] != ';') w += s[i++];
    out.push_back(w);
  }
  return out;
}

bool is(const std::string& w, std::string_view keyword) {
  if (w.size() != keyword.size()) return false;
  for (std::size_t i = 0; i < w.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(w[i])) != keyword[i]) return false;
  return true;
}

}  // namespace

std::optional<control::ReshardRequest> parse_reshard(std::string_view command, std::string& error) {
  bool bad_quote = false;
  const auto w = words(command, bad_quote);
  const std::string usage =
      "usage: RESHARD MOVE <logical> TO <shard> | RESHARD ISOLATE TENANT '<key>' TO <shard> | RESHARD ABORT";
  if (bad_quote) {
    error = "unterminated quoted string in RESHARD command; " + usage;
    return std::nullopt;
  }
  control::ReshardRequest r;
  if (w.size() == 2 && is(w[1], "ABORT")) {
    r.kind = control::ReshardRequest::Kind::Abort;
    return r;
  }
  if (w.size() == 5 && is(w[1], "MOVE") && is(w[3], "TO")) {
    const std::string& n = w[2];
    if (n.empty() || n.size() > 9 || n.find_first_not_of("0123456789") != std::string::npos) {
      error = fmt::format("RESHARD MOVE: \"{}\" is not a logical shard number; {}", n, usage);
      return std::nullopt;
    }
    r.kind = control::ReshardRequest::Kind::Move;
    r.logical = std::stoi(n);
    r.target = w[4];
    return r;
  }
  if (w.size() == 6 && is(w[1], "ISOLATE") && is(w[2], "TENANT") && is(w[4], "TO")) {
    if (w[3].empty() || w[3][0] != '\'') {
      error = "RESHARD ISOLATE TENANT: the tenant key must be a quoted literal, e.g. '42'; " + usage;
      return std::nullopt;
    }
    r.kind = control::ReshardRequest::Kind::Isolate;
    r.tenant = w[3].substr(1);
    r.target = w[5];
    return r;
  }
  error = fmt::format("unknown RESHARD command \"{}\"; {}", std::string(command.substr(0, 80)), usage);
  return std::nullopt;
}

boost::asio::awaitable<void> run_reshard(session::Services& services, std::string_view command, std::string& out) {
  protocol::MessageWriter w(out);
  std::string error;
  auto request = parse_reshard(command, error);
  if (!request) {
    w.error(protocol::SqlError::error(protocol::sqlstate::kSyntaxError, error));
    co_return;
  }
  if (!services.reshard) {
    w.error(protocol::SqlError::error("55000", "resharding is not available: the proxy has no catalog"));
    co_return;
  }
  const control::ReshardReply reply = co_await services.reshard(*request);
  if (!reply.sqlstate.empty()) {
    w.error(protocol::SqlError::error(reply.sqlstate, reply.message));
    co_return;
  }
  w.row_description_text({"job", "message"});
  w.data_row({std::to_string(reply.job), reply.message});
  w.command_complete("RESHARD");
}

}  // namespace shardline::proxy::admin
