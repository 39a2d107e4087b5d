#pragma once
// The order (or equality, for group keys and DISTINCT) of rows by a list of key columns, as
// PostgreSQL's ORDER BY gives it: each key type-aware (column_value), ASC/DESC, NULLS
// FIRST/LAST. Keys are decoded once per row, then compared any number of times.

#include <optional>
#include <vector>

#include "proxy/exec/ops/column_value.hpp"
#include "proxy/exec/ops/row_codec.hpp"
#include "router/plan/merge_plan.hpp"

namespace shardline::proxy::exec::ops {

/// A row's decoded key values, in key order (nullopt: NULL).
using RowKey = std::vector<std::optional<Value>>;

class RowOrder {
 public:
  /// Fails (0A000 naming the type, or XX000 for a key past the last column) when a key column
  /// cannot be compared exactly.
  /// Columns below 0 count from the end of the row (-1 is the last), as plans over `SELECT *`
  /// name hidden columns. `equality_only` (group keys, DISTINCT): text may be compared under
  /// any deterministic collation, since equal means byte-equal there.
  static std::optional<RowOrder> make(const std::vector<router::SortKey>& keys, const std::vector<ColumnDesc>& columns,
                                      const MergeContext& ctx, protocol::SqlError& error, bool equality_only = false,
                                      std::string_view construct = "ORDER BY/GROUP BY");
  bool decode(const Cells& row, RowKey& out, protocol::SqlError& error) const;
  /// Parses the DataRow `msg` into `cells` (scratch) and decodes its key.
  bool decode_row(std::string_view msg, Cells& cells, RowKey& out, protocol::SqlError& error) const;
  /// <0 when `a` sorts before `b`, 0 when equal in every key (NULL equals NULL).
  int compare(const RowKey& a, const RowKey& b) const;

 private:
  struct Key {
    router::SortKey key;
    ColumnType type;
    int format = 0;
  };
  std::vector<Key> keys_;
};

/// "#2 DESC NULLS LAST, #0": a key list as explain() writes it (NULLS only when not the default).
std::string explain_keys(const std::vector<router::SortKey>& keys);

/// A plan that refers to a column the shards do not return.
protocol::SqlError column_out_of_range(int column, std::size_t columns);

/// A plan's column number in a row of `columns` columns: below 0 counts from the end. Fails
/// (XX000) when it names no column.
bool resolve_column(int& column, std::size_t columns, protocol::SqlError& error);

}  // namespace shardline::proxy::exec::ops
