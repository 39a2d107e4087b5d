#pragma once
// Checks of a config file's raw text that run before yaml-cpp parses it: bytes YAML cannot hold,
// and document starts that make yaml-cpp 0.7 hang (found by fuzz/config_fuzz.cpp).

#include <cstddef>
#include <optional>
#include <string_view>

namespace shardline::config::detail {

/// Where a byte YAML text cannot hold is (1-based line and column, counted in characters).
struct BytePosition {
  std::size_t offset = 0;
  int line = 1, column = 1;
};

/// The first byte that is not part of valid UTF-8, or is a C0 control character other than tab,
/// LF and CR (or DEL), as YAML 1.2's printable character set requires; nullopt when all are fine.
std::optional<BytePosition> first_non_text_byte(std::string_view s);

/// yaml-cpp 0.7 never returns from LoadAll when a document's root node starts with `,` (or a
/// root quoted scalar is followed by one), found by fuzz/config_fuzz.cpp. A config's root must
/// be a mapping anyway, so a document whose first token is `,` or a quoted scalar is refused
/// before yaml-cpp sees it. Blank lines, comments, directives, `---` / `...` and the root's tag
/// or anchor are skipped.
std::optional<BytePosition> document_start_problem(std::string_view s);

}  // namespace shardline::config::detail
