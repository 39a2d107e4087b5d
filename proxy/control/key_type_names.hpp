#pragma once
// Names of sharded tables and of their key column types as the control plane reads them from
// a shard's information_schema, mapped to the key types shardline can hash like PostgreSQL.

#include <optional>
#include <string>
#include <string_view>

namespace shardline::control {

/// A table name from the config: "orders" is public.orders, "sales.orders" is sales.orders.
struct QualifiedName {
  std::string schema;
  std::string table;
};

/// Splits a configured table name; throws CatalogError for an empty part or more than one dot.
QualifiedName split_table_name(std::string_view configured);

/// information_schema.columns.data_type -> "smallint" | "integer" | "bigint" | "text" | "uuid",
/// or nullopt when PostgreSQL's hash partitioning of that type is not one shardline computes
/// (numeric, character(n), dates ...). "character varying" hashes as text.
std::optional<std::string> normalize_key_type(std::string_view data_type);

/// The three integer types hash alike, so they form one family; text and uuid are their own.
/// Two key types route a key to the same logical shard only when their families agree.
std::string_view key_type_family(std::string_view normalized);

}  // namespace shardline::control
