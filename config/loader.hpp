#pragma once
// Loads and validates shardline's YAML configuration (../shared/SPEC.md section 3).
// Every problem is reported with the position of the offending node, like a compiler, so that
// `shardline check` can print all of them at once and SIGHUP can refuse a bad file with reasons.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "config/diagnostic.hpp"

namespace shardline::config {

/// The outcome of a load: a config only when the file was free of problems, because a
/// half-valid config must never replace a running one (SIGHUP keeps the old config).
struct LoadResult {
  std::optional<Config> config;
  std::vector<Diagnostic> problems;  ///< sorted by position
  bool ok() const { return config.has_value() && problems.empty(); }
};

/// Reads `path` and parses it; Config::path is set to `path`.
LoadResult load_config_file(const std::string& path);

/// Parses YAML text; `file_label` names it in diagnostics and becomes Config::path.
LoadResult parse_config(std::string_view yaml_text, const std::string& file_label);

}  // namespace shardline::config
