#pragma once
// The one exception the control plane's catalog code throws: libpqxx/libpq failures are
// converted into it at the catalog boundary, with the catalog server named in the message.

#include <stdexcept>
#include <string>

namespace shardline::control {

class CatalogError : public std::runtime_error {
 public:
  explicit CatalogError(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace shardline::control
