#include "proxy/control/key_type_names.hpp"

#include <fmt/format.h>

#include "proxy/control/catalog_error.hpp"

namespace shardline::control {

QualifiedName split_table_name(std::string_view configured) {
  const auto dot = configured.find('.');
  QualifiedName q;
  if (dot == std::string_view::npos) {
    q.schema = "public";
    q.table = std::string(configured);
  } else {
    if (configured.find('.', dot + 1) != std::string_view::npos)
      throw CatalogError(fmt::format("sharded table '{}': expected TABLE or SCHEMA.TABLE", configured));
    q.schema = std::string(configured.substr(0, dot));
    q.table = std::string(configured.substr(dot + 1));
  }
  if (q.schema.empty() || q.table.empty())
    throw CatalogError(fmt::format("sharded table '{}': schema and table names must not be empty", configured));
  return q;
}

std::optional<std::string> normalize_key_type(std::string_view data_type) {
  if (data_type == "smallint" || data_type == "integer" || data_type == "bigint" ||
      data_type == "text" || data_type == "uuid")
    return std::string(data_type);
  if (data_type == "character varying") return "text";
  return std::nullopt;
}

std::string_view key_type_family(std::string_view normalized) {
  if (normalized == "smallint" || normalized == "integer" || normalized == "bigint") return "integer";
  return normalized;
}

}  // namespace shardline::control
