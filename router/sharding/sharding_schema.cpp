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
  LearnedTables l;
  l.key_types = learned;
  l.key_positions = key_positions;
  return from_config(cfg, l);
}

std::shared_ptr<const ShardingSchema> ShardingSchema::from_config(const config::Config& cfg, const LearnedTables& l) {
  const auto& learned = l.key_types;
  const auto& key_positions = l.key_positions;
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
  s->auto_tables_ = cfg.sharding.auto_tables;
  s->default_key_ = cfg.sharding.key;
  if (s->auto_tables_) {
    // Explicit `tables` entries win (their own key and type); reference tables never shard.
    for (const auto& name : l.auto_tables) {
      const TableRef ref = split_name(name);
      const std::string q = qualified(ref);
      if (s->sharded_.count(q) || s->reference_.count(q)) continue;
      ShardedTableInfo info{ref.schema, ref.name, cfg.sharding.key, std::nullopt, -1};
      if (auto it = learned.find(name); it != learned.end()) info.type = key_type_from_name(it->second);
      if (auto it = key_positions.find(name); it != key_positions.end()) info.key_position = it->second;
      s->sharded_[q] = info;
    }
    if (l.relations) {
      s->relations_ = *l.relations;
      for (const auto& r : *l.relations) s->relation_names_.insert(split_name(r).name);
    }
    s->new_table_overflow_ = ShardedTableInfo{"public", "(a table new to the proxy)", cfg.sharding.key, std::nullopt, -1};
  }
  for (auto f : cfg.replicas.read_only_functions) {
    for (auto& c : f) c = char(std::tolower(static_cast<unsigned char>(c)));
    s->read_only_functions_.insert(f);
  }
  return s;
}

const ShardedTableInfo* ShardingSchema::sharded(const TableRef& t) const {
  const std::string q = qualified(t);
  auto it = sharded_.find(q);
  if (it != sharded_.end()) return &it->second;
  if (!relations_ || known_relation(t) || reference_.count(q)) return nullptr;
  // A table the shards do not hold yet: sharded by the default key until its DDL is learned.
  std::lock_guard lock(new_tables_mutex_);
  if (auto n = new_tables_.find(q); n != new_tables_.end()) return &n->second;
  if (new_tables_.size() >= kMaxNewTables) return &new_table_overflow_;
  const TableRef ref = t.schema.empty() ? TableRef{"public", t.name} : t;
  return &new_tables_.emplace(q, ShardedTableInfo{ref.schema, ref.name, default_key_, std::nullopt, -1}).first->second;
}

bool ShardingSchema::known_relation(const TableRef& t) const {
  if (!relations_) return true;
  if (t.schema.empty()) return relation_names_.count(t.name) > 0;
  return relations_->count(t.schema + "." + t.name) > 0;
}

bool ShardingSchema::is_reference(const TableRef& t) const { return reference_.count(qualified(t)) > 0; }

}  // namespace shardline::router
