#pragma once
// Combines the replies of several shards to one statement into the reply one database would
// have given: one RowDescription, every shard's rows, and one CommandComplete whose count is
// the sum (or, for reference tables that hold the same rows everywhere, one shard's count).
// Pure: messages in, messages out, so it is unit-tested without servers.

#include <string>
#include <vector>

namespace shardline::proxy::exec {

/// One shard's complete reply to one query: whole messages (tag + length + body), without
/// the final ReadyForQuery.
struct ShardReply {
  std::string shard;
  std::vector<std::string> messages;
  /// Index of the ErrorResponse in `messages`, or -1.
  int error_index() const;
};

enum class MergeMode {
  Concat,    ///< rows of every shard in shard order, counts summed
  SameRows,  ///< every shard did the same thing (reference tables): one shard's rows and count
  Reorder,   ///< a split INSERT ... RETURNING: rows put back in the VALUES order, counts summed
};

/// `row_origin[s][k]` is, for Reorder, the original VALUES row of shard s's k-th returned row.
std::vector<std::string> merge_replies(const std::vector<ShardReply>& replies, MergeMode mode,
                                       const std::vector<std::vector<int>>& row_origin = {});

/// How to combine one column of a scatter of `SELECT count(*), sum(x), min(y), max(z)`.
enum class AggregateKind { Count, Sum, Min, Max };

/// Combines the single rows of an aggregate scatter (text format). Fails (message in `error`)
/// for a type it cannot combine exactly, so the client gets an error, never a wrong answer.
std::vector<std::string> merge_aggregates(const std::vector<ShardReply>& replies,
                                          const std::vector<AggregateKind>& kinds, std::string* error);

/// "INSERT 0 3" + "INSERT 0 2" -> "INSERT 0 5"; tags without a count: the first one.
std::string sum_command_tags(const std::vector<std::string>& tags);

}  // namespace shardline::proxy::exec

namespace shardline::proxy::exec {

/// Adds two decimal numbers given as text ("-12.5" + "3" = "-9.5"), exactly, any length.
std::string decimal_add(const std::string& a, const std::string& b);
/// Compares two decimal numbers given as text: <0, 0, >0.
int decimal_compare(const std::string& a, const std::string& b);

}  // namespace shardline::proxy::exec
