#pragma once
// What routing needs to know about a query string, computed once per distinct text from
// PostgreSQL's own parse tree and cached: for each statement its tables by class (sharded,
// reference, unsharded), the tenant key values it pins (literals, or $n bound later), and the
// features that make a multi-shard answer differ from one database's (ORDER BY, LIMIT, ...).
// A cache hit then routes with a few comparisons and one hash, without parsing.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "router/parser/statement.hpp"
#include "router/plan/plan.hpp"
#include "router/sharding/key_datum.hpp"
#include "router/sharding/key_type.hpp"
#include "router/sharding/sharding_schema.hpp"

namespace shardline::router {

/// A prefix operator or cast PostgreSQL evaluates on a key value: `-5::bigint`, `+$1`,
/// `'42'::int8`. The server computes them, so the router must too (KeyDatum).
struct KeyOp {
  enum class Kind { Negate, Plus, Cast } kind = Kind::Cast;
  SqlType type = SqlType::Unknown;  ///< Cast: the target type
  int typmod = -1;                  ///< Cast: a varchar length, else -1
  bool operator==(const KeyOp&) const = default;
};

/// One value the key is compared with (or, for INSERT, assigned to the key column).
struct KeyValue {
  enum class Kind { Literal, Param, Null } kind = Kind::Literal;
  std::string text;             ///< Literal: the constant's text (a number, or the string's value)
  bool string_literal = false;  ///< Literal was a quoted string (type unknown) rather than a number
  int param = 0;                ///< Param: $n (1-based)
  std::vector<KeyOp> ops;       ///< applied to the constant, innermost first
  /// Values of one `IN (a, b, ...)` list (two or more items) or one ARRAY[...] share a list id
  /// (0: none): PostgreSQL coerces them to one common type before comparing, so `IN (1,
  /// 2147483648, '2147483648')` compares as bigint, and ARRAY['1'] is text[].
  int list = 0;
  bool array_list = false;      ///< the list is an ARRAY[...] (its type ignores the key's)
  bool operator==(const KeyValue&) const = default;
};

/// The key values a group of co-located sharded tables is restricted to.
struct KeySet {
  bool constrained = false;  ///< false: any tenant (no usable predicate)
  std::vector<KeyValue> values;
};

struct TemplateStatement {
  Statement info;  ///< kind, tx command, SET details... (text points into the template's sql)
  bool has_sharded = false;
  bool has_reference = false;
  bool has_unsharded = false;
  std::vector<std::string> sharded_names;    ///< for messages
  std::vector<std::string> unsharded_names;
  std::optional<KeyType> key_type;           ///< of the sharded tables (they must agree)
  /// One entry per group of sharded tables joined on their keys. One group: all co-located.
  std::vector<KeySet> groups;
  /// Reason a multi-shard read cannot be answered at all (UNION, SELECT INTO, a subquery that
  /// aggregates or limits).
  std::string needs_merge;
  /// A read whose rows on several shards must be merged (ORDER BY, LIMIT, aggregates, GROUP BY,
  /// DISTINCT...): how, shared by every Plan routed from this template; null when concatenating
  /// is the answer, or when it cannot be merged, then `merge_refusal` names the construct.
  std::shared_ptr<const MergePlan> merge;
  std::string merge_refusal;
  /// When the top SELECT is only count/sum/min/max (no GROUP BY...), one entry per column: the
  /// scatter path that predates `merge` combines the shards' single rows with it.
  std::vector<Aggregate> aggregates;
  bool updates_key = false;                  ///< UPDATE ... SET key = ...
  /// A read a replica may answer: SELECT/SHOW without locking or writes, and every function
  /// called is a built-in known to have no side effects (nextval, advisory locks, set_config
  /// or a user-defined function send it to the primary).
  bool replica_safe = false;
  /// Calls of set_config(name, value, is_local) anywhere in the statement: a session-level one
  /// (is_local false) changes a setting exactly as SET does. An argument is nullopt when it is
  /// neither a constant nor a parameter (the proxy cannot know what the call sets).
  struct ConfigCall {
    std::optional<KeyValue> name, value, is_local;
  };
  std::vector<ConfigCall> set_configs;
  /// INSERT ... VALUES into a sharded table: the key of each row (empty if not found).
  bool insert_values = false;
  std::vector<std::optional<KeyValue>> insert_keys;
  std::string insert_problem;                ///< why the rows' keys cannot be known
  bool copy_from_sharded = false;            ///< COPY sharded FROM STDIN
  int copy_key_column = -1;                  ///< position of the key among COPY's columns
  std::vector<std::string> copy_columns;
  std::string copy_table;                    ///< schema-qualified target of COPY FROM
  std::string copy_key;                      ///< its key column
  bool copy_csv = false;
  bool copy_binary = false;                  ///< FORMAT binary: tuples, not lines
  bool copy_header = false;
  char copy_delimiter = '\t';
  char copy_quote = '"';
  char copy_escape = '"';
  std::string copy_null;                     ///< NULL marker ("\\N" text, "" csv)
};

struct RouteTemplate {
  std::string sql;  ///< owned copy; Statement::text views point into it
  std::vector<TemplateStatement> statements;
  std::optional<std::string> parse_error;  ///< PostgreSQL will report its own syntax error
  std::optional<std::string> hint_tenant;  ///< /* shardline: tenant=42 */
  std::optional<std::string> hint_consistency;
  std::optional<std::string> hint_read_after;
};

/// Builds the template for `sql` (never throws for bad SQL).
std::shared_ptr<const RouteTemplate> build_route_template(std::string_view sql, const ShardingSchema& schema);

/// Reads `/* shardline: tenant=42, consistency=strong */` hints anywhere in the text.
void read_comment_hints(std::string_view sql, RouteTemplate& out);

/// The per-shard INSERT statements of a multi-row INSERT: row groups by shard, re-written from
/// the parse tree. Returns the SQL per group in `groups` order, or an error message.
std::optional<std::vector<std::string>> split_insert_sql(std::string_view sql,
                                                         const std::vector<std::vector<int>>& groups,
                                                         std::string* error);

}  // namespace shardline::router
