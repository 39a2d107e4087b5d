#pragma once
// Diagnostic: one problem found in a configuration file, with its position.

#include <string>

namespace shardline::config {

/// One problem found in a configuration file; positions are 1-based like an editor's.
struct Diagnostic {
  std::string file;
  int line = 0;    ///< 0 when the problem has no position (e.g. the file cannot be read)
  int column = 0;
  std::string message;

  /// "FILE:LINE:COL: message", or "FILE: message" when there is no position.
  std::string str() const;
};

}  // namespace shardline::config
