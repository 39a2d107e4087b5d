#pragma once
// Which tables are sharded (and by which key column and type), which are reference tables,
// and where unsharded tables live. Immutable; rebuilt when key types are learned from the
// shards' catalogs or the configuration is reloaded.

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "config/config.hpp"
#include "router/parser/statement.hpp"
#include "router/sharding/key_type.hpp"
#include "router/sharding/learned_tables.hpp"

namespace shardline::router {

struct ShardedTableInfo {
  std::string schema = "public";
  std::string name;
  std::string key;                ///< key column
  std::optional<KeyType> type;    ///< configured or learned; unset until known
  /// 0-based position of the key among the table's columns, learned from the shards with the
  /// type (-1 until known): where an INSERT without a column list puts the key.
  int key_position = -1;
};

class ShardingSchema {
 public:
  /// `learned` maps "schema.table" or "table" to a key type name from the shards' catalogs;
  /// a type given in the config wins.
  static std::shared_ptr<const ShardingSchema> from_config(const config::Config& cfg,
                                                           const std::map<std::string, std::string>& learned = {},
                                                           const std::map<std::string, int>& key_positions = {});
  /// The same with everything learned from the shards, auto tables included.
  static std::shared_ptr<const ShardingSchema> from_config(const config::Config& cfg, const LearnedTables& learned);

  /// The table's sharding, or null for reference and unsharded tables. With
  /// `sharding.auto_tables`, once the relations are learned, a table the shards do not hold yet
  /// counts as sharded by `sharding.key` (type unknown): so CREATE TABLE of a new table runs on
  /// every shard, and the relearning after that DDL decides from its columns whether it stays
  /// sharded (it has the key) or is unsharded and used on the home shard only.
  const ShardedTableInfo* sharded(const TableRef& t) const;
  bool is_reference(const TableRef& t) const;
  int logical_shards() const { return logical_shards_; }
  int home_shard() const { return home_shard_; }
  int shard_count() const { return shard_count_; }
  bool cross_shard_allowed() const { return cross_shard_allowed_; }
  /// pool.mode: session. A client then keeps its server connection between transactions, so
  /// state that outlives a transaction (a WITH HOLD cursor) stays where the client can reach it.
  bool session_pooling() const { return session_pooling_; }
  /// replicas.read_only_functions, lower case.
  bool read_only_function(const std::string& name) const { return read_only_functions_.count(name) > 0; }
  const std::map<std::string, ShardedTableInfo>& tables() const { return sharded_; }
  /// sharding.auto_tables (whether or not the shards' relations are known yet).
  bool auto_tables() const { return auto_tables_; }
  /// Whether the shards hold `t` (a relation of that name in the catalog), as last learned;
  /// true when not learned. An unqualified name matches a relation of that name in any schema.
  bool known_relation(const TableRef& t) const;

 private:
  static std::string qualified(const TableRef& t) {
    return (t.schema.empty() ? std::string("public") : t.schema) + "." + t.name;
  }
  std::map<std::string, ShardedTableInfo> sharded_;  ///< by "schema.table"
  std::set<std::string> reference_;                  ///< "schema.table"
  int logical_shards_ = 1024;
  int home_shard_ = 0;
  int shard_count_ = 1;
  bool cross_shard_allowed_ = true;
  bool session_pooling_ = false;
  std::set<std::string> read_only_functions_;
  bool auto_tables_ = false;
  std::string default_key_;
  std::optional<std::set<std::string>> relations_;  ///< "schema.name", auto_tables only
  std::set<std::string> relation_names_;            ///< bare names of relations_
  /// Entries for tables new to the proxy (see sharded()), made on first lookup; bounded by
  /// kMaxNewTables, after which one shared entry stands for the rest.
  mutable std::mutex new_tables_mutex_;
  mutable std::map<std::string, ShardedTableInfo> new_tables_;
  ShardedTableInfo new_table_overflow_;
  static constexpr std::size_t kMaxNewTables = 1024;
};

}  // namespace shardline::router
