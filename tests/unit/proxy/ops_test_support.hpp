#pragma once
// Hand-made RowDescriptions and DataRows for the merge operator tests, and a sink that keeps
// what reaches the client.

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "proxy/exec/ops/operator.hpp"
#include "proxy/exec/ops/row_codec.hpp"

namespace shardline::proxy::exec::ops::testing {

using Vals = std::vector<std::optional<std::string>>;

inline ColumnDesc col(std::string name, std::uint32_t oid, std::int16_t format = 0) {
  ColumnDesc c;
  c.name = std::move(name);
  c.type_oid = oid;
  c.format = format;
  c.typlen = -1;
  return c;
}

inline std::string rd(const std::vector<ColumnDesc>& cols) { return build_row_description(cols); }

inline std::string row(const Vals& v) {
  Cells cells;
  for (const auto& x : v) cells.push_back(x ? std::optional<std::string_view>(*x) : std::nullopt);
  return build_data_row(cells);
}

inline Vals values_of(std::string_view msg) {
  Cells cells;
  if (!parse_data_row(msg, cells)) return {std::string("<malformed>")};
  Vals out;
  for (const auto& c : cells) out.push_back(c ? std::optional<std::string>(std::string(*c)) : std::nullopt);
  return out;
}

inline std::string be(std::uint64_t v, int bytes) {
  std::string out;
  for (int i = bytes - 1; i >= 0; --i) out.push_back(char((v >> (8 * i)) & 0xff));
  return out;
}
inline std::string bin_i8(std::int64_t v) { return be(std::uint64_t(v), 8); }
inline std::string bin_i4(std::int32_t v) { return be(std::uint32_t(v), 4); }
inline std::string bin_i2(std::int16_t v) { return be(std::uint16_t(v), 2); }
inline std::string bin_f8(double d) {
  std::uint64_t bits;
  std::memcpy(&bits, &d, 8);
  return be(bits, 8);
}
inline std::string bin_f4(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return be(bits, 4);
}

class CollectSink final : public RowSink {
 public:
  void describe(std::string_view d) override {
    ++describes;
    description = std::string(d);
  }
  void row(std::string_view r) override { rows.push_back(values_of(r)); }
  std::vector<ColumnDesc> columns() const { return description ? *parse_row_description(*description) : std::vector<ColumnDesc>{}; }
  /// The first column of every row, "NULL" for NULL.
  std::vector<std::string> first_column() const {
    std::vector<std::string> out;
    for (const auto& r : rows) out.push_back(r.at(0) ? *r.at(0) : "NULL");
    return out;
  }
  int describes = 0;
  std::optional<std::string> description;
  std::vector<Vals> rows;
};

inline router::SortKey key(int column, bool descending = false, std::optional<bool> nulls_first = std::nullopt) {
  return router::SortKey{column, descending, nulls_first.value_or(descending)};
}

inline router::MergeOperator op(router::MergeOperator::Kind kind) {
  router::MergeOperator o;
  o.kind = kind;
  return o;
}

}  // namespace shardline::proxy::exec::ops::testing
