#pragma once
// A key value as PostgreSQL types and evaluates it, so the proxy answers exactly as one server
// would: `tenant_id = 2147483648` on an integer key compares int4 with int8 and finds no row,
// `= 1.0` compares as numeric and finds tenant 1, `= '2147483648'` coerces the string to int4
// and fails with 22003, and INSERT of 1.5 into an integer column rounds to 2. One function,
// KeyDatum::outcome, decides for a value and a key type: this logical shard / no row can match /
// the server raises its own error / the value matches several keys.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "router/sharding/key_type.hpp"
#include "router/sharding/pg_numeric.hpp"

namespace shardline::router {

/// The SQL types a key value can have on its way to the key. Unknown is PostgreSQL's type of a
/// quoted literal (and of a parameter whose type the client left open): it takes the type of
/// whatever it meets.
enum class SqlType { Unknown, Int2, Int4, Int8, Numeric, Float4, Float8, Text, Uuid };

/// The type with PostgreSQL OID `oid` (a Parse message's parameter type); Unknown for 0 and
/// unknown (705); nullopt for a type shardline does not model.
[[nodiscard]] std::optional<SqlType> sql_type_from_oid(std::uint32_t oid);
/// The SQL type of a key column of type `k`.
[[nodiscard]] SqlType sql_type_of(KeyType k);

/// How the value meets the key: `key = value` in a predicate (IN, ANY and OR are several of
/// these), or assigned to the key column (INSERT VALUES, COPY, a hint naming the tenant).
enum class KeyUse { Compare, Assign };

struct KeyOutcome {
  enum class Kind {
    Logical,        ///< exactly this logical shard
    NoMatch,        ///< equals no value of the key type: no row can match, any shard answers
    Unconstrained,  ///< may equal several keys (or shardline cannot tell which): no restriction
    ServerError,    ///< PostgreSQL rejects the statement for this value, on any shard
  };
  Kind kind = Kind::Logical;
  int logical = 0;
  std::string sqlstate;  ///< ServerError: the SQLSTATE PostgreSQL raises (22003, 22P02, 42883...)
  std::string message;   ///< ServerError: its message; Unconstrained: why
  /// Logical, when asked for (outcome's `want_key`) and the key is not NULL: the value's
  /// canonical text (tenant_key.hpp), what a tenant pin is looked up by.
  std::optional<std::string> key;
};

class KeyDatum {
 public:
  /// A quoted literal, a text-format parameter of unspecified type, a hint, a COPY field.
  static KeyDatum unknown_text(std::string_view text);
  /// A binary-format parameter of unspecified type: its type is the one the context gives it.
  static KeyDatum unknown_binary(std::span<const std::byte> bytes);
  /// An unquoted number as PostgreSQL's make_const types it: an integer that fits int4 is
  /// integer, one that fits int8 is bigint, anything else (1.5, 1e3, 2^63) numeric.
  static KeyDatum number_literal(std::string_view text);
  static KeyDatum null();
  /// A parameter the client declared as `type`, in text (format 0) or binary (format 1).
  static KeyDatum parameter(SqlType type, std::string_view value, bool binary);

  /// Marks the value's type as a guess (a parameter whose declared type is not known): an
  /// error it would raise may not be raised by the server, so a comparison drops the value
  /// instead of routing the statement for the error.
  void set_uncertain() { certain_ = false; }

  void negate();      ///< prefix `-` evaluated by the server (int4um, numeric_uminus ...)
  void unary_plus();  ///< prefix `+`
  /// An explicit cast `::type`; `typmod` is a varchar length (-1: none).
  void cast(SqlType to, int typmod = -1);

  /// Records an error PostgreSQL raises for the expression around the value (e.g. an ARRAY of
  /// elements with no common type).
  void reject(std::string sqlstate, std::string message) { fail(std::move(sqlstate), std::move(message)); }

  /// `want_key`: also give a Logical outcome its canonical text (only needed, and only paid
  /// for, while the directory pins tenants).
  [[nodiscard]] KeyOutcome outcome(KeyType key, KeyUse use, int modulus, bool want_key = false) const;
  /// The key type to assume when the column's type is not known yet.
  [[nodiscard]] KeyType guess_key_type() const;
  bool is_null() const { return null_; }
  /// An operation on the value raised an error (or cannot be evaluated by shardline).
  bool failed() const { return failed_ || unsupported_; }
  SqlType type() const { return type_; }

 private:
  void fail(std::string sqlstate, std::string message);
  void unsupported(std::string why);
  /// Applies the input (or binary receive) function of `to` to an Unknown value.
  void input(SqlType to);

  SqlType type_ = SqlType::Unknown;
  bool null_ = false;
  bool binary_ = false;          ///< Unknown: str_ holds binary bytes, not text
  bool certain_ = true;
  std::int64_t int_ = 0;         ///< Int2/Int4/Int8
  PgNumeric num_;                ///< Numeric
  double float_ = 0;             ///< Float4/Float8
  std::string str_;              ///< Unknown/Text: the bytes; Uuid: the 16 bytes
  bool failed_ = false;          ///< an operation raised an error (sqlstate_/message_)
  bool unsupported_ = false;     ///< shardline cannot evaluate it (message_ says why)
  std::string sqlstate_;
  std::string message_;
};

}  // namespace shardline::router
