#include "proxy/exec/ops/row_order.hpp"

namespace shardline::proxy::exec::ops {

protocol::SqlError column_out_of_range(int column, std::size_t columns) {
  return protocol::SqlError::error(protocol::sqlstate::kInternalError,
                                   "merge plan refers to column #" + std::to_string(column) + " but the shards return " +
                                       std::to_string(columns) + " columns");
}

bool resolve_column(int& column, std::size_t columns, protocol::SqlError& error) {
  const long resolved = column < 0 ? long(columns) + column : column;
  if (resolved < 0 || std::size_t(resolved) >= columns) {
    error = column_out_of_range(column, columns);
    return false;
  }
  column = int(resolved);
  return true;
}

std::optional<RowOrder> RowOrder::make(const std::vector<router::SortKey>& keys, const std::vector<ColumnDesc>& columns,
                                       const MergeContext& ctx, protocol::SqlError& error, bool equality_only,
                                       std::string_view construct) {
  RowOrder order;
  for (auto k : keys) {
    if (!resolve_column(k.column, columns.size(), error)) return std::nullopt;
    const ColumnDesc& c = columns[std::size_t(k.column)];
    MergeContext equality = ctx;
    equality.bytewise_collation = true;  // equal text is equal bytes under any collation
    auto type = comparable_type(c.type_oid, equality_only ? equality : ctx, error, construct);
    if (!type) return std::nullopt;
    if (type->cls == TypeClass::Float && c.format == 0 && !ctx.exact_float_text) {
      error = protocol::SqlError::error(protocol::sqlstate::kFeatureNotSupported,
                                        "cross-shard " + std::string(construct) +
                                            " on a floating-point column in text format is not supported with "
                                            "extra_float_digits below 1 (different values can print alike)");
      return std::nullopt;
    }
    order.keys_.push_back(Key{k, *type, c.format});
  }
  return order;
}

bool RowOrder::decode(const Cells& row, RowKey& out, protocol::SqlError& error) const {
  out.clear();
  for (const auto& k : keys_) {
    if (std::size_t(k.key.column) >= row.size()) {
      error = column_out_of_range(k.key.column, row.size());
      return false;
    }
    const auto& cell = row[std::size_t(k.key.column)];
    if (!cell) {
      out.emplace_back(std::nullopt);
      continue;
    }
    auto v = decode_value(k.type, *cell, k.format, error);
    if (!v) return false;
    out.emplace_back(std::move(*v));
  }
  return true;
}

bool RowOrder::decode_row(std::string_view msg, Cells& cells, RowKey& out, protocol::SqlError& error) const {
  if (!parse_data_row(msg, cells)) {
    error = malformed_message('D');
    return false;
  }
  return decode(cells, out, error);
}

int RowOrder::compare(const RowKey& a, const RowKey& b) const {
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    const auto& k = keys_[i].key;
    const auto &x = a[i], &y = b[i];
    if (!x || !y) {
      if (!x && !y) continue;
      const bool x_first = !x ? k.nulls_first : !k.nulls_first;
      return x_first ? -1 : 1;
    }
    int c = compare_decoded(*x, *y);
    if (c != 0) return k.descending ? -c : c;
  }
  return 0;
}

std::string explain_keys(const std::vector<router::SortKey>& keys) {
  std::string out;
  for (const auto& k : keys) {
    if (!out.empty()) out += ", ";
    out += "#" + std::to_string(k.column);
    if (k.descending) out += " DESC";
    if (k.nulls_first != k.descending) out += k.nulls_first ? " NULLS FIRST" : " NULLS LAST";
  }
  return out;
}

}  // namespace shardline::proxy::exec::ops
