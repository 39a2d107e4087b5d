#include "proxy/exec/ops/final_aggregate.hpp"

namespace shardline::proxy::exec::ops {

namespace {

using Fn = router::AggregateFn;
constexpr std::uint32_t kBoolOid = 16, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23, kNumericOid = 1700;

const char* fn_name(Fn f) {
  switch (f) {
    case Fn::Count: return "count";
    case Fn::Sum: return "sum";
    case Fn::Min: return "min";
    case Fn::Max: return "max";
    case Fn::Avg: return "avg";
    case Fn::BoolAnd: return "bool_and";
    case Fn::BoolOr: return "bool_or";
  }
  return "?";
}

bool is_int(std::uint32_t oid) { return oid == kInt8Oid || oid == kInt4Oid || oid == kInt2Oid; }

protocol::SqlError refuse_inexact(Fn f, std::uint32_t oid) {
  bool inexact = oid == 700 || oid == 701 || oid == 790 || oid == 1186;
  return protocol::SqlError::error(
      protocol::sqlstate::kFeatureNotSupported,
      std::string("cross-shard ") + fn_name(f) + "() over type " + type_name(oid) + " is not supported" +
          (inexact ? ": its addition is not associative, so combining the shards' partial sums could differ from "
                     "one database's result"
                   : ""));
}

protocol::SqlError partial_type(Fn f, int column, std::uint32_t oid, const char* want) {
  return protocol::SqlError::error(protocol::sqlstate::kInternalError,
                                   std::string("invalid merge plan: the shards' ") + fn_name(f) + "() partial #" +
                                       std::to_string(column) + " is " + type_name(oid) + ", not " + want);
}

std::string encode_int8(std::int64_t v, int format) {
  if (format == 0) return std::to_string(v);
  std::string out;
  for (int i = 7; i >= 0; --i) out.push_back(char((std::uint64_t(v) >> (8 * i)) & 0xff));
  return out;
}

std::string encode_numeric(const Numeric& n, int format) {
  return format == 0 ? numeric_to_text(n) : numeric_to_binary(n);
}

protocol::SqlError bigint_out_of_range() {
  return protocol::SqlError::error("22003", "bigint out of range");
}

}  // namespace

std::string explain_aggregates(const std::vector<router::AggregateColumn>& columns) {
  std::string out;
  for (const auto& a : columns) {
    if (!out.empty()) out += ", ";
    if (a.group_key) {
      out += "key #" + std::to_string(a.input);
      continue;
    }
    out += std::string(fn_name(a.fn)) + "(#" + std::to_string(a.input);
    if (a.fn == Fn::Avg) out += "/#" + std::to_string(a.count_input);
    out += ")";
  }
  return out;
}

FinalAggregate::FinalAggregate(std::vector<router::AggregateColumn> columns, MergeContext ctx)
    : specs_(std::move(columns)), ctx_(ctx) {
  for (const auto& s : specs_) has_group_keys_ = has_group_keys_ || s.group_key;
}

std::string FinalAggregate::explain() const { return "FinalAggregate(" + explain_aggregates(specs_) + ")"; }

bool FinalAggregate::plan_column(router::AggregateColumn a, const std::vector<ColumnDesc>& in, Column& c,
                                 ColumnDesc& out, protocol::SqlError& e) const {
  if (!resolve_column(a.input, in.size(), e)) return false;
  if (a.fn == Fn::Avg && !a.group_key && !resolve_column(a.count_input, in.size(), e)) return false;
  c.spec = a;
  const ColumnDesc& src = in[std::size_t(a.input)];
  out = src;
  c.format = src.format;
  const std::uint32_t oid = src.type_oid;
  if (a.group_key) {
    c.acc = Acc::GroupKey;
    // Equality only: rows of one group arrive together (sorted, or all rows when no GROUP BY).
    auto t = comparable_type(oid, MergeContext{true}, e);
    if (!t) return false;
    c.type = *t;
    return true;
  }
  switch (a.fn) {
    case Fn::Count:
      if (!is_int(oid)) return e = partial_type(a.fn, a.input, oid, "bigint"), false;
      c.acc = Acc::CountSum;
      break;
    case Fn::Sum:
      if (is_int(oid)) c.acc = Acc::IntSum;
      else if (oid == kNumericOid) c.acc = Acc::NumericSum;
      else return e = refuse_inexact(a.fn, oid), false;
      break;
    case Fn::Min:
    case Fn::Max: {
      auto t = comparable_type(oid, ctx_, e, "min()/max()");
      if (!t) return false;
      c.acc = Acc::MinMax;
      c.type = *t;
      break;
    }
    case Fn::BoolAnd:
    case Fn::BoolOr:
      if (oid != kBoolOid) return e = partial_type(a.fn, a.input, oid, "boolean"), false;
      c.acc = Acc::BoolAndOr;
      break;
    case Fn::Avg: {
      if (is_int(oid)) c.avg_from_int = true;
      else if (oid != kNumericOid) return e = refuse_inexact(a.fn, oid), false;
      const ColumnDesc& cnt = in[std::size_t(a.count_input)];
      if (!is_int(cnt.type_oid)) return e = partial_type(Fn::Count, a.count_input, cnt.type_oid, "bigint"), false;
      c.count_format = cnt.format;
      c.acc = Acc::Avg;
      out.table_oid = 0;
      out.attnum = 0;
      out.type_oid = kNumericOid;
      out.typlen = -1;
      out.typmod = -1;
      break;
    }
  }
  return true;
}

void FinalAggregate::describe(std::string_view row_description) {
  if (error_) return;
  protocol::SqlError e;
  auto in = parse_row_description(row_description, error_);
  if (!in) return;
  std::vector<ColumnDesc> out(specs_.size());
  std::vector<router::SortKey> group_keys;
  columns_.assign(specs_.size(), Column{});
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    if (!plan_column(specs_[i], *in, columns_[i], out[i], e)) {
      error_ = std::move(e);
      return;
    }
    if (specs_[i].group_key) group_keys.push_back(router::SortKey{columns_[i].spec.input, false, false});
  }
  group_order_ = RowOrder::make(group_keys, *in, ctx_, e, true);
  if (!group_order_) {
    error_ = std::move(e);
    return;
  }
  described_ = true;
  next_->describe(build_row_description(out));
}

void FinalAggregate::start_group() {
  state_.assign(columns_.size(), State{});
  for (std::size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i].acc != Acc::GroupKey) continue;
    const auto& cell = cells_[std::size_t(columns_[i].spec.input)];
    state_[i].is_null = !cell;
    if (cell) state_[i].bytes = std::string(*cell);
  }
  group_key_ = row_key_;
  in_group_ = true;
}

bool FinalAggregate::accumulate_column(const Column& c, State& s, const Cells& cells) {
  static const ColumnType kInt{TypeClass::Integer, kInt8Oid, false};
  static const ColumnType kNum{TypeClass::Numeric, kNumericOid, false};
  static const ColumnType kBool{TypeClass::Bool, kBoolOid, false};
  protocol::SqlError e;
  const auto& cell = cells[std::size_t(c.spec.input)];
  auto fail = [&](protocol::SqlError err) {
    error_ = std::move(err);
    return false;
  };
  switch (c.acc) {
    case Acc::GroupKey: return true;
    case Acc::CountSum:
    case Acc::IntSum: {
      if (!cell) return true;
      auto v = decode_value(kInt, *cell, c.format, e);
      if (!v) return fail(e);
      if (__builtin_add_overflow(s.i, v->i, &s.i)) return fail(bigint_out_of_range());
      s.any = true;
      return true;
    }
    case Acc::NumericSum: {
      if (!cell) return true;
      auto v = decode_value(kNum, *cell, c.format, e);
      if (!v) return fail(e);
      s.n = s.any ? numeric_add(s.n, v->n) : std::move(v->n);
      s.any = true;
      return true;
    }
    case Acc::MinMax: {
      if (!cell) return true;
      auto v = decode_value(c.type, *cell, c.format, e);
      if (!v) return fail(e);
      // Ties go to the later value, as numeric_smaller / float8larger ... return their second
      // argument when equal (1.0 vs 1.00, -0 vs 0 display differently).
      int cmp = s.best ? compare_decoded(*v, *s.best) : 0;
      if (!s.best || (c.spec.fn == Fn::Min ? cmp <= 0 : cmp >= 0)) {
        s.best = std::move(v);
        s.bytes = std::string(*cell);
      }
      return true;
    }
    case Acc::BoolAndOr: {
      if (!cell) return true;
      auto v = decode_value(kBool, *cell, c.format, e);
      if (!v) return fail(e);
      const bool b = v->i != 0;
      s.flag = !s.any ? b : (c.spec.fn == Fn::BoolAnd ? (s.flag && b) : (s.flag || b));
      s.any = true;
      return true;
    }
    case Acc::Avg: {
      if (cell) {
        auto v = decode_value(c.avg_from_int ? kInt : kNum, *cell, c.format, e);
        if (!v) return fail(e);
        Numeric part = c.avg_from_int ? Numeric::from_int64(v->i) : std::move(v->n);
        s.n = s.any ? numeric_add(s.n, part) : std::move(part);
        s.any = true;
      }
      const auto& cnt = cells[std::size_t(c.spec.count_input)];
      if (cnt) {
        auto v = decode_value(kInt, *cnt, c.count_format, e);
        if (!v) return fail(e);
        if (__builtin_add_overflow(s.i, v->i, &s.i)) return fail(bigint_out_of_range());
      }
      return true;
    }
  }
  return true;
}

bool FinalAggregate::accumulate(const Cells& cells) {
  for (std::size_t i = 0; i < columns_.size(); ++i)
    if (!accumulate_column(columns_[i], state_[i], cells)) return false;
  return true;
}

void FinalAggregate::row(std::string_view data_row) {
  if (error_) return;
  protocol::SqlError e;
  if (!described_) {
    error_ = protocol::SqlError::error(protocol::sqlstate::kProtocolViolation, "DataRow before RowDescription");
    return;
  }
  if (!parse_data_row(data_row, cells_)) {
    error_ = malformed_message('D');
    return;
  }
  if (!group_order_->decode(cells_, row_key_, e)) {
    error_ = std::move(e);
    return;
  }
  for (const auto& c : columns_) {
    int hi = std::max(c.spec.input, c.spec.count_input);
    if (std::size_t(hi) >= cells_.size()) {
      error_ = column_out_of_range(hi, cells_.size());
      return;
    }
  }
  if (in_group_ && group_order_->compare(group_key_, row_key_) != 0) {
    emit();
    in_group_ = false;
    if (error_) return;
  }
  if (!in_group_) start_group();
  accumulate(cells_);
}

void FinalAggregate::emit() {
  std::vector<std::optional<std::string>> vals(columns_.size());
  for (std::size_t i = 0; i < columns_.size(); ++i) {
    const Column& c = columns_[i];
    State& s = state_[i];
    switch (c.acc) {
      case Acc::GroupKey:
        if (!s.is_null) vals[i] = s.bytes;
        break;
      case Acc::CountSum: vals[i] = encode_int8(s.i, c.format); break;
      case Acc::IntSum:
        if (s.any) vals[i] = encode_int8(s.i, c.format);
        break;
      case Acc::NumericSum:
        if (s.any) vals[i] = encode_numeric(s.n, c.format);
        break;
      case Acc::MinMax:
        if (s.best) vals[i] = s.bytes;
        break;
      case Acc::BoolAndOr:
        if (s.any) vals[i] = c.format == 0 ? std::string(s.flag ? "t" : "f") : std::string(1, char(s.flag));
        break;
      case Acc::Avg:
        if (s.any && s.i > 0) vals[i] = encode_numeric(numeric_div_count(s.n, s.i), c.format);
        break;
    }
  }
  Cells out;
  for (const auto& v : vals) out.push_back(v ? std::optional<std::string_view>(*v) : std::nullopt);
  out_.clear();
  append_data_row(out_, out);
  next_->row(out_);
}

void FinalAggregate::finish() {
  if (error_ || !described_) return;
  if (!in_group_ && has_group_keys_) return;  // GROUP BY over no rows: no groups
  if (!in_group_) state_.assign(columns_.size(), State{});  // no GROUP BY: one row even of nothing
  emit();
  in_group_ = false;
}

}  // namespace shardline::proxy::exec::ops
