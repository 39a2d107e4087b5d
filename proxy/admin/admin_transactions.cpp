#include "proxy/admin/admin_transactions.hpp"

#include <fmt/format.h>

#include "proxy/session/services.hpp"

namespace shardline::proxy::admin {

Table show_transactions(session::Services& svc) {
  Table t{{"gid", "owner", "shard", "prepared_s", "decision", "own"}, {}, {"prepared_s"}};
  if (!svc.in_doubt) return t;
  const auto& names = svc.directory->shard_names();
  const std::string me = svc.twopc ? svc.twopc->owner() : std::string();
  for (const auto& d : *svc.in_doubt) {
    const char* decision = !d.decision ? "none" : *d.decision == control::Decision::Commit ? "commit" : "abort";
    t.rows.push_back({d.gid, d.owner, d.shard >= 0 && std::size_t(d.shard) < names.size() ? names[std::size_t(d.shard)] : "",
                      fmt::format("{:.1f}", d.age_seconds), decision, d.owner == me ? "yes" : "no"});
  }
  return t;
}

}  // namespace shardline::proxy::admin
