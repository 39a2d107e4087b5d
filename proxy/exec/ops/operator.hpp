#pragma once
// The run-time side of a router::MergePlan: small synchronous, push-based state machines over
// whole protocol messages. The scatter executor feeds each shard's RowDescription and DataRows
// into the leaf (ShardMerge), which pushes merged rows through the chain of Operators into a
// RowSink (the client's output batch). Nothing here does I/O, so every operator is unit-tested
// with hand-made and server-made messages.
//
// Messages are whole backend messages: tag byte, length word, body ('T' RowDescription,
// 'D' DataRow). A view passed to row() is valid only during the call: an operator that keeps a
// row copies it. Column formats (text / binary) and types come from the RowDescription.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/protocol/sql_error.hpp"
#include "router/plan/merge_plan.hpp"

namespace shardline::proxy::exec::ops {

/// Where merged output goes.
class RowSink {
 public:
  virtual ~RowSink() = default;
  /// The RowDescription of the rows that follow (once, before any row).
  virtual void describe(std::string_view row_description) = 0;
  virtual void row(std::string_view data_row) = 0;
};

/// One operator of the chain. Errors are sticky: after describe/row/finish the caller checks
/// error() and, if set, fails the statement with it (nothing more is pushed).
class Operator : public RowSink {
 public:
  void set_next(RowSink* next) { next_ = next; }
  /// End of input: emit what is held (a Sort's rows, the last group).
  virtual void finish() = 0;
  /// Rows the operator holds copies of (memory accounting, tests).
  virtual std::size_t held_rows() const { return 0; }
  virtual std::string explain() const = 0;
  const std::optional<protocol::SqlError>& error() const { return error_; }

 protected:
  RowSink* next_ = nullptr;
  std::optional<protocol::SqlError> error_;
};

/// The leaf: combines the streams of `shards` shards (indices 0..shards-1, in the executor's
/// order, not physical shard numbers). Every shard sends one RowDescription (they must agree on
/// column count and types, else the statement fails), then rows, then shard_done().
class ShardMerge {
 public:
  virtual ~ShardMerge() = default;
  void set_next(RowSink* next) { next_ = next; }
  virtual void describe(int shard, std::string_view row_description) = 0;
  virtual void row(int shard, std::string_view data_row) = 0;
  virtual void shard_done(int shard) = 0;
  /// A shard whose next row (or end) the merge needs before it can emit anything more, or -1
  /// when it needs none in particular. The executor stops reading the other shards while it
  /// waits, which bounds memory by shards x one row plus the socket buffers.
  virtual int waiting_for() const = 0;
  /// Rows held: at most one per shard for MergeSort.
  virtual std::size_t held_rows() const = 0;
  virtual std::string explain() const = 0;
  const std::optional<protocol::SqlError>& error() const { return error_; }

 protected:
  RowSink* next_ = nullptr;
  std::optional<protocol::SqlError> error_;
};

/// The values of the statement's Bind parameters, for PlanValue::Param and Predicate::param.
struct ParamValues {
  std::vector<std::optional<std::string_view>> values;  ///< nullopt = NULL
  std::vector<std::int16_t> formats;                    ///< one per value: 0 text, 1 binary
  std::vector<std::uint32_t> types;                     ///< declared OIDs (0 unknown); may be empty
};

/// Collation facts about the database the shards serve: text keys are compared byte-wise only
/// when the database's collation orders by bytes (C, POSIX, C.UTF-8); otherwise a merge on a
/// text key is refused (0A000) rather than answered in a different order.
struct MergeContext {
  bool bytewise_collation = false;
  /// float4/float8 text is PostgreSQL's shortest exact form (extra_float_digits >= 1, the
  /// default). Below that two different values can print alike, so a merge that orders or groups
  /// by float text is refused rather than ordered (or grouped) by the rounded text.
  bool exact_float_text = true;
};

/// An instantiated MergePlan: the leaf, the operators in plan order, and the sink at the end.
struct Pipeline {
  std::unique_ptr<ShardMerge> leaf;
  std::vector<std::unique_ptr<Operator>> operators;
  /// The first error of any stage (check after every push), else nullopt.
  const std::optional<protocol::SqlError>& error() const;
  /// finish() on every operator in order (after the last shard_done()).
  void finish();
  std::size_t held_rows() const;
  std::string explain() const;
};

/// Builds the pipeline for `plan` over `shards` streams, writing into `out` (which must outlive
/// it). Fails (0A000 / 22023, message naming the cause) when a parameter the plan needs is
/// missing or not a number.
std::optional<Pipeline> build_pipeline(const router::MergePlan& plan, int shards, const ParamValues& params,
                                       const MergeContext& ctx, RowSink& out, protocol::SqlError& error);

/// The RowDescription the client gets for a shard RowDescription (hidden columns removed, avg
/// typed numeric, ...): what Describe answers before any row exists. nullopt with `error` set
/// when the plan cannot combine these column types.
std::optional<std::string> final_row_description(const router::MergePlan& plan, std::string_view shard_row_description,
                                                 const MergeContext& ctx, protocol::SqlError& error);

}  // namespace shardline::proxy::exec::ops
