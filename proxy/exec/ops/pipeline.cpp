#include <string>

#include "proxy/exec/ops/concat.hpp"
#include "proxy/exec/ops/distinct.hpp"
#include "proxy/exec/ops/final_aggregate.hpp"
#include "proxy/exec/ops/having.hpp"
#include "proxy/exec/ops/limit.hpp"
#include "proxy/exec/ops/merge_sort.hpp"
#include "proxy/exec/ops/operator.hpp"
#include "proxy/exec/ops/project.hpp"
#include "proxy/exec/ops/sort.hpp"

namespace shardline::proxy::exec::ops {

namespace {

using Kind = router::MergeOperator::Kind;

protocol::SqlError plan_error(const std::string& why) {
  return protocol::SqlError::error(protocol::sqlstate::kInternalError, "invalid merge plan: " + why);
}

/// `for_describe`: parameters are not known yet (Describe before Bind); Limit passes all rows.
std::unique_ptr<Operator> make_operator(const router::MergeOperator& op, const ParamValues& params,
                                        const MergeContext& ctx, bool for_describe, protocol::SqlError& error) {
  switch (op.kind) {
    case Kind::Limit: {
      std::optional<std::int64_t> count, offset;
      if (!for_describe && (!resolve_limit_value(op.count, false, params, count, error) ||
                            !resolve_limit_value(op.offset, true, params, offset, error)))
        return nullptr;
      return std::make_unique<Limit>(count, offset.value_or(0));
    }
    case Kind::Project: return std::make_unique<Project>(op.visible);
    case Kind::FinalAggregate: return std::make_unique<FinalAggregate>(op.aggregates, ctx);
    case Kind::Having: return std::make_unique<Having>(op.predicate, params, !for_describe, ctx);
    case Kind::Sort: return std::make_unique<Sort>(op.keys, ctx);
    case Kind::Distinct: return std::make_unique<Distinct>(op.keys, ctx);
    case Kind::Concat:
    case Kind::MergeSort: break;
  }
  error = plan_error("Concat/MergeSort only as the first operator");
  return nullptr;
}

std::optional<Pipeline> build(const router::MergePlan& plan, int shards, const ParamValues& params,
                              const MergeContext& ctx, bool for_describe, RowSink& out, protocol::SqlError& error) {
  if (plan.operators.empty()) {
    error = plan_error("no operators");
    return std::nullopt;
  }
  if (shards < 1) {
    error = plan_error("no shard streams");
    return std::nullopt;
  }
  Pipeline p;
  const auto& first = plan.operators.front();
  if (first.kind == Kind::Concat) p.leaf = std::make_unique<Concat>(shards);
  else if (first.kind == Kind::MergeSort) p.leaf = std::make_unique<MergeSort>(shards, first.keys, ctx);
  else {
    error = plan_error("the first operator must be Concat or MergeSort");
    return std::nullopt;
  }
  for (std::size_t i = 1; i < plan.operators.size(); ++i) {
    auto op = make_operator(plan.operators[i], params, ctx, for_describe, error);
    if (!op) return std::nullopt;
    p.operators.push_back(std::move(op));
  }
  for (std::size_t i = 0; i + 1 < p.operators.size(); ++i) p.operators[i]->set_next(p.operators[i + 1].get());
  if (p.operators.empty()) p.leaf->set_next(&out);
  else {
    p.leaf->set_next(p.operators.front().get());
    p.operators.back()->set_next(&out);
  }
  return p;
}

/// Keeps the RowDescription that comes out of the chain.
class DescriptionSink final : public RowSink {
 public:
  void describe(std::string_view rd) override { description = std::string(rd); }
  void row(std::string_view) override {}
  std::optional<std::string> description;
};

}  // namespace

const std::optional<protocol::SqlError>& Pipeline::error() const {
  if (leaf && leaf->error()) return leaf->error();
  for (const auto& op : operators)
    if (op->error()) return op->error();
  static const std::optional<protocol::SqlError> none;
  return none;
}

void Pipeline::finish() {
  for (auto& op : operators) {
    if (error()) return;
    op->finish();
  }
}

std::size_t Pipeline::held_rows() const {
  std::size_t n = leaf ? leaf->held_rows() : 0;
  for (const auto& op : operators) n += op->held_rows();
  return n;
}

std::string Pipeline::explain() const {
  // Outermost first, like the plan's explain: the last operator at the top.
  std::string out, indent;
  for (auto it = operators.rbegin(); it != operators.rend(); ++it) {
    out += indent + (*it)->explain() + "\n";
    indent += "  ";
  }
  if (leaf) out += indent + leaf->explain() + "\n";
  return out;
}

std::optional<Pipeline> build_pipeline(const router::MergePlan& plan, int shards, const ParamValues& params,
                                       const MergeContext& ctx, RowSink& out, protocol::SqlError& error) {
  return build(plan, shards, params, ctx, false, out, error);
}

std::optional<std::string> final_row_description(const router::MergePlan& plan, std::string_view shard_row_description,
                                                 const MergeContext& ctx, protocol::SqlError& error) {
  DescriptionSink sink;
  auto p = build(plan, 1, ParamValues{}, ctx, true, sink, error);
  if (!p) return std::nullopt;
  p->leaf->describe(0, shard_row_description);
  if (auto& e = p->error()) {
    error = *e;
    return std::nullopt;
  }
  if (!sink.description) {
    error = plan_error("the operator chain produced no RowDescription");
    return std::nullopt;
  }
  return sink.description;
}

}  // namespace shardline::proxy::exec::ops
