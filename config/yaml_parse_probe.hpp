#pragma once
// A backstop for yaml-cpp 0.7's runaway parses: on some malformed inputs LoadAll never returns
// and its memory grows without bound (each longer run of fuzz/config_fuzz.cpp found another
// shape, e.g. an indented root mapping followed by `,` in column 1). Guards on the text
// (yaml_text_checks.hpp) give positioned messages for the shapes we know; this one catches the
// rest by letting yaml-cpp parse the text first in a child process with CPU-time and memory
// limits, so a runaway parse costs a killed child instead of the proxy.

#include <string_view>

namespace shardline::config::detail {

enum class ParseProbe {
  Finishes,  ///< yaml-cpp returned (a document, or a syntax error) within the limits
  Runaway,   ///< it had to be stopped: over the CPU-time, wall-clock or memory limit
  Unknown,   ///< no child could be started (fork failed): the caller parses in-process
};

/// Runs yaml-cpp's LoadAll on `text` in a forked child (at most 1 s of CPU, 3 s of wall clock,
/// 1 GiB of address space beyond the process's own, none under ASan; a real configuration takes
/// milliseconds) and says how it ended.
ParseProbe probe_yaml_parse(std::string_view text);

}  // namespace shardline::config::detail
