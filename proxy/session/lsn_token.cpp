#include "proxy/session/lsn_token.hpp"

#include <charconv>

#include <fmt/format.h>

#include "proxy/control/lsn.hpp"

namespace shardline::proxy::session {

std::string format_lsn_token(const std::vector<ShardLsn>& lsns, const std::vector<std::string>& names) {
  std::string out = "1:";
  bool first = true;
  for (const auto& s : lsns) {
    if (s.shard < 0 || std::size_t(s.shard) >= names.size()) continue;
    out += (first ? "" : ",") + names[std::size_t(s.shard)] + "@" + control::Lsn(s.lsn).str();
    first = false;
  }
  return out;
}

std::optional<std::vector<ShardLsn>> parse_lsn_token(std::string_view token, const std::vector<std::string>& names,
                                                     std::string* error) {
  auto fail = [&](std::string why) -> std::optional<std::vector<ShardLsn>> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  if (!token.starts_with("1:"))
    return fail("expected a version-1 token from SHOW shardline.lsn (\"1:<shard>@<lsn>,...\")");
  std::vector<ShardLsn> out;
  std::string_view rest = token.substr(2);
  if (rest.empty() || rest.back() == ',' || rest.front() == ',' || rest.find(",,") != std::string_view::npos)
    return fail("expected <shard>@<lsn> parts separated by single commas");
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string_view part = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (part.empty()) return fail("an empty part (a stray comma)");
    auto at = part.find('@');
    if (at == std::string_view::npos) return fail(fmt::format("part \"{}\" is not <shard>@<lsn>", part));
    std::string_view name = part.substr(0, at);
    int shard = -1;
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) shard = int(i);
    if (shard < 0) return fail(fmt::format("unknown shard \"{}\"", name));
    auto lsn = control::Lsn::parse(part.substr(at + 1));
    if (!lsn) return fail(fmt::format("\"{}\" is not an LSN", part.substr(at + 1)));
    out.push_back({shard, lsn->value()});
  }
  return out;
}

}  // namespace shardline::proxy::session
