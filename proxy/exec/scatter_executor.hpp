#pragma once
// Runs a scatter read on several servers at once and streams the merged answer to the client.
// One reader coroutine per shard reads that shard's reply into a bounded buffer; the merge
// takes whole messages from those buffers (only from the shard ShardMerge::waiting_for() names,
// when it names one) and pushes rows through the operator pipeline into an output batch that is
// written to the client every ~64 KB. While a client write is pending nothing is merged, so the
// readers stop once their buffers are full and TCP pushes back to the shards: memory stays
// within shards x (buffer + one read) plus one batch, whatever the result's size.
//
// Everything other than DataRow (ParseComplete, RowDescription, CommandComplete, ...) is a step
// every shard must reach before the merge passes one copy on: the shards answer the same
// request, so their replies agree step by step. The first ErrorResponse (or a pipeline error)
// fails the statement: the other shards get a CancelRequest and are drained to ReadyForQuery so
// their connections go back to the pool; a shard that does not get there in time is marked
// broken. The client gets the error naming the shard, then ReadyForQuery.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/backend/server_connection.hpp"
#include "proxy/exec/ops/operator.hpp"
#include "proxy/protocol/sql_error.hpp"
#include "router/plan/merge_plan.hpp"
#include "router/plan/plan.hpp"

namespace shardline::proxy::exec {

/// One shard of the scatter: its leased server and the bytes it gets.
struct ScatterTarget {
  backend::ServerConnection* server = nullptr;
  std::string name;     ///< shard name, for errors
  std::string request;  ///< everything sent: the proxy's own Queries first, then the statement
  int skip = 0;         ///< replies (each up to ReadyForQuery) of the proxy's own Queries to drop
};

/// How one result set (a simple Query's statement, an extended Execute) is merged.
struct ScatterResult {
  std::shared_ptr<const router::MergePlan> merge;  ///< null: the shards' rows concatenated
  /// The Bind's parameter values (LIMIT $n, HAVING ... $n), owned here.
  std::vector<std::optional<std::string>> param_values;
  std::vector<std::int16_t> param_formats;
  std::vector<std::uint32_t> param_types;
};

/// What a RowDescription / NoData of the reply answers, in the order the request asks for them
/// (extended protocol; a simple Query's RowDescriptions are all ResultHeader).
enum class DescribeRole : unsigned char {
  ResultHeader,    ///< starts the next result set's rows; the client gets the merged header
  ForExecute,      ///< added by the proxy before an Execute: starts its rows, not sent on
  ClientPortal,    ///< the client's Describe of a portal: answered with the merged header
  ClientStatement, ///< the client's Describe of a statement: `describe_merge` says how
  ClientPortalForExecute,  ///< the client's Describe of a portal right before its Execute: both
};

struct ScatterDescribe {
  DescribeRole role = DescribeRole::ResultHeader;
  /// ClientStatement / ClientPortal: the plan of the statement the shards described (its
  /// RowDescription has the hidden columns), or null when they described the client's own SQL.
  std::shared_ptr<const router::MergePlan> merge;
};

struct ScatterRequest {
  std::vector<ScatterTarget> targets;
  /// Result sets in order; a result set past the end is concatenated.
  std::vector<ScatterResult> results;
  /// Extended protocol: one per Describe sent (in order). Empty: every RowDescription is a
  /// ResultHeader.
  std::vector<ScatterDescribe> describes;
  /// Which ParseCompletes the client asked for (the others answer Parses the proxy added);
  /// empty: all of them.
  std::vector<bool> keep_parse;
  ops::MergeContext context;
  std::size_t batch_bytes = 64 * 1024;   ///< output written when this much is ready
  std::size_t shard_buffer = 64 * 1024;  ///< a reader stops reading past this many unmerged bytes
  char failed_status = 'I';  ///< the ReadyForQuery after an error ('E' inside a transaction)
};

struct ScatterOutcome {
  /// Per target: the connection cannot be reused (lost, or not drained to ReadyForQuery).
  std::vector<bool> broken;
  bool client_gone = false;  ///< a write to the client failed
  bool failed = false;       ///< the statement failed (the client got the error)
  std::uint64_t rows = 0;    ///< rows the client got
};

/// Writes bytes to the client; false when the client is gone.
using ClientWrite = std::function<boost::asio::awaitable<bool>(std::string_view)>;

/// Sends each target its request, streams the merged reply to the client (ending with
/// ReadyForQuery, or an ErrorResponse and ReadyForQuery) and leaves every connection that is
/// not marked broken idle after its ReadyForQuery.
boost::asio::awaitable<ScatterOutcome> run_scatter(boost::asio::any_io_executor ex, ScatterRequest& req,
                                                   ClientWrite write);

/// A plan run by run_scatter: a scatter read, merged by its MergePlan or concatenated (the
/// older aggregate-only plans without a MergePlan are merged from whole replies).
inline bool streams_as_scatter(const router::Plan& p) {
  return p.kind == router::RouteKind::Scatter && !p.writes && (p.merge || p.aggregates.empty());
}

/// The number of columns the shards return for `plan` (the client's plus the hidden ones):
/// every hidden column is one an operator reads. Not for MergePlan::star plans, whose width
/// only the shards know.
int shard_column_count(const router::MergePlan& plan);

}  // namespace shardline::proxy::exec
