#include "router/sharding/sharding_schema.hpp"

#include <cctype>

namespace shardline::router {

namespace {
TableRef split_name(const std::string& n) {
  auto dot = n.find('.');
  if (dot == std::string::npos) return {"public", n};
  return {n.substr(0, dot), n.substr(dot + 1)};
}
}  // namespace

std::shared_ptr<const ShardingSchema> ShardingSchema::from_config(const config::Config& cfg,
                                                                  const std::map<std::string, std::string>& learned,
                                                                  const std::map<std::string, int>& key_positions) {
  auto s = std::make_shared<ShardingSchema>();
  s->logical_shards_ = cfg.sharding.logical_shards;
  s->shard_count_ = int(cfg.shards.size());
  s->cross_shard_allowed_ = cfg.sharding.cross_shard == config::CrossShard::Allow;
  s->session_pooling_ = cfg.pool.mode == config::PoolMode::Session;
  s->home_shard_ = 0;
  for (std::size_t i = 0; i < cfg.shards.size(); ++i)
    if (cfg.shards[i].name == cfg.sharding.home_shard) s->home_shard_ = int(i);
  for (const auto& t : cfg.sharding.tables) {
    TableRef ref = split_name(t.name);
    ShardedTableInfo info{ref.schema, ref.name, t.key.empty() ? cfg.sharding.key : t.key, std::nullopt, -1};
    for (const auto& key : {ref.schema + "." + ref.name, ref.name})
      if (auto it = key_positions.find(key); it != key_positions.end()) info.key_position = it->second;
    if (t.type) {
      info.type = key_type_from_name(*t.type);
    } else {
      for (const auto& key : {ref.schema + "." + ref.name, ref.name})
        if (auto it = learned.find(key); it != learned.end()) info.type = key_type_from_name(it->second);
    }
    s->sharded_[qualified(ref)] = info;
  }
  for (const auto& r : cfg.sharding.reference_tables) s->reference_.insert(qualified(split_name(r)));
  for (auto f : cfg.replicas.read_only_functions) {
    for (auto& c : f) c = char(std::tolower(static_cast<unsigned char>(c)));
    s->read_only_functions_.insert(f);
  }
  return s;
}

const ShardedTableInfo* ShardingSchema::sharded(const TableRef& t) const {
  auto it = sharded_.find(qualified(t));
  return it == sharded_.end() ? nullptr : &it->second;
}

bool ShardingSchema::is_reference(const TableRef& t) const { return reference_.count(qualified(t)) > 0; }

}  // namespace shardline::router
