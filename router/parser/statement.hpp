#pragma once
// What the proxy and the router need to know about each statement of a query string, read from
// PostgreSQL's own grammar (libpg_query): its kind, the tables it touches, whether it writes or
// locks, and the details of transaction control, SET/SHOW/DISCARD/DEALLOCATE that a pooling
// proxy must track. The parse tree itself never leaves router/parser.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "router/parser/parse_tree.hpp"

namespace shardline::router {

enum class StatementKind {
  Select,       ///< SELECT, VALUES, TABLE (SELECT ... INTO also sets `writes`)
  Insert,
  Update,
  Delete,
  Copy,
  Ddl,          ///< CREATE/ALTER/DROP/COMMENT/GRANT/..., TRUNCATE, CREATE TABLE AS, REFRESH
  Transaction,  ///< BEGIN, COMMIT, SAVEPOINT, PREPARE TRANSACTION, ... (see TxCommand)
  Set,          ///< SET/RESET of a run-time parameter (see SetCommand)
  Show,
  Discard,
  Deallocate,
  Listen,       ///< LISTEN and UNLISTEN: both bind the session to one server connection
  Explain,
  Other,        ///< MERGE, CALL, DO, EXECUTE, PREPARE, VACUUM, LOCK, NOTIFY, cursors, ...
  Empty,        ///< nothing but whitespace, comments or ';' (PostgreSQL: EmptyQueryResponse)
};

/// What DISCARD drops.
enum class DiscardTarget { All, Plans, Sequences, Temp };

enum class TxCommand {
  None,
  Begin,             ///< BEGIN [WORK|TRANSACTION] [modes]
  Start,             ///< START TRANSACTION [modes]
  Commit,            ///< COMMIT and END
  Rollback,          ///< ROLLBACK and ABORT
  Savepoint,
  Release,
  RollbackTo,
  Prepare,           ///< PREPARE TRANSACTION 'gid'
  CommitPrepared,
  RollbackPrepared,
};

/// A relation named by the statement, with identifiers folded the way PostgreSQL folds them
/// (unquoted -> lower case, quoted -> exact). `schema` is empty when not written; a catalog
/// (database) qualifier is dropped.
struct TableRef {
  std::string schema;
  std::string name;
  friend bool operator==(const TableRef&, const TableRef&) = default;
};

/// SET / RESET in all their spellings, reduced to what a proxy must remember per session.
struct SetCommand {
  /// Local: SET LOCAL ... and SET TRANSACTION ..., which end with the transaction and so need
  /// not be replayed on another server connection.
  enum class Kind { Value, Default, Reset, ResetAll, Local };
  Kind kind = Kind::Value;
  /// Lower-case parameter name as PostgreSQL resolves the spelling: SET TIME ZONE -> "timezone",
  /// SET NAMES -> "client_encoding", SET SCHEMA -> "search_path", SET ROLE -> "role",
  /// SET SESSION AUTHORIZATION -> "session_authorization", SET XML OPTION -> "xmloption".
  /// SET TRANSACTION / SET SESSION CHARACTERISTICS AS TRANSACTION / SET TRANSACTION SNAPSHOT
  /// give "transaction" / "session characteristics" / "transaction snapshot". Empty for RESET ALL.
  std::string name;
  /// The argument as PostgreSQL flattens it before handing it to the parameter
  /// (flatten_set_variable_args): 'x' -> x, integers normalized (007 -> 7), list elements joined
  /// with ", ", and for list-quoting parameters (search_path, temp_tablespaces, *_preload_libraries,
  /// unix_socket_directories) each element passed through quote_identifier (a, "B").
  /// Not the parameter's own canonical form (SHOW DateStyle may say "ISO, MDY" for 'iso'), and
  /// SET TIME ZONE INTERVAL '...' keeps the literal rather than normalizing the interval.
  /// For the multi-option forms: "isolation level serializable, read only, not deferrable".
  /// Empty for Reset, ResetAll and Default (and for SET x FROM CURRENT).
  std::string value;
  /// The statement's own SQL text, to replay the setting on another server connection.
  std::string text;
  friend bool operator==(const SetCommand&, const SetCommand&) = default;
};

/// One statement of a query string.
struct Statement {
  StatementKind kind = StatementKind::Other;
  TxCommand tx = TxCommand::None;
  std::string savepoint;  ///< SAVEPOINT / RELEASE / ROLLBACK TO: the name, folded as PostgreSQL folds it
  /// BEGIN / START TRANSACTION with READ ONLY as its last access mode.
  bool read_only_tx = false;
  /// This statement's slice of the analyzed input, leading and trailing whitespace and the ';'
  /// removed (comments kept: they may carry a routing hint). Borrowed: valid while the input is.
  std::string_view text;
  /// Every relation named anywhere: FROM lists, joins, subqueries, CTE bodies, DML targets,
  /// DDL objects (including DROP TABLE/VIEW/INDEX/SEQUENCE names), without duplicates, in the
  /// order the parse tree holds them (a DML target first). A CTE's own name, where it is in scope, is not a relation and is left
  /// out, as are aliases in FOR UPDATE OF.
  std::vector<TableRef> tables;
  /// The statement changes data, schema or cluster state, or may do so invisibly (CALL, DO,
  /// EXECUTE, VACUUM, NOTIFY, ...), so it must run on a primary: INSERT/UPDATE/DELETE/MERGE, DDL,
  /// COPY FROM, data-modifying CTEs, SELECT INTO, EXPLAIN ANALYZE of any of these. Function
  /// calls inside a SELECT (nextval(), a volatile function) are not visible to the parser.
  bool writes = false;
  /// Row locks: FOR UPDATE / NO KEY UPDATE / SHARE / KEY SHARE anywhere, and LOCK TABLE.
  bool locking = false;
  std::optional<SetCommand> set;              ///< for Set
  std::optional<std::string> show_name;       ///< for Show: lower case, "all" for SHOW ALL
  std::optional<std::string> deallocate_name; ///< for Deallocate: exact name, "" for ALL
  DiscardTarget discard = DiscardTarget::All; ///< for Discard
  bool unlisten = false;                      ///< for Listen: UNLISTEN rather than LISTEN
  std::string copy_direction;                 ///< for Copy: "from" or "to"
  /// DECLARE ... CURSOR FOR <query> (kind Other): its tables and flags are the query's, and it
  /// runs where the query would. FETCH, MOVE and CLOSE name no table: they follow the session.
  bool declare_cursor = false;
  /// DECLARE ... WITH HOLD: the cursor outlives its transaction on that server connection.
  bool cursor_hold = false;
  friend bool operator==(const Statement&, const Statement&) = default;
};

/// Result of analyzing one query string. On a syntax error PostgreSQL rejects the whole string,
/// so `statements` is then empty.
struct Analysis {
  std::vector<Statement> statements;
  std::optional<std::string> error;  ///< libpg_query's message, e.g. syntax error at or near "x"
  /// 1-based character position of the error, as in ErrorResponse's 'P' field; 0 when unknown.
  int error_pos = 0;
};

/// Parses `sql` with PostgreSQL's grammar and analyzes every statement. Statement::text views
/// point into `sql`. An empty or comment-only string gives one Statement of kind Empty. Parsing
/// assumes standard_conforming_strings = on, as PostgreSQL has defaulted to since 9.1.
[[nodiscard]] Analysis analyze(std::string_view sql);
/// The same from a tree already parsed from `sql` (the route template parses once).
[[nodiscard]] Analysis analyze(const ParseTree& tree, std::string_view sql);

[[nodiscard]] std::string_view to_string(StatementKind kind);
[[nodiscard]] std::string_view to_string(TxCommand tx);
[[nodiscard]] std::string_view to_string(SetCommand::Kind kind);

}  // namespace shardline::router
