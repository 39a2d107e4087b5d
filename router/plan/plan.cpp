#include "router/plan/plan.hpp"

namespace shardline::router {

std::string Plan::explain(const std::vector<std::string>& names) const {
  auto list = [&] {
    std::string s;
    for (int i : shards) s += (s.empty() ? "" : ",") + (i >= 0 && i < int(names.size()) ? names[std::size_t(i)] : "?");
    return s;
  };
  std::string out;
  switch (kind) {
    case RouteKind::Any: out = "Any"; break;
    case RouteKind::Single: out = "Single(" + list() + ")"; break;
    case RouteKind::Scatter:
      out = "Scatter(" + list() + ")";
      if (!aggregates.empty() && !merge) {
        out += " merging ";
        for (std::size_t i = 0; i < aggregates.size(); ++i) {
          static const char* const kNames[] = {"count", "sum", "min", "max"};
          out += (i ? "," : "") + std::string(kNames[int(aggregates[i])]);
        }
      }
      break;
    case RouteKind::Broadcast: out = std::string(ddl ? "BroadcastDdl(" : same_rows_everywhere ? "BroadcastReference(" : "Broadcast(") + list() + ")"; break;
    case RouteKind::Split: {
      if (parts.empty()) {
        out = "SplitRows(" + list() + ")";
        break;
      }
      out = "Split(";
      for (std::size_t i = 0; i < parts.size(); ++i) {
        const auto& p = parts[i];
        out += (i ? " " : "") + (p.shard < int(names.size()) ? names[std::size_t(p.shard)] : "?") + ":rows=";
        for (std::size_t k = 0; k < p.rows.size(); ++k) out += (k ? "," : "") + std::to_string(p.rows[k]);
      }
      out += ")";
      break;
    }
    case RouteKind::Refuse: out = "Refuse(" + error.sqlstate + ": " + error.message + ")"; break;
  }
  if (!reason.empty()) out += " by " + reason;
  if (merge) {  // the operator chain, one indented line per operator
    std::string tree = merge->explain();
    out += "\n  ";
    for (char c : tree) out += c == '\n' ? std::string("\n  ") : std::string(1, c);
  }
  return out;
}

}  // namespace shardline::router
