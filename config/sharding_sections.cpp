// The sharding half of the config schema: the sharding section and its tables, the directory
// of logical shard ranges, shards with their endpoints, replicas, and the directory's coverage checks.
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config_reader.hpp"

namespace shardline::config::detail {

namespace {

/// Large enough for any real deployment, small enough that a directory array stays cheap.
constexpr std::int64_t kMaxLogicalShards = std::int64_t{1} << 20;

/// One end of a `logical` range: unsigned decimal digits that fit an int.
bool parse_logical_shard(std::string_view s, int& out) {
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

void ConfigReader::read_sharding(const Value& map) {
  Sharding& s = config_.sharding;
  read_fields(map, {
      {"logical_shards",
       [&](const Value& v) {
         if (auto n = integer(v, 1, kMaxLogicalShards)) {
           s.logical_shards = static_cast<int>(*n);
         } else {
           logical_shards_valid_ = false;
         }
       }},
      {"key", [&](const Value& v) { set_string(s.key, v); }},
      {"tables", [&](const Value& v) { read_tables(v); }},
      {"auto_tables", [&](const Value& v) { set_bool(s.auto_tables, v); }},
      {"reference_tables",
       [&](const Value& v) {
         for_each_string(v, [&](std::string name, const Value& item) {
           s.reference_tables.push_back(std::move(name));
           reference_marks_.push_back(item.mark);
         });
       }},
      {"home_shard",
       [&](const Value& v) {
         if (auto name = string(v)) {
           s.home_shard = *name;
           home_shard_mark_ = v.mark;
         }
       }},
      {"cross_shard",
       [&](const Value& v) {
         set_choice(s.cross_shard, v, {{"allow", CrossShard::Allow}, {"deny", CrossShard::Deny}});
       }},
      {"cross_shard_transactions",
       [&](const Value& v) {
         set_choice(s.cross_shard_transactions, v,
                    {{"deny", CrossShardTransactions::Deny},
                     {"2pc", CrossShardTransactions::TwoPhaseCommit}});
       }},
  });
}

void ConfigReader::read_tables(const Value& map) {
  for_each_entry(map, [&](const std::string& name, const YAML::Mark& key_mark, const Value& spec) {
    ShardedTable t;
    t.name = name;
    if (name.empty()) error(key_mark, fmt::format("{}: table names must not be empty", map.path));
    read_fields(spec, {
        {"key", [&](const Value& v) { set_string(t.key, v); }},
        {"type",
         [&](const Value& v) {
           // Aliases PostgreSQL accepts, folded to the names the hash functions are keyed by.
           t.type = choice<std::string_view>(
               v, {{"smallint", "smallint"}, {"integer", "integer"}, {"int", "integer"},
                   {"int2", "smallint"}, {"int4", "integer"}, {"int8", "bigint"},
                   {"bigint", "bigint"}, {"text", "text"}, {"varchar", "text"},
                   {"uuid", "uuid"}});
         }},
    });
    table_marks_.push_back(key_mark);
    config_.sharding.tables.push_back(std::move(t));
  });
}

void ConfigReader::read_directory(const Value& seq) {
  directory_mark_ = seq.mark;
  if (seq.node.IsNull()) {
    error(seq, "at least one logical shard range is required");
    return;
  }
  directory_readable_ = seq.node.IsSequence();
  for_each_item(seq, [&](const Value& item) {
    DirectoryEntry e;
    e.index = static_cast<int>(entries_.size());
    read_fields(item, {
        {"logical", [&](const Value& v) { read_logical_range(v, e); }, true},
        {"shard",
         [&](const Value& v) {
           if (auto name = string(v)) {
             e.range.shard = *name;
             e.shard_mark = v.mark;
           }
         },
         true},
    });
    if (!e.parsed) directory_complete_ = false;
    entries_.push_back(e);
    config_.directory.push_back(e.range);
  });
}

void ConfigReader::read_logical_range(const Value& v, DirectoryEntry& e) {
  e.logical_mark = v.mark;
  if (!v.node.IsScalar()) {
    error(v, fmt::format("expected a logical shard N or range A-B, got {}", kind_name(v.node)));
    return;
  }
  e.text = v.node.Scalar();
  const std::string_view text = trim(e.text);
  const auto dash = text.find('-');
  const std::string_view first = trim(text.substr(0, dash));
  const std::string_view last = dash == std::string_view::npos ? first : trim(text.substr(dash + 1));
  int a = 0;
  int b = 0;
  if (!parse_logical_shard(first, a) || !parse_logical_shard(last, b)) {
    error(v, fmt::format("malformed logical shard range '{}' (expected N or A-B, e.g. 0-511)", e.text));
    return;
  }
  if (a > b) {
    error(v, fmt::format("logical shard range '{}' is reversed (the first shard must not exceed the last)",
                         e.text));
    return;
  }
  e.range.first = a;
  e.range.last = b;
  e.parsed = true;
}

void ConfigReader::read_shards(const Value& map) {
  if (map.node.IsNull() || (map.node.IsMap() && map.node.size() == 0)) {
    error(map, "at least one shard is required");
    return;
  }
  shards_readable_ = for_each_entry(map, [&](const std::string& name, const YAML::Mark& key_mark,
                                              const Value& spec) {
    if (name.empty()) error(key_mark, "shards: shard names must not be empty");
    Shard shard;
    shard.name = name;
    read_fields(spec, {
        {"primary", [&](const Value& v) { read_endpoint(v, shard.primary); }, true},
        {"replicas",
         [&](const Value& v) {
           if (v.node.IsNull()) return;
           for_each_item(v, [&](const Value& item) {
             Endpoint ep;
             read_endpoint(item, ep);
             shard.replicas.push_back(ep);
           });
         }},
    });
    config_.shards.push_back(std::move(shard));
  });
}

void ConfigReader::read_endpoint(const Value& map, Endpoint& ep) {
  if (map.node.IsNull()) {
    error(map, "expected a mapping {host, port}, got nothing");
    return;
  }
  read_fields(map, {
      {"host", [&](const Value& v) { set_string(ep.host, v); }, true},
      {"port", [&](const Value& v) { set_port(ep.port, v); }},
  });
}

void ConfigReader::read_replicas(const Value& map) {
  Replicas& r = config_.replicas;
  read_fields(map, {
      {"max_lag_bytes",
       [&](const Value& v) {
         if (auto n = integer(v, 0, std::numeric_limits<std::int64_t>::max())) r.max_lag_bytes = *n;
       }},
      {"max_lag_ms", [&](const Value& v) { set_int(r.max_lag_ms, v, 0); }},
      {"poll_interval_ms", [&](const Value& v) { set_int(r.poll_interval_ms, v, 1); }},
      {"health_timeout_ms",
       [&](const Value& v) {
         health_timeout_mark_ = v.mark;
         set_int(r.health_timeout_ms, v, 1);
       }},
      {"default_consistency",
       [&](const Value& v) {
         set_choice(r.default_consistency, v,
                    {{"strong", Consistency::Strong}, {"global", Consistency::Global}, {"session", Consistency::Session},
                     {"eventual", Consistency::Eventual}});
       }},
      {"read_after_wait_ms", [&](const Value& v) { set_int(r.read_after_wait_ms, v, 0); }},
      {"report_lsn", [&](const Value& v) { set_bool(r.report_lsn, v); }},
      {"read_only_functions",
       [&](const Value& v) {
         for_each_string(v, [&](std::string name, const Value&) { r.read_only_functions.push_back(std::move(name)); });
       }},
      {"track_commit_lsn", [&](const Value& v) { set_bool(r.track_commit_lsn, v); }},
  });
}

void ConfigReader::validate_directory() {
  const Config& c = config_;
  for (const DirectoryEntry& e : entries_) {
    if (shards_readable_ && !e.range.shard.empty() && !c.find_shard(e.range.shard)) {
      error(e.shard_mark, fmt::format("directory[{}].shard: unknown shard '{}'", e.index, e.range.shard));
    }
  }
  if (!logical_shards_valid_ || !directory_readable_) return;

  const int n = c.sharding.logical_shards;
  std::vector<const DirectoryEntry*> in_range;
  bool complete = directory_complete_;
  for (const DirectoryEntry& e : entries_) {
    if (!e.parsed) continue;
    if (e.range.last >= n) {
      error(e.logical_mark,
            fmt::format("directory[{}].logical: range '{}' is outside 0-{} (sharding.logical_shards is {})",
                        e.index, e.text, n - 1, n));
      complete = false;
      continue;
    }
    in_range.push_back(&e);
  }

  // Sorted by first shard, an entry overlaps an earlier one iff it starts at or before the
  // furthest end seen so far; whatever lies between that end and its start is a gap.
  std::stable_sort(in_range.begin(), in_range.end(),
                   [](const auto* a, const auto* b) { return a->range.first < b->range.first; });
  const DirectoryEntry* furthest = nullptr;
  int next_unassigned = 0;
  for (const DirectoryEntry* e : in_range) {
    if (furthest && e->range.first <= furthest->range.last) {
      // Report at whichever of the two comes later in the file: that is the one just added.
      const DirectoryEntry* later = e->index > furthest->index ? e : furthest;
      const DirectoryEntry* earlier = later == e ? furthest : e;
      error(later->logical_mark,
            fmt::format("directory[{}].logical: range '{}' (shard {}) overlaps directory[{}] range '{}' "
                        "(shard {}, line {})",
                        later->index, later->text, later->range.shard, earlier->index, earlier->text,
                        earlier->range.shard, earlier->logical_mark.line + 1));
    } else if (e->range.first > next_unassigned && complete) {
      error(directory_mark_,
            fmt::format("directory: logical shard {} is not assigned to any shard (gap {}-{})",
                        next_unassigned, next_unassigned, e->range.first - 1));
    }
    if (!furthest || e->range.last > furthest->range.last) furthest = e;
    next_unassigned = std::max(next_unassigned, e->range.last + 1);
  }
  if (complete && next_unassigned < n) {
    error(directory_mark_,
          fmt::format("directory: logical shard {} is not assigned to any shard (gap {}-{})",
                      next_unassigned, next_unassigned, n - 1));
  }
}

}  // namespace shardline::config::detail
