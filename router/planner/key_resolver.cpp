#include "router/planner/key_resolver.hpp"

#include <algorithm>
#include <map>

namespace shardline::router {
namespace {

/// `-` applied by the grammar to a number literal is folded into it (doNegate in gram.y), so
/// -2147483648 is an integer constant and -9223372036854775808 a bigint one.
std::string negated(std::string_view number) {
  if (!number.empty() && number[0] == '-') return std::string(number.substr(1));
  return "-" + std::string(number);
}

KeyDatum number_with_ops(std::string_view text, const std::vector<KeyOp>& ops, std::size_t& first_op) {
  std::string folded(text);
  while (first_op < ops.size() && ops[first_op].kind == KeyOp::Kind::Negate) {
    folded = negated(folded);
    ++first_op;
  }
  return KeyDatum::number_literal(folded);
}

/// The datum of one value before its operators run; nullopt when its parameter is not bound.
std::optional<KeyDatum> base_datum(const KeyValue& v, const BindValues* bind, std::size_t& first_op,
                                   std::string* error) {
  switch (v.kind) {
    case KeyValue::Kind::Null:
      return KeyDatum::null();
    case KeyValue::Kind::Literal:
      if (v.string_literal) return KeyDatum::unknown_text(v.text);
      return number_with_ops(v.text, v.ops, first_op);
    case KeyValue::Kind::Param:
      break;
  }
  if (!bind || v.param < 1 || std::size_t(v.param) > bind->values.size()) {
    if (error) *error = "no value bound for parameter $" + std::to_string(v.param);
    return std::nullopt;
  }
  const std::size_t i = std::size_t(v.param - 1);
  const auto& val = bind->values[i];
  if (!val) return KeyDatum::null();
  const BindOrigin origin = i < bind->origins.size() ? bind->origins[i] : BindOrigin::Bind;
  if (origin == BindOrigin::StringLiteral) return KeyDatum::unknown_text(*val);
  if (origin == BindOrigin::NumberLiteral) return number_with_ops(*val, v.ops, first_op);
  const bool binary = i < bind->formats.size() && bind->formats[i] == 1;
  if (bind->types.empty()) {
    KeyDatum d = KeyDatum::parameter(SqlType::Unknown, *val, binary);
    d.set_uncertain();
    return d;
  }
  const auto type = sql_type_from_oid(i < bind->types.size() ? bind->types[i] : 0);
  KeyDatum d = KeyDatum::parameter(type.value_or(SqlType::Unknown), *val, binary);
  if (!type) d.set_uncertain();  // declared as a type shardline does not model
  return d;
}

enum class Category { Numeric, String, Uuid };

Category category_of(SqlType t) {
  switch (t) {
    case SqlType::Text: return Category::String;
    case SqlType::Uuid: return Category::Uuid;
    default: return Category::Numeric;
  }
}

/// Position in the numeric category's implicit-cast order (int2 -> int4 -> int8 -> numeric ->
/// float4 -> float8, float8 being the preferred type).
int numeric_rank(SqlType t) {
  switch (t) {
    case SqlType::Int2: return 1;
    case SqlType::Int4: return 2;
    case SqlType::Int8: return 3;
    case SqlType::Numeric: return 4;
    case SqlType::Float4: return 5;
    default: return 6;
  }
}

/// select_common_type over the typed members (Unknown ones take the result); nullopt when the
/// types belong to different categories.
std::optional<SqlType> common_type(const std::vector<SqlType>& types) {
  std::optional<SqlType> common;
  for (SqlType t : types) {
    if (t == SqlType::Unknown) continue;
    if (!common) {
      common = t;
    } else if (category_of(t) != category_of(*common)) {
      return std::nullopt;
    } else if (category_of(t) == Category::Numeric && numeric_rank(t) > numeric_rank(*common)) {
      common = t;
    }
  }
  return common.value_or(SqlType::Unknown);
}

/// Coerces the members of each IN list / ARRAY to their common type, as the parser does.
void coerce_lists(const std::vector<KeyValue>& values, std::vector<KeyDatum>& datums, std::optional<KeyType> key) {
  std::map<int, std::vector<std::size_t>> lists;
  for (std::size_t i = 0; i < values.size(); ++i)
    if (values[i].list != 0) lists[values[i].list].push_back(i);
  for (const auto& [id, members] : lists) {
    const bool array = values[members.front()].array_list;
    if (!array && !key) continue;  // an IN list's type includes the key's
    std::vector<SqlType> types;
    if (!array) types.push_back(sql_type_of(*key));
    for (std::size_t i : members)
      if (!datums[i].failed() && !datums[i].is_null()) types.push_back(datums[i].type());
    auto common = common_type(types);
    if (!common) {
      if (!array) continue;  // IN falls back to one comparison per item
      for (std::size_t i : members) datums[i].reject("42804", "ARRAY types cannot be matched");
      continue;
    }
    // ARRAY of only unknown literals is text[].
    const SqlType target = *common == SqlType::Unknown ? (array ? SqlType::Text : SqlType::Unknown) : *common;
    for (std::size_t i : members)
      if (datums[i].type() != target) datums[i].cast(target);
  }
}

/// The datum of `v` after its operators; `quoted`: a string literal without operators.
std::optional<KeyDatum> evaluate(const KeyValue& v, const BindValues* bind, bool& quoted, std::string* error) {
  std::size_t first_op = 0;
  auto d = base_datum(v, bind, first_op, error);
  if (!d) return std::nullopt;
  for (std::size_t i = first_op; i < v.ops.size(); ++i) {
    const KeyOp& op = v.ops[i];
    switch (op.kind) {
      case KeyOp::Kind::Negate: d->negate(); break;
      case KeyOp::Kind::Plus: d->unary_plus(); break;
      case KeyOp::Kind::Cast: d->cast(op.type, op.typmod); break;
    }
  }
  const bool literal = v.kind == KeyValue::Kind::Literal ? v.string_literal
                       : v.kind == KeyValue::Kind::Param && bind && std::size_t(v.param) <= bind->origins.size()
                           ? bind->origins[std::size_t(v.param - 1)] == BindOrigin::StringLiteral
                           : false;
  quoted = literal && v.ops.empty();
  return d;
}

/// Key type not known yet: a quoted literal hashes as text, anything else as its own type.
KeyType key_or_guess(std::optional<KeyType> key, const KeyDatum& d, bool quoted) {
  return key ? *key : quoted ? KeyType::Text : d.guess_key_type();
}

}  // namespace

void place_tenant(KeyOutcome& o, const DirectorySnapshot& dir) {
  if (o.kind != KeyOutcome::Kind::Logical || !o.key) return;
  if (auto id = dir.tenant_id(*o.key)) o.logical = *id;
}

namespace {
KeyOutcome placed(const KeyDatum& d, KeyType key, KeyUse use, const DirectorySnapshot& dir) {
  KeyOutcome o = d.outcome(key, use, dir.logical_shards(), dir.has_tenants());
  place_tenant(o, dir);
  return o;
}
}  // namespace

std::optional<KeyOutcome> resolve_key(const KeyValue& value, std::optional<KeyType> key, KeyUse use,
                                      const BindValues* bind, const DirectorySnapshot& dir, std::string* error) {
  bool quoted = false;
  auto d = evaluate(value, bind, quoted, error);
  if (!d) return std::nullopt;
  return placed(*d, key_or_guess(key, *d, quoted), use, dir);
}

std::optional<std::vector<KeyOutcome>> resolve_keys(const std::vector<KeyValue>& values, std::optional<KeyType> key,
                                                    KeyUse use, const BindValues* bind,
                                                    const DirectorySnapshot& dir, std::string* error) {
  std::vector<KeyOutcome> out;
  out.reserve(values.size());
  if (std::all_of(values.begin(), values.end(), [](const KeyValue& v) { return v.list == 0; })) {
    for (const auto& v : values) {  // no common types to find: one value at a time
      auto o = resolve_key(v, key, use, bind, dir, error);
      if (!o) return std::nullopt;
      out.push_back(std::move(*o));
    }
    return out;
  }
  std::vector<KeyDatum> datums;
  std::vector<bool> string_literal;
  datums.reserve(values.size());
  for (const auto& v : values) {
    bool quoted = false;
    auto d = evaluate(v, bind, quoted, error);
    if (!d) return std::nullopt;
    string_literal.push_back(quoted);
    datums.push_back(std::move(*d));
  }
  coerce_lists(values, datums, key);
  for (std::size_t i = 0; i < datums.size(); ++i)
    out.push_back(placed(datums[i], key_or_guess(key, datums[i], string_literal[i]), use, dir));
  return out;
}

KeyOutcome resolve_hint(std::string_view hint, std::optional<KeyType> key, const DirectorySnapshot& dir) {
  KeyDatum d = KeyDatum::unknown_text(hint);
  return placed(d, key ? *key : d.guess_key_type(), KeyUse::Assign, dir);
}

KeyOutcome resolve_text(std::string_view text, KeyType key, KeyUse use, const DirectorySnapshot& dir) {
  return placed(KeyDatum::unknown_text(text), key, use, dir);
}

}  // namespace shardline::router
