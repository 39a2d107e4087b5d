#pragma once
// Which server reply answers which client message. The proxy sometimes sends messages the
// client did not (re-preparing a statement on a newly assigned server, re-applying SET state)
// and sometimes answers without the server (a statement the server already has, Close of a
// shared statement). This queue, in protocol order, says for every reply whether to forward it,
// swallow it, or replace it, and where proxy-made replies go, so the client sees exactly the
// sequence PostgreSQL would have sent.
// https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/protocol/sql_error.hpp"
#include "proxy/session/out_batch.hpp"

namespace shardline::proxy::session {

enum class Expect : std::uint8_t {
  SimpleQuery,    ///< Query or FunctionCall: forward everything up to ReadyForQuery
  StateSync,      ///< proxy's own SET/RESET query: swallow everything up to ReadyForQuery
  Swallow,        ///< a query the client already got its reply for (a held BEGIN): swallow it
  FailingQuery,   ///< proxy's Query made to fail (aborting the server's transaction): replace its error
  Parse,          ///< client Parse: forward ParseComplete
  InjectedParse,  ///< proxy's Parse of a statement this server lacks: swallow ParseComplete
  FailingParse,   ///< proxy's Parse made to fail so the server skips to Sync: replace its error
  Bind,
  Describe,
  Execute,
  ClosePortal,
  Sync,
  Synthetic,      ///< a reply the proxy makes itself (bytes), emitted when its turn comes
  LsnProbe,       ///< proxy's SELECT pg_current_wal_insert_lsn() after a commit: swallowed, value reported
  CommitMark,     ///< no message: the write before it was acknowledged at a position no probe tells
};

/// A SET/RESET seen in a client's query, applied to the tracked state only if it succeeded.
/// Savepoint commands travel with them, in statement order, so that ROLLBACK TO drops exactly
/// the SETs made after its savepoint (`name` is the savepoint's).
struct SetChange {
  enum class Kind { Set, Reset, ResetAll, Savepoint, Release, RollbackTo } kind;
  std::string name;
  std::string sql;
  bool is_savepoint_command() const { return kind == Kind::Savepoint || kind == Kind::Release || kind == Kind::RollbackTo; }
};

struct Pending {
  Expect kind;
  std::uint64_t statement_id = 0;   ///< Parse / InjectedParse
  std::string client_name;          ///< Parse: the client's statement name
  std::string synthetic;            ///< Synthetic: the bytes to emit
  std::shared_ptr<const protocol::SqlError> replacement;  ///< FailingParse
  std::vector<SetChange> sets;      ///< SimpleQuery: SET/RESET to record on success
  std::string held_ready;           ///< LsnProbe: the write's ReadyForQuery, sent after the cookie
  std::vector<int> logical;         ///< LsnProbe, CommitMark: logical shards the write touched (empty: shard-wide)
  bool probe_parses = false;        ///< LsnProbe: it carries the Parse of the probe statement
  bool probe_parsed = false;        ///< LsnProbe: that Parse completed (the statement exists)
  bool discard_all = false;         ///< SimpleQuery: DISCARD ALL on success
  bool deallocate_all = false;      ///< SimpleQuery: DEALLOCATE ALL on success
  /// Sync: its ReadyForQuery is not the client's (the proxy ends the unit's transaction itself
  /// and answers the client then).
  bool proxy_ready = false;
};

/// What the session does when a tracked exchange ends.
class TrackerHooks {
 public:
  virtual ~TrackerHooks() = default;
  /// A Parse (client's or injected) was not applied: the server lacks the statement.
  virtual void parse_not_applied(const Pending& p) = 0;
  /// A simple query finished without error (its SETs took effect).
  virtual void simple_query_succeeded(const Pending& p, char tx_status) = 0;
  /// The proxy's SET/RESET query finished; `ok` false if the server refused part of it.
  virtual void state_sync_done(bool ok) = 0;
  virtual void command_complete(std::string_view tag) = 0;
  virtual void ready_for_query(char tx_status) = 0;
  /// An Execute finished without error (its SETs take effect when the transaction commits).
  virtual void execute_succeeded(const Pending& p) = 0;
  /// An ErrorResponse passed to the client, with its SQLSTATE (empty if it had none).
  virtual void error_seen(std::string_view sqlstate) = 0;
  /// The server refused a shared statement because the schema changed under its plan
  /// (0A000 "cached plan must not change result type").
  virtual void stale_statement_seen() = 0;
  /// The commit-LSN probe `p` answered (empty text: it failed, or `p` is a CommitMark whose turn
  /// came); returns a message for the client (ParameterStatus) or "".
  virtual std::string lsn_learned(const Pending& p, std::string_view lsn_text) = 0;
  /// An error the client gets instead of the server's ErrorResponse with this SQLSTATE (the
  /// 57014 of a query_timeout cancel), or null to forward it.
  virtual const protocol::SqlError* replace_error(std::string_view /*sqlstate*/) { return nullptr; }
};

/// FIFO of Pending over one vector: no allocation until first used (idle clients cost nothing)
/// and none in steady state (the storage is reused once the queue drains).
class PendingQueue {
 public:
  void push_back(Pending p) { items_.push_back(std::move(p)); }
  bool empty() const { return head_ == items_.size(); }
  std::size_t size() const { return items_.size() - head_; }
  Pending& front() { return items_[head_]; }
  void pop_front() {
    items_[head_] = Pending{};
    if (++head_ == items_.size()) clear();
  }
  void clear() {
    items_.clear();
    head_ = 0;
  }

 private:
  std::vector<Pending> items_;
  std::size_t head_ = 0;
};

class ResponseTracker {
 public:
  /// Where push() reports a Parse the server will never apply (see skipping_).
  void bind_hooks(TrackerHooks& hooks) { hooks_ = &hooks; }
  /// Queues the reply expected for a message just sent. While the server discards messages after
  /// an extended-protocol error whose Sync has not been sent yet, the extended messages sent
  /// meanwhile get no reply at all: they are not queued (a Parse among them is reported as not
  /// applied), and the next Sync ends that state.
  void push(Pending p);
  bool empty() const { return queue_.empty(); }
  std::size_t size() const { return queue_.size(); }
  void clear() {
    queue_.clear();
    skipping_ = false;
  }

  /// Emits every Synthetic reply at the front (their turn has come) into `out`, and reports every
  /// CommitMark whose turn came.
  void emit_ready_synthetic(OutBatch& out, TrackerHooks& hooks);

  /// Handles one server message. `whole` is the message with its header, `body` without.
  /// Appends to `out` what the client must see (by reference when forwarded untouched).
  void on_server_message(char tag, std::string_view whole, std::string_view body, OutBatch& out,
                         TrackerHooks& hooks);

 private:
  void skip_to_sync(TrackerHooks& hooks);
  /// One server message, as on_server_message got it.
  struct Reply {
    char tag;
    std::string_view whole, body;
  };
  void on_simple_query(const Reply& r, OutBatch& out, TrackerHooks& hooks);
  void on_lsn_probe(const Reply& r, OutBatch& out, TrackerHooks& hooks);
  void on_failing_query(const Reply& r, OutBatch& out, TrackerHooks& hooks);
  void on_extended_error(const Reply& r, OutBatch& out, TrackerHooks& hooks);
  void on_extended_reply(const Reply& r, OutBatch& out, TrackerHooks& hooks);
  /// Forwards a server ErrorResponse, or the replacement the hooks give for it.
  static void forward_error(const Reply& r, OutBatch& out, TrackerHooks& hooks);
  /// ErrorResponse body: 0A000 "cached plan must not change result type".
  static bool is_stale_plan_error(std::string_view body);
  /// A write's ReadyForQuery waits for the commit-LSN probe queued right behind it.
  void hold_or_forward_ready(std::string_view ready, OutBatch& out);
  PendingQueue queue_;
  bool query_failed_ = false;  ///< an ErrorResponse arrived during the current simple query
  /// An extended-protocol message failed before its unit's Sync was queued: the server discards
  /// everything up to that Sync (https://www.postgresql.org/docs/current/protocol-flow.html,
  /// "Extended Query": "reads and discards messages until a Sync is reached").
  bool skipping_ = false;
  TrackerHooks* hooks_ = nullptr;
};

}  // namespace shardline::proxy::session
