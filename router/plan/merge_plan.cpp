#include "router/plan/merge_plan.hpp"

namespace shardline::router {

namespace {

std::string column(int c) { return "#" + std::to_string(c); }

std::string value(const PlanValue& v) {
  switch (v.kind) {
    case PlanValue::Kind::None: return "ALL";
    case PlanValue::Kind::Constant: return std::to_string(v.constant);
    case PlanValue::Kind::Param: return "$" + std::to_string(v.param);
  }
  return "?";
}

/// `#2 DESC NULLS LAST`: the NULLS part only when it is not PostgreSQL's default for the
/// direction (LAST for ASC, FIRST for DESC).
std::string sort_keys(const std::vector<SortKey>& ks, bool directions) {
  std::string out;
  for (const auto& k : ks) {
    out += (out.empty() ? "" : ", ") + column(k.column);
    if (!directions) continue;
    if (k.descending) out += " DESC";
    if (k.nulls_first != k.descending) out += k.nulls_first ? " NULLS FIRST" : " NULLS LAST";
  }
  return out;
}

const char* fn_name(AggregateFn f) {
  switch (f) {
    case AggregateFn::Count: return "count";
    case AggregateFn::Sum: return "sum";
    case AggregateFn::Min: return "min";
    case AggregateFn::Max: return "max";
    case AggregateFn::Avg: return "avg";
    case AggregateFn::BoolAnd: return "bool_and";
    case AggregateFn::BoolOr: return "bool_or";
  }
  return "?";
}

std::string render(const Predicate& p, bool nested) {
  switch (p.kind) {
    case Predicate::Kind::And:
    case Predicate::Kind::Or: {
      std::string out;
      for (const auto& a : p.args)
        out += (out.empty() ? "" : p.kind == Predicate::Kind::And ? " AND " : " OR ") + render(a, true);
      return nested ? "(" + out + ")" : out;
    }
    case Predicate::Kind::Not: return "NOT " + (p.args.empty() ? std::string("?") : render(p.args.front(), true));
    case Predicate::Kind::IsNull: return column(p.column) + " IS NULL";
    case Predicate::Kind::IsNotNull: return column(p.column) + " IS NOT NULL";
    case Predicate::Kind::Compare: {
      static const char* const kOps[] = {"=", "<>", "<", "<=", ">", ">="};
      std::string rhs = "$" + std::to_string(p.param);
      if (!p.param) {
        rhs = "'";
        for (char c : p.constant) rhs += c == '\'' ? std::string("''") : std::string(1, c);
        rhs += "'";
      }
      return column(p.column) + " " + kOps[int(p.op)] + " " + rhs;
    }
  }
  return "?";
}

}  // namespace

std::string MergeOperator::explain() const {
  switch (kind) {
    case Kind::Concat: return "Concat";
    case Kind::MergeSort: return "MergeSort(" + sort_keys(keys, true) + ")";
    case Kind::FinalAggregate: {
      std::string out;
      for (const auto& a : aggregates) {
        out += out.empty() ? "" : ", ";
        if (a.group_key) out += "key " + column(a.input);
        else if (a.fn == AggregateFn::Avg) out += "avg(" + column(a.input) + "/" + column(a.count_input) + ")";
        else out += std::string(fn_name(a.fn)) + "(" + column(a.input) + ")";
      }
      return "FinalAggregate(" + out + ")";
    }
    case Kind::Having: return "Having(" + render(predicate, false) + ")";
    case Kind::Sort: return "Sort(" + sort_keys(keys, true) + ")";
    case Kind::Distinct: return "Distinct(" + sort_keys(keys, false) + ")";
    case Kind::Limit:
      return "Limit(" + value(count) +
             (offset.kind == PlanValue::Kind::None ? std::string() : " OFFSET " + value(offset)) + ")";
    case Kind::Project:
      return visible < 0 ? "Project(all but the last " + std::to_string(-visible) + ")" : "Project(" + std::to_string(visible) + ")";
  }
  return "?";
}

std::string MergePlan::explain() const {
  std::string out, indent;
  for (auto it = operators.rbegin(); it != operators.rend(); ++it) {
    out += indent + it->explain() + "\n";
    indent += "  ";
  }
  return out + indent + "shard: " + shard_sql;
}

}  // namespace shardline::router
