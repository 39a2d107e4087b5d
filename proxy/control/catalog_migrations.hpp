#pragma once
// The SQL that creates and evolves the catalog schema `shardline` (migrations/NNNN_name.sql),
// compiled into the binary by CMake so that the proxy needs no files at run time. The
// definition is generated into the build directory (see CMakeLists.txt).

#include <string_view>
#include <vector>

namespace shardline::control {

/// One migration file, as it was when the binary was built.
struct Migration {
  int version = 0;              ///< NNNN of the file name; applied in ascending order
  std::string_view name;        ///< the `name` part of NNNN_name.sql
  std::string_view file;        ///< the file name, for messages: "0001_catalog.sql"
  std::string_view checksum;    ///< lowercase hex SHA-256 of the file; an applied file may not change
  std::string_view sql;         ///< the file's text, run as one simple-protocol query
};

/// Every migration in migrations/, sorted by version (versions are unique: CMake refuses
/// duplicates).
const std::vector<Migration>& catalog_migrations();

}  // namespace shardline::control
