#include "proxy/control/twopc_resolution.hpp"

namespace shardline::control {

std::optional<std::string> gid_owner(std::string_view gid) {
  constexpr std::string_view prefix = "shardline:";
  if (!gid.starts_with(prefix)) return std::nullopt;
  gid.remove_prefix(prefix.size());
  const auto last = gid.rfind(':');
  if (last == std::string_view::npos || last == 0 || last + 1 == gid.size()) return std::nullopt;
  for (char c : gid.substr(last + 1))
    if (c < '0' || c > '9') return std::nullopt;
  return std::string(gid.substr(0, last));
}

ResolverPlan plan_resolution(const ResolverInput& in) {
  ResolverPlan plan;
  std::set<std::string> held;  // gids some shard still holds
  std::set<std::string> aborting;
  for (const auto& x : in.prepared) {
    const auto owner = gid_owner(x.gid);
    if (!owner) continue;
    held.insert(x.gid);
    InDoubt d{x.gid, *owner, x.shard, x.age_seconds, std::nullopt};
    if (auto it = in.decisions.find(x.gid); it != in.decisions.end()) {
      d.decision = it->second;
      plan.actions.push_back({x.gid, x.shard, it->second});
    } else if (!in.live_owners.contains(*owner) || x.age_seconds > kStaleSeconds) {
      if (aborting.insert(x.gid).second) plan.to_abort.push_back(x.gid);
    }
    plan.in_doubt.push_back(std::move(d));
  }
  for (const auto& [gid, decision] : in.decisions)
    if (!held.contains(gid)) plan.trim.push_back(gid);
  return plan;
}

}  // namespace shardline::control
