#pragma once
// One column value of a shard row, decoded from its wire form (text or binary, per the
// RowDescription) into a form that compares exactly as PostgreSQL's default btree operator
// class for the type. Types whose order the proxy cannot reproduce exactly are refused (0A000)
// when the column is first seen, never compared approximately.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/exec/ops/numeric_text.hpp"
#include "proxy/exec/ops/operator.hpp"
#include "proxy/protocol/sql_error.hpp"

namespace shardline::proxy::exec::ops {

/// How a type's values compare.
enum class TypeClass {
  Integer,      ///< int2, int4, int8, oid
  Numeric,      ///< numeric
  Float,        ///< float4, float8: NaN above +Infinity, -0 = 0
  Bool,         ///< false < true
  Text,         ///< text, varchar, name: bytes (only under a byte-order collation)
  Bpchar,       ///< character(n): bytes without trailing blanks
  Date,         ///< days; -infinity / infinity at the ends
  Timestamp,    ///< microseconds; timestamptz in UTC
  Uuid,         ///< 16 bytes, unsigned
  Bytea,        ///< bytes, unsigned, shorter prefix first (any collation); text only as hex
  Time,         ///< time without time zone: microseconds since midnight
};

struct ColumnType {
  TypeClass cls = TypeClass::Integer;
  std::uint32_t oid = 0;
  bool with_zone = false;  ///< timestamptz: text values carry an offset
};

/// "integer", "numeric", "interval", ... or "type OID 12345".
std::string type_name(std::uint32_t oid);

/// The comparison class of a column type; 0A000 naming the type (and `construct`, the SQL that
/// needs the comparison) when values of it cannot be compared exactly here.
std::optional<ColumnType> comparable_type(std::uint32_t oid, const MergeContext& ctx, protocol::SqlError& error,
                                          std::string_view construct = "ORDER BY/GROUP BY");

/// A decoded, non-NULL value.
struct Value {
  TypeClass cls = TypeClass::Integer;
  std::int64_t i = 0;  ///< Integer, Bool, Date, Timestamp, Time
  double f = 0;        ///< Float (not NaN)
  bool nan = false;    ///< Float
  Numeric n;           ///< Numeric
  std::string bytes;   ///< Text, Bpchar (trailing blanks removed), Uuid (16 bytes), Bytea
};

/// Decodes `data` in wire format `format` (0 text, 1 binary). Text input may also be any
/// spelling the type's input function accepts for the types whose constants reach a Having
/// ('1e3', ' true ', 'INF'). Fails with a message naming the type and the value.
std::optional<Value> decode_value(const ColumnType& type, std::string_view data, int format,
                                  protocol::SqlError& error);

/// <0, 0, >0 in PostgreSQL's order; both values of the same column type.
int compare_decoded(const Value& a, const Value& b);

/// Decodes and compares two values of one column.
std::optional<int> compare_values(const ColumnType& type, int format, std::string_view a, std::string_view b,
                                  protocol::SqlError& error);

}  // namespace shardline::proxy::exec::ops
