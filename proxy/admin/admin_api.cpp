#include "proxy/admin/admin_api.hpp"

#include <algorithm>
#include <charconv>

namespace shardline::proxy::admin {

nlohmann::json table_json(const Table& t) {
  std::vector<bool> numeric(t.columns.size(), false);
  for (std::size_t c = 0; c < t.columns.size(); ++c)
    numeric[c] = std::find(t.numeric.begin(), t.numeric.end(), t.columns[c]) != t.numeric.end();
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : t.rows) {
    nlohmann::json o = nlohmann::json::object();
    for (std::size_t c = 0; c < t.columns.size() && c < r.size(); ++c) {
      const std::string& v = r[c];
      if (!numeric[c]) {
        o[t.columns[c]] = v;
        continue;
      }
      std::int64_t i = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), i);
      if (!v.empty() && ec == std::errc() && p == v.data() + v.size()) {
        o[t.columns[c]] = i;
        continue;
      }
      double d = 0;
      auto [pd, ecd] = std::from_chars(v.data(), v.data() + v.size(), d);
      if (!v.empty() && ecd == std::errc() && pd == v.data() + v.size())
        o[t.columns[c]] = d;
      else
        o[t.columns[c]] = nullptr;
    }
    rows.push_back(std::move(o));
  }
  return rows;
}

std::optional<Table> api_table(session::Services& s, std::string_view name) {
  if (name == "shards") return show_shards(s);
  if (name == "directory") return show_directory(s);
  if (name == "replicas") return show_replicas(s);
  if (name == "tenants") return show_tenants(s);
  if (name == "reshards") return show_reshards(s);
  if (name == "pools") return show_pools(s);
  if (name == "stats") return show_stats(s);
  if (name == "clients") return show_clients(s);
  if (name == "servers") return show_servers(s);
  return std::nullopt;
}

}  // namespace shardline::proxy::admin
