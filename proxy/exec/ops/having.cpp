#include "proxy/exec/ops/having.hpp"

#include "proxy/exec/ops/row_order.hpp"

namespace shardline::proxy::exec::ops {

namespace {

using K = router::Predicate::Kind;
using Op = router::Predicate::Op;

const char* op_text(Op op) {
  switch (op) {
    case Op::Eq: return "=";
    case Op::Ne: return "<>";
    case Op::Lt: return "<";
    case Op::Le: return "<=";
    case Op::Gt: return ">";
    case Op::Ge: return ">=";
  }
  return "?";
}

bool holds(Op op, int c) {
  switch (op) {
    case Op::Eq: return c == 0;
    case Op::Ne: return c != 0;
    case Op::Lt: return c < 0;
    case Op::Le: return c <= 0;
    case Op::Gt: return c > 0;
    case Op::Ge: return c >= 0;
  }
  return false;
}

}  // namespace

Having::Having(router::Predicate predicate, const ParamValues& params, bool params_known, MergeContext ctx)
    : predicate_(std::move(predicate)),
      param_formats_(params.formats),
      param_types_(params.types),
      params_known_(params_known),
      ctx_(ctx) {
  for (const auto& v : params.values) param_values_.push_back(v ? std::optional<std::string>(std::string(*v)) : std::nullopt);
}

std::string Having::explain_predicate(const router::Predicate& p) {
  // As the plan's explain writes it: nested AND/OR in parentheses, constants as SQL strings.
  auto nested = [](const router::Predicate& a) {
    bool group = a.kind == K::And || a.kind == K::Or;
    return group ? "(" + explain_predicate(a) + ")" : explain_predicate(a);
  };
  auto join = [&](const char* sep) {
    std::string out;
    for (const auto& a : p.args) out += (out.empty() ? "" : sep) + nested(a);
    return out;
  };
  auto quoted = [](const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
    return out + "'";
  };
  switch (p.kind) {
    case K::And: return join(" AND ");
    case K::Or: return join(" OR ");
    case K::Not: return "NOT " + (p.args.empty() ? std::string("?") : nested(p.args[0]));
    case K::IsNull: return "#" + std::to_string(p.column) + " IS NULL";
    case K::IsNotNull: return "#" + std::to_string(p.column) + " IS NOT NULL";
    case K::Compare:
      return "#" + std::to_string(p.column) + " " + op_text(p.op) + " " +
             (p.param ? "$" + std::to_string(p.param) : quoted(p.constant));
  }
  return "?";
}

bool Having::prepare(router::Predicate& p, const std::vector<ColumnDesc>& cols, protocol::SqlError& e) {
  if (p.kind == K::And || p.kind == K::Or || p.kind == K::Not) {
    if (p.args.empty() || (p.kind == K::Not && p.args.size() != 1)) {
      e = protocol::SqlError::error(protocol::sqlstate::kInternalError, "invalid merge plan: malformed HAVING predicate");
      return false;
    }
    for (auto& a : p.args)
      if (!prepare(a, cols, e)) return false;
    return true;
  }
  if (!resolve_column(p.column, cols.size(), e)) return false;
  if (p.kind != K::Compare) return true;
  const ColumnDesc& c = cols[std::size_t(p.column)];
  Operand o;
  auto t = comparable_type(c.type_oid, ctx_, e, "HAVING");
  if (!t) return false;
  o.type = *t;
  o.format = c.format;
  std::optional<std::string_view> raw = std::string_view(p.constant);
  int raw_format = 0;
  if (p.param) {
    if (!params_known_) {
      operands_.push_back(std::move(o));
      return true;
    }
    if (std::size_t(p.param) > param_values_.size()) {
      e = protocol::SqlError::error(protocol::sqlstate::kInvalidParameterValue,
                                    "parameter $" + std::to_string(p.param) + " of HAVING is missing");
      return false;
    }
    const auto& v = param_values_[std::size_t(p.param - 1)];
    raw = v ? std::optional<std::string_view>(*v) : std::nullopt;
    raw_format = std::size_t(p.param - 1) < param_formats_.size() ? param_formats_[std::size_t(p.param - 1)] : 0;
  }
  const std::size_t pi = std::size_t(p.param - 1);
  const std::uint32_t declared = p.param && pi < param_types_.size() ? param_types_[pi] : 0;
  if (raw && declared && declared != c.type_oid) return prepare_typed_param(o, *raw, raw_format, declared, c, e);
  if (raw) {
    protocol::SqlError de;
    o.value = decode_value(o.type, *raw, raw_format, de);
    if (!o.value && o.type.cls == TypeClass::Integer && raw_format == 0) {
      // `count(*) > 2.5`: PostgreSQL compares bigint with numeric as numeric.
      ColumnType num{TypeClass::Numeric, 1700, false};
      o.value = decode_value(num, *raw, 0, de);
      o.as_numeric = o.value.has_value();
    }
    if (!o.value) {
      e = protocol::SqlError::error(
          "22P02", "invalid input syntax for type " + type_name(c.type_oid) + " in HAVING: \"" + std::string(*raw) + "\"");
      return false;
    }
  }
  operands_.push_back(std::move(o));
  return true;
}

bool Having::prepare_typed_param(Operand& o, std::string_view raw, int format, std::uint32_t declared,
                                 const ColumnDesc& column, protocol::SqlError& e) {
  // A parameter declared with another type than the column's: decode it as what it is, then
  // compare across types the way PostgreSQL does for integers and numeric (as numeric).
  auto refuse = [&] {
    e = protocol::SqlError::error(protocol::sqlstate::kFeatureNotSupported,
                                  "cross-shard HAVING comparing a " + type_name(column.type_oid) +
                                      " column with a parameter of type " + type_name(declared) + " is not supported");
    return false;
  };
  protocol::SqlError te;
  auto pt = comparable_type(declared, MergeContext{true}, te);
  if (!pt) return refuse();
  auto v = decode_value(*pt, raw, format, e);
  if (!v) return false;
  if (pt->cls != o.type.cls) {
    if (o.type.cls == TypeClass::Integer && pt->cls == TypeClass::Numeric) {
      o.as_numeric = true;
    } else if (o.type.cls == TypeClass::Numeric && pt->cls == TypeClass::Integer) {
      Value n;
      n.cls = TypeClass::Numeric;
      n.n = Numeric::from_int64(v->i);
      v = std::move(n);
    } else {
      return refuse();
    }
  }
  o.value = std::move(v);
  operands_.push_back(std::move(o));
  return true;
}

void Having::describe(std::string_view row_description) {
  if (error_) return;
  auto cols = parse_row_description(row_description, error_);
  if (!cols) return;
  protocol::SqlError e;
  operands_.clear();
  columns_ = cols->size();
  resolved_ = predicate_;
  if (!prepare(resolved_, *cols, e)) {
    error_ = std::move(e);
    return;
  }
  next_->describe(row_description);
}

Having::Truth Having::eval(const router::Predicate& p, std::size_t& index) const {
  switch (p.kind) {
    case K::And:
    case K::Or: {
      const bool is_and = p.kind == K::And;
      bool unknown = false, decided = false;
      for (const auto& a : p.args) {  // evaluate all: operand indices advance depth-first
        Truth t = eval(a, index);
        if (t == Truth::Unknown) unknown = true;
        else if ((t == Truth::False) == is_and) decided = true;
      }
      if (decided) return is_and ? Truth::False : Truth::True;
      if (unknown) return Truth::Unknown;
      return is_and ? Truth::True : Truth::False;
    }
    case K::Not: {
      Truth t = eval(p.args[0], index);
      return t == Truth::Unknown ? t : (t == Truth::True ? Truth::False : Truth::True);
    }
    case K::IsNull: return cells_[std::size_t(p.column)] ? Truth::False : Truth::True;
    case K::IsNotNull: return cells_[std::size_t(p.column)] ? Truth::True : Truth::False;
    case K::Compare: {
      const Operand& o = operands_[index++];
      const auto& cell = cells_[std::size_t(p.column)];
      if (!cell || !o.value) return Truth::Unknown;
      protocol::SqlError e;
      auto v = decode_value(o.type, *cell, o.format, e);
      if (!v) {
        if (!eval_error_) eval_error_ = e;
        return Truth::Unknown;
      }
      if (o.as_numeric) {
        Value n;
        n.cls = TypeClass::Numeric;
        n.n = Numeric::from_int64(v->i);
        return holds(p.op, compare_decoded(n, *o.value)) ? Truth::True : Truth::False;
      }
      return holds(p.op, compare_decoded(*v, *o.value)) ? Truth::True : Truth::False;
    }
  }
  return Truth::Unknown;
}

void Having::row(std::string_view data_row) {
  if (error_) return;
  if (!parse_data_row(data_row, cells_) || cells_.size() != columns_) {
    error_ = malformed_message('D');
    return;
  }
  std::size_t index = 0;
  Truth t = eval(resolved_, index);
  if (eval_error_) {
    error_ = std::move(eval_error_);
    return;
  }
  if (t == Truth::True) next_->row(data_row);
}

}  // namespace shardline::proxy::exec::ops
