#pragma once
// ConfigReader: reads shardline's configuration schema (SPEC.md section 3) into a Config, section
// by section, then checks the sections against each other. Defined in loader.cpp (read, the
// server-side sections, the cross-section checks) and sharding_sections.cpp (sharding and shards).

#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "config/loader.hpp"
#include "config/yaml_reader.hpp"

namespace shardline::config::detail {

/// Walks the YAML tree once, filling a Config and collecting every problem on the way; the
/// checks that relate sections to each other run at the end, when everything has been read.
class ConfigReader : public YamlReader {
 public:
  explicit ConfigReader(std::string file) : YamlReader(std::move(file)) {}

  LoadResult read(std::string_view text);

 private:
  /// What the cross-section checks need to know about one `directory` entry.
  struct DirectoryEntry {
    int index = 0;
    DirectoryRange range;
    std::string text;  ///< the range as written, for messages
    bool parsed = false;
    YAML::Mark logical_mark, shard_mark;
  };

  /// The problems found, and the config only when there are none.
  LoadResult finish();

  // ---- sections: loader.cpp ---------------------------------------------------------------
  /// False when the document is not a mapping at all: then there is nothing to cross-check.
  bool read_root(const Value& root);
  void read_listen(const Value& map);
  void read_tls(const Value& map);
  void read_admin(const Value& map);
  void read_users(const Value& seq);
  void read_control(const Value& map);
  void read_backend(const Value& map);
  void read_pool(const Value& map);

  // ---- sections: sharding_sections.cpp ----------------------------------------------------
  void read_sharding(const Value& map);
  void read_tables(const Value& map);
  void read_directory(const Value& seq);
  void read_logical_range(const Value& v, DirectoryEntry& e);
  void read_shards(const Value& map);
  void read_endpoint(const Value& map, Endpoint& ep);
  void read_replicas(const Value& map);

  // ---- cross-section checks ---------------------------------------------------------------
  void validate();  ///< loader.cpp
  void validate_directory();  ///< sharding_sections.cpp

  Config config_;

  // Positions remembered for the checks that relate sections to each other.
  std::map<std::string, int> user_lines_;
  std::vector<YAML::Mark> admin_user_marks_;
  std::optional<YAML::Mark> http_port_mark_;
  std::vector<YAML::Mark> reference_marks_;
  std::vector<YAML::Mark> table_marks_;
  std::vector<DirectoryEntry> entries_;
  YAML::Mark directory_mark_;
  YAML::Mark home_shard_mark_;
  YAML::Mark health_timeout_mark_;
  bool logical_shards_valid_ = true;
  bool directory_complete_ = true;
  bool directory_readable_ = false;  ///< `directory` is a list: coverage checks are meaningful
  bool shards_readable_ = false;  ///< shard names are known: unknown-shard checks are meaningful
  bool users_complete_ = false;   ///< every user's name is known: unknown-user checks are meaningful
};

}  // namespace shardline::config::detail
