#pragma once
// One client connection: startup and authentication, then a loop that reads the client's
// messages and forwards them to a server taken from a pool, while a second coroutine (the pump)
// relays the server's replies back. In transaction pooling the server goes back to its pool at
// every ReadyForQuery 'I'; in session pooling it stays until the client leaves.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <span>
#include <string>
#include <unordered_map>

#include "proxy/admin/query_meter.hpp"
#include "proxy/backend/async_event.hpp"
#include "proxy/backend/pool.hpp"
#include "proxy/backend/session_vars.hpp"
#include "proxy/exec/scatter_executor.hpp"
#include "proxy/protocol/byte_buffer.hpp"
#include "proxy/protocol/frame_reader.hpp"
#include "proxy/protocol/sql_error.hpp"
#include "proxy/protocol/stream.hpp"
#include "proxy/session/commit_positions.hpp"
#include "proxy/session/lsn_token.hpp"
#include "proxy/session/out_batch.hpp"
#include "proxy/session/prepared_statements.hpp"
#include "proxy/session/reported_parameters.hpp"
#include "proxy/session/response_tracker.hpp"
#include "proxy/session/services.hpp"
#include "proxy/session/session_timeouts.hpp"
#include "proxy/session/transaction.hpp"
#include "router/parser/literal_normalizer.hpp"
#include "router/planner/router.hpp"

namespace shardline::proxy::admin {
class AdminConsole;
}

namespace shardline::proxy::session {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

/// Runs a client connection to the end. A free function so the session's lifetime is the
/// coroutine frame's (DESIGN.md: never co_spawn a member coroutine of a temporary).
asio::awaitable<void> run_session(tcp::socket socket, Services& services);

struct MultiParts;

class ClientSession final : private TrackerHooks {
 public:
  ClientSession(tcp::socket socket, Services& services);
  ~ClientSession() override;

  asio::awaitable<void> run();

  // ---- what the admin console and cancel requests read -------------------------------------
  std::int32_t pid() const { return pid_; }
  std::int32_t secret() const { return secret_; }
  const std::string& user() const { return user_; }
  const std::string& database() const { return database_; }
  const std::string& application_name() const { return application_name_; }
  std::string peer() const { return peer_; }
  bool tls() const { return stream_.is_tls(); }
  std::chrono::system_clock::time_point connected_at() const { return connected_at_; }
  const char* state() const;
  const backend::ServerConnection* server() const { return server_.get(); }
  /// Forwards a CancelRequest to the server(s) running this client's query, if any (a client
  /// that waits for a server, or has no request in flight, has nothing to cancel); completes
  /// when the server has taken it. Until then that server goes to no other client.
  asio::awaitable<void> cancel_running_query();
  /// SIGTERM: close now if idle, else after the running transaction.
  void shutdown_when_idle();
  /// The timeout janitor's look at this session: acts on a query, idle-in-transaction or idle
  /// timeout that passed (session_timeouts.cpp).
  void check_timeouts(std::chrono::steady_clock::time_point now, const config::Pool& pool);

 private:
  /// startup() within pool.client_login_timeout_ms, and at most pool.max_login_clients at once.
  asio::awaitable<bool> login();
  std::optional<protocol::SqlError> login_refusal_;  ///< set by login(): startup() answers with it
  // startup.cpp
  asio::awaitable<bool> startup();
  /// SSLRequest / GSSENCRequest / CancelRequest until the StartupMessage, whose parameters
  /// land in `params`; false when the connection ends here.
  asio::awaitable<bool> read_startup_packet(std::unordered_map<std::string, std::string>& params);
  /// Answers SSLRequest ('S' and the TLS handshake when configured) or GSSENCRequest ('N').
  asio::awaitable<bool> answer_encryption_request(bool ssl);
  /// Who may connect to what: the user, the database, the password, the admin console.
  asio::awaitable<bool> admit(std::unordered_map<std::string, std::string>& params);
  /// The startup packet's settings (and -c options) as session settings; a bad shardline.* one
  /// is the FATAL error to end the connection with.
  std::optional<protocol::SqlError> apply_startup_settings(std::unordered_map<std::string, std::string>& params);
  asio::awaitable<bool> authenticate(const Credentials& cred);
  asio::awaitable<bool> read_startup_frame(protocol::Frame& f);
  asio::awaitable<bool> read_frame(protocol::Frame& f);
  /// `normalized`: lower-case name -> the value a server reports for a setting the client's
  /// startup packet made (PostgreSQL's spelling: 'utf-8' -> UTF8).
  void startup_parameters_for_client(std::string& out, const std::map<std::string, std::string>& normalized);
  /// Applies the startup packet's settings on a home-shard server and reads back the values of
  /// the reported ones; false (after a FATAL to the client) if the server refuses one.
  asio::awaitable<bool> normalize_startup_settings(std::map<std::string, std::string>& normalized);

  // client_session.cpp: the client's side
  asio::awaitable<void> client_loop();
  /// Reads more client input; false when the client is gone (or `closing_` ends an idle wait).
  asio::awaitable<bool> read_client(bool& retry);
  asio::awaitable<bool> handle(const protocol::Frame& f);
  /// Handles `resend_` as if the client had sent it again.
  asio::awaitable<bool> run_again();
  asio::awaitable<bool> write_client(std::string_view bytes);
  asio::awaitable<bool> write_client(OutBatch& batch);
  /// An error for a request the proxy does not send anywhere: ReadyForQuery follows (simple), or
  /// the unit's messages are discarded up to its Sync (extended), as PostgreSQL does.
  asio::awaitable<bool> fail_request(const protocol::SqlError& e, bool extended);
  /// A request the proxy refuses: inside a transaction open on a server, that transaction fails
  /// there too, as an error there would have made it; else a held transaction fails and the
  /// client gets the error (fail_request).
  asio::awaitable<bool> refuse(const protocol::SqlError& e, bool extended);
  void add_synthetic(std::string bytes);
  asio::awaitable<void> send_fatal(const protocol::SqlError& e);
  /// A reply made by the proxy, in its turn after the server replies still due.
  asio::awaitable<bool> reply_local(std::string bytes);
  /// A Parse the proxy answers without sending it on: the client's statement is recorded (named:
  /// for its later Binds; unnamed: re-parsed where its Bind goes).
  void note_unsent_parse(const protocol::Frame& f);
  /// A unit routed to several shards collects its messages and runs them at its Sync.
  asio::awaitable<bool> handle_multi_unit(const protocol::Frame& f);
  /// After a proxy-side failure in an extended unit: drops messages up to its Sync.
  asio::awaitable<bool> skip_to_sync(const protocol::Frame& f, std::string_view whole);
  /// Sends a message of the client to `server_`, queueing the reply it expects.
  asio::awaitable<bool> forward_message(const protocol::Frame& f, std::string_view whole, bool extended);

  // server_attach.cpp: taking, switching and releasing the server, and its reply pump
  asio::awaitable<bool> ensure_server(int shard, int replica);
  asio::awaitable<void> pump();
  /// The pump's server connection died (or spoke something that is not the protocol): a
  /// replica read nobody has seen a byte of runs again on the primary, else the client is told.
  asio::awaitable<void> on_server_lost(backend::ServerConnection& server, bool malformed);
  /// Relays the complete messages in the server's input; false on a malformed one.
  bool relay_server_input(backend::ServerConnection& server, std::size_t& used);
  asio::awaitable<bool> flush_to_server();
  void sync_server_state();
  /// Makes `server_` a server of `shard` (waiting for an idle server of another shard to be
  /// released first); false with last_error set if the open transaction is bound elsewhere.
  /// `binds`: the request routes by its own content (not a unit that only prepares or
  /// describes), so a server taken before without routing information may be left for it.
  asio::awaitable<bool> attach(int shard, bool binds = true, int replica = -1);
  /// Sends the held BEGIN (and savepoints) to `server_`: the transaction starts there now.
  void apply_held_begin();
  /// Leaves a server taken only to prepare or describe: ends its open unit and the transaction
  /// opened there for it (nothing ran), so the statement that routes can take another server;
  /// the transaction is held again and opens on that server.
  void leave_provisional_server();
  asio::awaitable<bool> switch_server(int shard, int replica);
  /// Hands an idle server back to its pool once its replies are done; false if a transaction
  /// (or session pooling) keeps it.
  asio::awaitable<bool> release_idle_server();
  void detach_server(bool broken);
  /// `server_` is where the next client could use it: no reply due, no transaction, no extended
  /// unit open (after an error the server ignores everything up to Sync; a unit that ran an
  /// Execute is an implicit transaction the next client's statement would commit). A server
  /// left otherwise by a vanished client is closed: PostgreSQL, too, aborts a dead client's work.
  bool server_idle() const { return tracker_.empty() && tx_.server_status() == 'I' && !unit_open_; }
  bool filter_parameter_status(std::string_view body);
  void wake_client_loop() { pump_state_.notify(); }

  // participants.cpp: a transaction on several shards (cross_shard_transactions: 2pc)
  /// Transactions may span shards: 2pc configured and transaction pooling.
  bool twopc() const;
  /// Inside the open transaction, makes `server_` its participant on `shard`: the current one
  /// is parked (kept, in its transaction) and `shard`'s is taken back, or joined (a new server,
  /// the transaction's BEGIN replayed there).
  asio::awaitable<bool> join_shard(int shard);
  /// Stops the pump of `server_` (idle, its replies relayed) and keeps it in `parked_`.
  asio::awaitable<void> park_server();
  void start_pump();
  /// The leases of the participants on `shards` (ascending) for a statement run on several of
  /// them by the proxy, joining shards the transaction has not touched; the error if one fails.
  asio::awaitable<std::optional<protocol::SqlError>> take_participants(const std::vector<int>& shards,
                                                                      std::vector<backend::ServerLease>& leases);
  /// Puts them back after the statement; `failed`: it failed on the shard at that index (-1:
  /// none), which becomes `server_` and makes the transaction failed (25P02 until its end).
  void return_participants(const std::vector<int>& shards, std::vector<backend::ServerLease>& leases, int failed);
  /// A Query with transaction control while the transaction spans shards: COMMIT (two-phase
  /// commit), ROLLBACK, or a refusal; nullopt if `t` has none.
  asio::awaitable<std::optional<bool>> distributed_control(const router::RouteTemplate& t);
  /// COMMIT or ROLLBACK on every participant, answered to the client (a Query's reply).
  asio::awaitable<bool> end_distributed(bool commit);
  /// The same work without the reply: the error, or the command tag in `tag`.
  asio::awaitable<std::optional<protocol::SqlError>> finish_distributed(bool commit, std::string& tag);
  struct UnitScan;
  /// An extended-protocol unit that is only a COMMIT or ROLLBACK (Parse? Bind Describe? Execute
  /// Sync) while the transaction spans shards: run and answered here, its messages consumed.
  /// False (nothing done) for any other unit.
  asio::awaitable<bool> distributed_control_unit(UnitScan& u);
  /// The client left: the parked participants' transactions are rolled back (connections closed).
  void drop_participants();

  // simple_query.cpp
  asio::awaitable<bool> handle_query(const protocol::Frame& f, std::string_view whole);
  /// The template of a simple query, by its shape (literals as $n, bound in `literal_bind`).
  std::shared_ptr<const router::RouteTemplate> query_template(std::string_view sql,
                                                              const router::BindValues*& literal_bind);
  /// The reply when the proxy answers the query itself (shardline.* settings, a held
  /// transaction's control, the client's statement namespace), else nullopt.
  std::optional<std::string> local_query_reply(const router::RouteTemplate& t);
  router::Plan plan_query(std::shared_ptr<const router::RouteTemplate>& tmpl, std::string_view sql,
                          const router::BindValues* literal_bind);
  /// Runs a query on several shards (or COPY into a sharded table); nullopt, with `plan` made a
  /// refusal, where that is not possible now.
  asio::awaitable<std::optional<bool>> run_query_on_shards(router::Plan& plan, const router::RouteTemplate& t,
                                                           std::string_view sql);
  asio::awaitable<bool> forward_query(const router::RouteTemplate& t, const router::BindValues* literal_bind,
                                      const router::Plan& plan, int target, std::string_view whole);
  router::Plan plan_for(const router::RouteTemplate& t, const router::BindValues* bind);
  /// reshard_hold.cpp: while a reshard cutover holds one of `logical` (directory snapshot), a
  /// request that is not part of a transaction already running on a server waits for the
  /// directory to release it (at most 10 s); true if it waited (the caller routes again).
  asio::awaitable<bool> wait_while_held(std::vector<int> logical);
  /// Why the proxy refuses a statement of `t` under this pooling mode (LISTEN in transaction
  /// pooling: its notifications would reach whichever client next has the server), or "".
  std::string pooling_refusal(const router::RouteTemplate& t) const;
  void track_simple_query(const router::RouteTemplate& t, const router::BindValues* bind, Pending& p);

  // extended_protocol.cpp: routing a unit (Parse ... Sync) and the units the proxy answers
  /// Decides where the extended-protocol unit starting at the head of the input goes, looking
  /// ahead to its first routable Bind; false when more input is needed first.
  asio::awaitable<std::optional<bool>> route_unit();
  /// Reads the buffered messages of the unit at the head of the input, without consuming them.
  void scan_unit(UnitScan& u);
  void scan_bind(UnitScan& u, protocol::BodyReader r);
  /// Makes the unit one the proxy answers itself (its only Bind is a shardline.* setting, a
  /// namespace command or transaction control of a held transaction); false if it is not.
  bool answer_unit_locally(UnitScan& u);
  /// A unit for several shards: prepared to run at its Sync (true), or why it cannot be.
  asio::awaitable<std::string> prepare_multi_unit(router::Plan& plan, UnitScan& u);
  asio::awaitable<bool> handle_local_unit(const protocol::Frame& f);
  /// The Execute of a unit the proxy answers; false after an error (the unit skips to Sync).
  bool execute_local_unit(protocol::MessageWriter& w);
  /// Builds the shard request of a multi-shard extended unit: statements made unnamed; for a
  /// scatter read (`scatter` set) also the shard SQL and how each reply step is merged. Nullopt
  /// with `why` set when the unit cannot run on several shards.
  std::optional<std::string> multi_shard_unit(std::span<const char> unit, std::vector<bool>& keep_parse,
                                              exec::ScatterRequest* scatter, std::string& why);
  /// A Bind's parameter values, one format per value.
  static void read_bind_values(protocol::BodyReader r, router::BindValues& bind, std::vector<std::int16_t>& fmts);

  // extended_messages.cpp: Parse, Bind, Describe and Close on the unit's server
  bool handle_parse(const protocol::Frame& f);
  bool handle_bind(const protocol::Frame& f);
  /// The session effects of the statement a Bind runs (SETs, namespace commands).
  void note_bind_effects(std::string_view query, std::string_view portal, protocol::BodyReader values);
  bool handle_describe_or_close(const protocol::Frame& f);
  void ensure_prepared(const PreparedStatement& st);
  /// The unnamed statement on `server_` before a Bind or Describe of it: re-parsed if the
  /// client prepared it on another server (or a proxy Query dropped it).
  void ensure_unnamed();
  void push_failing_parse(protocol::SqlError e);
  void remember_unnamed(std::string_view query, std::string_view types, std::uint64_t on_server);

  // multi_shard.cpp, copy_in.cpp
  /// `request`: the bytes each shard gets (a Query for `sql` when empty); `keep_parse` says which
  /// ParseCompletes of an extended request the client asked for (the others were added here).
  asio::awaitable<bool> run_multi(const router::Plan& plan, std::string_view sql, std::string_view request = {},
                                  const std::vector<bool>& keep_parse = {}, exec::ScatterRequest scatter = {});
  /// Phase 1 of a multi-shard write or broadcast: the statement (or its split parts) on
  /// every shard of `m`, replies read (multi_shard.cpp).
  asio::awaitable<void> send_parts(const router::Plan& plan, std::string_view sql, std::string_view request,
                                   bool writes, MultiParts& m);
  /// A scatter read streamed through exec::run_scatter (multi_shard.cpp). `request`: the
  /// extended unit every shard gets (`scatter` filled by multi_shard_unit); empty for a Query.
  asio::awaitable<bool> run_scatter_read(const router::Plan& plan, std::string_view sql, std::string_view request,
                                         exec::ScatterRequest scatter);
  /// Routes one Bind of a scatter read's unit: false unless it is a read on `shards` (the first
  /// Bind's, set when empty); its MergePlan (null: concatenated) in `merge`.
  bool scatter_bind(std::pair<std::string_view, std::string_view> query, router::BindValues& bind,
                    std::vector<int>& shards, std::shared_ptr<const router::MergePlan>& merge);
  /// The Query that brings `server` to the session's settings (empty if it has them), counted
  /// in `skip`; the server is recorded as having them.
  std::string state_prelude(backend::ServerConnection& server, int& skip);
  /// Leases a primary server of each shard (ascending order); the pool's error if one fails.
  /// A multi-shard statement runs on `leases` (cancel requests reach each) / is over (call
  /// before the leases go back: a cancelled statement's servers are closed, not reused).
  void parts_started(std::vector<backend::ServerLease>& leases);
  void parts_ended();
  asio::awaitable<std::optional<protocol::SqlError>> acquire_primaries(const std::vector<int>& shards,
                                                                      std::vector<backend::ServerLease>& leases);
  asio::awaitable<bool> run_copy_in(const router::TemplateStatement& st, std::string_view sql);
  struct CopyIn;
  /// The key column's position (and the columns COPY loads); the error if it is not loaded.
  asio::awaitable<std::optional<protocol::SqlError>> copy_key_column(CopyIn& c);
  /// BEGIN and the COPY on every shard; the first shard's CopyInResponse for the client.
  asio::awaitable<std::optional<protocol::SqlError>> start_copy(CopyIn& c, std::string_view sql,
                                                                std::string& copy_in_response);
  /// The key column's type, asked of a shard when the schema does not know it yet.
  asio::awaitable<std::optional<protocol::SqlError>> copy_key_type(CopyIn& c);
  /// The client's COPY data to the shards of its rows; nullopt once it ended (CopyDone or
  /// CopyFail), else what run_copy_in returns.
  asio::awaitable<std::optional<bool>> stream_copy_rows(CopyIn& c);
  /// Ends the COPY on every shard and answers the client.
  asio::awaitable<bool> finish_copy(CopyIn& c);
  /// COMMIT (or ROLLBACK) everywhere; the shards where it failed.
  asio::awaitable<std::vector<std::string>> end_copy_transactions(CopyIn& c, bool commit);
  bool in_transaction() const { return tx_.open(); }
  int default_shard() const { return server_ ? shard_ : services_.schema->home_shard(); }

  // proxy_settings.cpp
  static bool is_proxy_setting(const router::Statement& st);
  /// SET/RESET/SHOW shardline.*: an error, or the command tag (and for SHOW the name and value).
  std::optional<protocol::SqlError> proxy_setting(const router::Statement& st, std::string& tag,
                                                  std::optional<std::pair<std::string, std::string>>& shown);
  /// Sets (or with nullopt resets) one shardline.* parameter, from SET or the startup packet.
  std::optional<protocol::SqlError> set_proxy_setting(const std::string& name, const std::optional<std::string>& value);
  std::string lsn_token() const;

  // session_settings.cpp: the SET state and the client's statement namespace
  /// DEALLOCATE and DISCARD ALL act on the client's own statement namespace: statements on
  /// the servers are shared by every client under `_slN` names, so the proxy answers these
  /// itself and they never reach a server.
  struct NamespaceCommand {
    enum class Kind { Deallocate, DeallocateAll, DiscardAll } kind;
    std::string name;  ///< Deallocate: the client's statement name
    std::string tag;   ///< the CommandComplete tag PostgreSQL sends
  };
  /// What `st` does to the namespace if the proxy answers it, else nullopt (it goes to the server:
  /// a SQL-level statement, DISCARD ALL inside a transaction, which fails there, or a failed
  /// transaction, whose server answers 25P02).
  std::optional<NamespaceCommand> namespace_command(const router::Statement& st) const;
  void run_namespace_command(const NamespaceCommand& c);
  void apply_sets(const std::vector<SetChange>& sets);
  /// SET/RESET carried by a statement, to record when its Execute succeeds.
  static std::vector<SetChange> set_changes(const router::RouteTemplate& t);
  /// Session-level set_config(name, value, false) calls, as the settings they change (replayed
  /// as the same call). False if a call's arguments cannot be known (not constants or $n).
  static bool config_changes(const router::RouteTemplate& t, const router::BindValues* bind,
                             std::vector<SetChange>& out);

  // TrackerHooks (session_settings.cpp, commit_tracking.cpp)
  void parse_not_applied(const Pending& p) override;
  void simple_query_succeeded(const Pending& p, char tx_status) override;
  void state_sync_done(bool ok) override;
  void command_complete(std::string_view tag) override;
  void ready_for_query(char tx_status) override;
  void execute_succeeded(const Pending& p) override;
  void error_seen(std::string_view sqlstate) override {
    tx_.error_seen();
    meter_.error(sqlstate);
  }
  void stale_statement_seen() override { services_.statements.invalidate_all(); }
  const protocol::SqlError* replace_error(std::string_view sqlstate) override;

  // session_timeouts.cpp
  TimeoutWatch::Phase timeout_phase(std::uint32_t& mark) const;
  /// query_timeout: a CancelRequest to the server running the statement; its 57014 reaches the
  /// client as "canceling statement due to query_timeout".
  void cancel_for_timeout(int timeout_ms);
  /// Counts a server ReadyForQuery; one ending a statement the cancel did not reach in time
  /// condemns the server (the cancel may still arrive).
  void timeout_ready_for_query();
  /// Waits until the query_timeout cancel has reached the server (see CancelFlight).
  asio::awaitable<void> await_cancel_delivered();
  /// Ends the session with `e` (FATAL): its server is closed, not reused.
  void close_for_timeout(protocol::SqlError e);
  std::string lsn_learned(const Pending& p, std::string_view lsn_text) override;

  // replica_choice.cpp
  /// A replica of `shard` that may answer a read of `logical` (empty: anything on the shard)
  /// under the session's consistency, or -1. `behind` is set when a healthy replica was refused
  /// only for not having replayed a position the read needs (it may catch up within
  /// read_after_wait_ms).
  int pick_replica(int shard, const router::RouteTemplate& t, std::span<const int> logical, bool* behind = nullptr);
  /// pick_replica, waiting up to replicas.read_after_wait_ms for a replica to catch up.
  asio::awaitable<int> choose_replica(int shard, const router::RouteTemplate& t, std::vector<int> logical);

  // commit_tracking.cpp
  /// Queues SELECT pg_current_wal_insert_lsn() behind a commit on the current (primary) server;
  /// `logical`: what the write touched (empty: shard-wide).
  void push_lsn_probe(std::vector<int> logical);
  /// After forwarding statements to a primary: probe the commit position when they end a write.
  void note_writes(const StatementEffects& e, bool was_in_tx, std::span<const int> logical);
  /// A write on `shard` was acknowledged (its commit position `lsn`, raw insert LSN) or, with
  /// nullopt, acknowledged at an unknown position: recorded for this session and the proxy.
  void note_commit(int shard, std::span<const int> logical, std::optional<std::uint64_t> lsn);
  /// After committing on several primaries: learns each one's commit position.
  asio::awaitable<void> learn_commit_positions(std::vector<backend::ServerLease>& leases, const std::vector<int>& shards);

  Services& services_;
  protocol::Stream stream_;
  std::string peer_;
  protocol::ByteBuffer in_;
  OutBatch to_server_;
  OutBatch to_client_;

  std::int32_t pid_;
  std::int32_t secret_;
  std::string user_;
  std::string database_;
  std::string application_name_;
  std::chrono::system_clock::time_point connected_at_;
  bool admin_ = false;

  backend::ServerLease server_;
  /// The servers of the multi-shard statement running now (a cancel goes to each), or null.
  std::vector<backend::ServerLease>* running_parts_ = nullptr;
  /// A cancel was sent to running_parts_: they are not reused (a cancel that arrives late
  /// would hit the next client's query).
  bool parts_cancelled_ = false;
  backend::Pool* pool_ = nullptr;
  /// The open transaction's participants other than `server_` (2pc), idle in their transaction.
  /// Empty for a transaction on one shard: no allocation on the single-shard path.
  struct Parked {
    int shard = -1;
    backend::ServerLease lease;
  };
  std::vector<Parked> parked_;
  bool tx_ran_ddl_ = false;  ///< DDL on several shards inside it: key types are learned at its commit
  ResponseTracker tracker_;
  admin::QueryMeter meter_;             ///< this session's side of the metrics registry
  bool pump_running_ = false;
  backend::AsyncEvent pump_state_;     ///< pump ended / client write finished
  bool client_writing_ = false;
  bool closing_ = false;               ///< stop after the current transaction (SIGTERM)
  bool client_gone_ = false;
  bool skip_until_sync_ = false;       ///< an extended batch failed in the proxy: drop to Sync
  bool waiting_for_server_ = false;
  bool stop_pump_ = false;             ///< the client left: the pump ends without blaming the server
  bool reading_client_ = false;        ///< the client loop waits for client input (read_client)
  /// The Query sent to a replica, while none of its reply has reached the client.
  std::optional<std::string> replica_retry_;
  /// That Query, its replica lost: the client loop runs it again (the primary answers it).
  std::optional<std::string> resend_;
  /// Server errors given a SQLSTATE by relay_server_input, referenced by to_client_.
  std::deque<std::string> patched_errors_;
  // Timeouts (session_timeouts.cpp): counters and flags only, the janitor keeps the clock.
  TimeoutWatch watch_;
  std::uint32_t client_reads_ = 0;      ///< reads of client input (idle timeouts restart)
  std::uint32_t server_readies_ = 0;    ///< server ReadyForQuery messages (query_timeout restarts)
  bool in_client_loop_ = false;
  bool client_waiting_ = false;         ///< client_loop waits for client input
  bool timeout_cancel_pending_ = false; ///< query_timeout cancel sent, its 57014 not seen yet
  std::unique_ptr<protocol::SqlError> query_timeout_error_;  ///< what that 57014 becomes
  std::unique_ptr<protocol::SqlError> timeout_error_;        ///< a timeout ends the session with this
  std::shared_ptr<CancelFlight> cancel_flight_;              ///< query_timeout cancel not yet delivered

  backend::SessionVars vars_;                   ///< committed SET state
  backend::SessionVars startup_vars_;           ///< what RESET returns to (startup packet)
  backend::SessionVars sync_target_;            ///< state a StateSync in flight establishes
  /// Portal -> SETs its statement makes (extended protocol), until the portal is executed.
  std::unordered_map<std::string, std::vector<SetChange>> portal_sets_;
  ReportedParameters reported_;                 ///< ParameterStatus the client has seen
  ClientStatements statements_;

  // ---- routing ----
  std::optional<std::string> tenant_;   ///< SET shardline.tenant
  config::Consistency consistency_ = config::Consistency::Global;  ///< SET shardline.consistency
  std::vector<ShardLsn> read_after_;    ///< SET shardline.read_after, parsed
  std::string read_after_text_;
  /// What this session wrote per shard (session consistency, the version cookie). Empty until
  /// the first write (idle clients carry no allocation for it).
  std::vector<std::unique_ptr<WriteMarks>> writes_;
  WriteMarks& writes_on(int shard) {
    if (writes_.size() <= std::size_t(shard)) writes_.resize(std::size_t(shard) + 1);
    auto& m = writes_[std::size_t(shard)];
    if (!m) m = std::make_unique<WriteMarks>();
    return *m;
  }
  WriteMarks* written(int shard) const {
    return std::size_t(shard) < writes_.size() ? writes_[std::size_t(shard)].get() : nullptr;
  }
  /// Writes sent whose position no probe will tell (COPY, tracking off): recorded as acknowledged
  /// at an unknown position when the server's ReadyForQuery arrives.
  bool unknown_commit_pending_ = false;
  /// The client's transaction: held BEGIN, binding, failure, its SETs and its writes.
  Transaction tx_;
  WriteScope unit_scope_;  ///< what the current extended unit writes / reads
  int shard_ = -1;                      ///< physical shard of server_
  int replica_ = -1;                    ///< its replica index, -1 for the primary
  // What the current extended unit does, for the commit-LSN probe at its Sync.
  StatementEffects unit_effects_;
  bool unit_in_tx_ = false;             ///< a transaction was open when the unit began
  bool unit_routed_ = false;            ///< the current extended-protocol unit has a target
  bool unit_local_ = false;             ///< the unit only opens/ends a held transaction: answer it here
  /// State of an extended-protocol unit the proxy answers or fans out itself; allocated on first
  /// use, so idle clients do not carry it.
  struct UnitExtras {
    std::string local_tag;                                    ///< BEGIN, COMMIT, SET, SHOW ...
    std::optional<std::pair<std::string, std::string>> local_show;  ///< SHOW shardline.*
    std::optional<protocol::SqlError> local_error;            ///< e.g. an unknown shardline.* name
    std::optional<NamespaceCommand> local_command;            ///< DEALLOCATE / DISCARD ALL, run at Execute
    /// Transaction control the proxy answers for a held transaction, done at Execute.
    std::shared_ptr<const router::RouteTemplate> local_tx;
    std::optional<router::Plan> multi;                        ///< runs on several shards at its Sync
    std::string multi_request;
    std::vector<bool> multi_keep_parse;
    exec::ScatterRequest multi_scatter;                      ///< a scatter read: how to merge it
    protocol::SqlError last_error;  ///< why the last proxy-side step failed
  };
  std::unique_ptr<UnitExtras> unit_extras_;
  UnitExtras& unit_extras() {
    if (!unit_extras_) unit_extras_ = std::make_unique<UnitExtras>();
    return *unit_extras_;
  }
  bool unit_multi() const { return unit_extras_ && unit_extras_->multi.has_value(); }
  /// Buffers reused by every request (no allocation per statement once a client is active).
  struct Scratch {
    router::NormalizedQuery normalized;  ///< the shape of the last simple query
    router::BindValues literal_bind;     ///< its literals, as bound values (views into normalized)
    router::BindValues bind;             ///< a Bind's values, for routing
    std::vector<std::int16_t> formats;
  };
  std::unique_ptr<Scratch> scratch_;
  Scratch& scratch() {
    if (!scratch_) scratch_ = std::make_unique<Scratch>();
    return *scratch_;
  }
  bool unit_open_ = false;              ///< extended messages sent since the last Sync
  bool forward_sync_ = false;           ///< the unit failed in the proxy but the server must see Sync
  std::string unnamed_query_;           ///< query of the last unnamed Parse
  std::string unnamed_types_;           ///< its parameter-type part
  bool has_unnamed_ = false;            ///< the client has an unnamed statement (no Query since)
  std::uint64_t unnamed_server_ = 0;    ///< id of the server holding it as parsed, 0 if none
  /// `server_` was taken for a unit that only prepared or described (no routing information):
  /// the first request that routes may move to another server (transaction pooling only).
  bool server_provisional_ = false;
  bool unit_undecided_ = false;         ///< the routed unit had no routing decision

  friend asio::awaitable<void> run_session(tcp::socket, Services&);
  friend class admin::AdminConsole;
};

}  // namespace shardline::proxy::session
