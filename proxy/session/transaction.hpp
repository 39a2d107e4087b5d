#pragma once
// The client's transaction as the proxy sees it: pure state, no sockets, driven by the session
// (what the client sent) and by the ResponseTracker hooks (what the server answered), so every
// transition is unit-tested with fake statements and fake replies.
//
// In transaction pooling a transaction binds to a shard by its first routable statement, so
// BEGIN (and savepoints before that statement) are held here and answered by the proxy, then
// replayed on the server the transaction binds to. The SETs made inside a transaction take
// effect at COMMIT (or at the end of an extended unit's implicit transaction) and are dropped at
// ROLLBACK. What the transaction wrote, per logical shard, decides whose commit position to
// learn; the reshard cutover will wait on exactly those logical shards.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/protocol/sql_error.hpp"
#include "proxy/session/commit_positions.hpp"
#include "proxy/session/response_tracker.hpp"
#include "router/parser/statement.hpp"
#include "router/planner/route_template.hpp"

namespace shardline::proxy::session {

/// What the statements of one request (a Query, or the Binds of one extended unit) do, from
/// their route templates: which server may answer them and what the commit-LSN probe needs.
struct StatementEffects {
  int statements = 0;
  bool all_replica_safe = true;  ///< every statement may be answered by a replica
  bool writes = false;           ///< some statement writes (or reads in a way a replica must not)
  bool begins = false;           ///< BEGIN / START TRANSACTION
  bool commits = false;          ///< COMMIT
  bool copy_in = false;          ///< COPY ... FROM (its data follows the Query)

  void add(const router::RouteTemplate& t);
  /// A replica may answer: there are statements and all of them are replica-safe.
  bool replica_safe() const { return statements > 0 && all_replica_safe; }
};

/// One shard taking part in the transaction. The session owns the ServerLease; this says which
/// one it is (one today; several once two-phase commit lands).
struct Participant {
  int shard = -1;
  int replica = -1;  ///< -1: the primary
  friend bool operator==(const Participant&, const Participant&) = default;
};

class Transaction {
 public:
  /// How the proxy answers a transaction-control statement without a server.
  struct LocalAnswer {
    std::string_view tag;       ///< CommandComplete tag
    char status = 'I';          ///< the ReadyForQuery status after it
    bool already_open = false;  ///< BEGIN inside a transaction: PostgreSQL's WARNING 25001 first
  };

  /// `hold_begin`: transaction pooling, where BEGIN waits for the transaction's first routable
  /// statement. Otherwise every statement goes to the session's own server as it comes.
  explicit Transaction(bool hold_begin) : hold_begin_(hold_begin) {}

  // ---- state --------------------------------------------------------------------------------
  /// A transaction block is open: held here, or open on the server.
  bool open() const { return held_ || server_status_ != 'I'; }
  /// BEGIN was answered and no server has the transaction yet.
  bool held() const { return held_; }
  /// Failed: statements until its end get 25P02 (from the proxy while held, else the server).
  bool failed() const { return held_ ? held_failed_ : server_status_ == 'E'; }
  /// What the client's ReadyForQuery says.
  char status() const { return held_ ? (held_failed_ ? 'E' : 'T') : server_status_; }
  /// What the bound server last said (its ReadyForQuery, or what the proxy sent it since).
  char server_status() const { return server_status_; }
  /// BEGIN READ ONLY (known for a held BEGIN).
  bool read_only() const { return read_only_; }
  /// The directory epoch the transaction started on (held BEGIN, or first seen open).
  std::uint64_t epoch() const { return epoch_; }
  /// The shards the transaction runs on, in the order it bound them.
  const std::vector<Participant>& participants() const { return participants_; }

  // ---- transaction control answered by the proxy -------------------------------------------
  /// What the proxy answers for `st` itself, or nullopt if it goes to a server. Only while no
  /// server has the transaction (held, or none open) and only in transaction pooling: BEGIN is
  /// held; COMMIT / ROLLBACK of a held transaction end it; savepoints of a held transaction
  /// are kept for the replay; BEGIN inside a held transaction warns as PostgreSQL does.
  std::optional<LocalAnswer> local_answer(const router::Statement& st) const;
  /// Does what local_answer(st) says and returns it; nullopt (and nothing done) if it would not
  /// answer `st` (any more: a reply of an earlier pipelined request changed the state).
  std::optional<LocalAnswer> answer_locally(const router::Statement& st, std::uint64_t epoch);
  /// PostgreSQL's error for a statement in a failed transaction block.
  static protocol::SqlError aborted_error();
  /// A held transaction failed in the proxy (a refused statement): like an error on a server,
  /// everything until its end gets 25P02.
  bool aborted_while_held() const { return held_ && held_failed_; }
  /// The proxy refused a statement: a held transaction is failed now.
  void refused() {
    if (held_) held_failed_ = true;
  }

  // ---- binding ------------------------------------------------------------------------------
  /// BEGIN and savepoints to send first on the server the held transaction binds to.
  const std::string& held_sql() const { return held_sql_; }
  /// The held transaction starts on `p` (held_sql() has been sent there, its reply swallowed).
  /// `may_move`: the server was taken only to prepare or describe; the replay is kept so the
  /// transaction can be held again by unbind().
  void bind(Participant p, bool may_move);
  /// The transaction is rolled back on a provisional server and held again (with the replay
  /// kept by bind(..., true)), to start on the server its first routable statement needs.
  void unbind();

  // ---- what the server answered -------------------------------------------------------------
  /// An ErrorResponse reached the client.
  void error_seen() { error_since_ready_ = true; }
  /// An error since the last ReadyForQuery (the server skips to Sync in an extended unit).
  bool error_since_ready() const { return error_since_ready_; }
  /// SETs (and savepoint commands) that succeeded inside the transaction: the SETs are applied
  /// at its commit, less those a ROLLBACK TO undid.
  void add_sets(std::span<const SetChange> sets);
  const std::vector<SetChange>& pending_sets() const { return sets_; }
  /// CommandComplete: after COMMIT the transaction's SETs to apply now. After ROLLBACK (which is
  /// also ROLLBACK TO's tag) the ReadyForQuery tells: idle, they are dropped.
  std::vector<SetChange> command_complete(std::string_view tag);
  /// ReadyForQuery from `on`: at 'I' the SETs of an implicit transaction that committed (no
  /// error since the last ReadyForQuery) to apply now. The first open status records where the
  /// transaction runs and on which directory epoch it started.
  std::vector<SetChange> ready_for_query(char status, Participant on, std::uint64_t epoch);

  // ---- what it wrote -----------------------------------------------------------------------
  /// After statements with effects `e` confined to `logical` were sent to a primary (`was_open`:
  /// inside a transaction before them): the logical shards whose commit position to learn now
  /// (an autocommit write, or a COMMIT after writes; empty: shard-wide), else nullopt.
  std::optional<std::vector<int>> after_statements(const StatementEffects& e, bool was_open,
                                                   std::span<const int> logical);
  /// A write inside the transaction whose position only its COMMIT can tell (COPY).
  void wrote(std::span<const int> logical);
  /// The transaction wrote on its primary since the last commit probe.
  bool has_written() const { return wrote_; }
  /// The logical shards it wrote (empty with has_written(): shard-wide).
  std::vector<int> written() const { return scope_.logical(); }
  /// A statement of the open transaction reads or writes `logical` (empty: anything on its
  /// shard). What a reshard cutover of those logical shards waits for.
  void touch(std::span<const int> logical) {
    touched_any_ = true;
    touched_.add(logical);
  }
  /// Whether the transaction touched anything, and which logical shards (empty: shard-wide).
  bool has_touched() const { return touched_any_; }
  std::vector<int> touched() const { return touched_.logical(); }

 private:
  void start_held(const router::Statement& st, std::uint64_t epoch);
  /// SAVEPOINT / RELEASE / ROLLBACK TO `c.name`, as PostgreSQL applies them to the SETs made
  /// since (the most recent savepoint of that name; RELEASE keeps the SETs).
  void savepoint_command(const SetChange& c);
  void end_savepoints() {
    savepoints_.clear();
    rollback_seen_ = false;
  }

  bool hold_begin_;
  char server_status_ = 'I';
  bool held_ = false;
  bool held_failed_ = false;
  bool read_only_ = false;
  std::string held_sql_;  ///< BEGIN and savepoints, each with its ';'
  bool error_since_ready_ = false;
  std::vector<SetChange> sets_;
  /// Open savepoints, oldest first: name and how many of sets_ came before it.
  std::vector<std::pair<std::string, std::size_t>> savepoints_;
  bool rollback_seen_ = false;  ///< a CommandComplete "ROLLBACK" since the last ReadyForQuery
  // Kept until the next commit probe, not cleared at ReadyForQuery 'I': a pipelined next
  // transaction may already have written (after a ROLLBACK that costs one needless probe).
  bool wrote_ = false;
  WriteScope scope_;
  bool touched_any_ = false;
  WriteScope touched_;  ///< cleared when the transaction ends
  std::uint64_t epoch_ = 0;
  std::vector<Participant> participants_;
};

}  // namespace shardline::proxy::session
