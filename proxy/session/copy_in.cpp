// COPY sharded_table FROM STDIN: every shard runs the same COPY inside a transaction, each data
// row goes to the shard that owns its key, and the COPY commits on every shard only if all
// of them accepted their rows (with cross_shard_transactions: 2pc, a two-phase commit). Inside
// the client's transaction (2pc) the COPY runs on the transaction's participants, joining every
// shard, and commits with the transaction; a COPY that fails fails the transaction, as on
// PostgreSQL. The client sees one CopyInResponse and one "COPY n". In binary format every shard
// gets the header, its own tuples and the trailer.

#include <fmt/format.h>

#include <map>
#include <span>

#include "proxy/exec/binary_copy_splitter.hpp"
#include "proxy/exec/copy_splitter.hpp"
#include "proxy/exec/server_io.hpp"
#include "proxy/protocol/message_writer.hpp"
#include "proxy/session/client_session.hpp"
#include "router/planner/key_resolver.hpp"
#include "router/sharding/key_datum.hpp"
#include "router/sharding/tenant_key.hpp"
#include "router/sharding/shard_key.hpp"

namespace shardline::proxy::session {

using protocol::SqlError;
namespace sqlstate = protocol::sqlstate;

namespace {

using exec::next_message;
using exec::query_message;
using exec::quote_literal;

/// Sends a shard its buffered rows as one CopyData once 64 KiB have gathered (or `force`).
asio::awaitable<bool> send_copy_data(backend::ServerConnection& server, std::string& rows, bool force) {
  if (rows.empty() || (!force && rows.size() < 64 * 1024)) co_return true;
  std::string msg;
  protocol::MessageWriter(msg).begin('d').raw(rows).end();
  rows.clear();
  boost::system::error_code ec;
  co_await server.stream().write_all(msg, ec);
  co_return !ec;
}

SqlError lost_shard(std::string_view during = {}) {
  return SqlError::error(sqlstate::kConnectionFailure, "lost shard connection" + std::string(during));
}

}  // namespace

/// One COPY into a sharded table, from its start on every shard to the client's reply.
struct ClientSession::CopyIn {
  const router::TemplateStatement& st;
  const router::DirectorySnapshot& directory;
  int modulus;  ///< logical shards
  int nshards;
  std::vector<backend::ServerLease> leases;  ///< one primary per shard, in shard order
  int key_index = -1;
  std::vector<std::string> columns;
  std::optional<router::KeyType> key_type;
  std::vector<std::string> pending;  ///< rows per shard not sent yet
  std::optional<SqlError> route_error;
  std::int64_t line = 0;
  bool client_failed = false;
  std::string client_fail_message;
  bool started = false;  ///< BEGIN and the COPY were sent to the shards
  /// The client's transaction the COPY runs in (its participants' leases), or null: its own.
  Transaction* tx = nullptr;

  /// Leases still held when the COPY ends some other way than end_copy_transactions (the client
  /// vanished, sent a malformed frame, a reply could not be written) are mid-transaction or
  /// mid-COPY: the pool must close them, not lend them to the next client.
  ~CopyIn() {
    if (started)
      for (auto& l : leases)
        if (l) l->broken = true;
  }

  /// The error reply, the servers marked broken (mid-COPY state: never reuse these); the
  /// client's transaction, if the COPY runs in one, has failed (its end rolls back everywhere).
  std::string fail(const SqlError& e) {
    for (auto& l : leases) l->broken = true;
    if (tx) tx->fail_distributed();
    std::string o;
    protocol::MessageWriter ow(o);
    ow.error(e);
    ow.ready_for_query(tx ? 'E' : 'I');
    return o;
  }

  /// A text-format row (or the header, which every shard gets) to the shard of its key.
  void text_row(std::string_view row, const std::optional<std::string>& key, bool header) {
    ++line;
    if (route_error) return;
    if (header) {
      for (auto& p : pending) p.append(row);
      return;
    }
    int logical;
    if (!key) {
      logical = router::logical_shard_of_null(modulus);
    } else {
      // A field is read by the key type's input function, exactly as COPY does on the server;
      // a bad one fails the COPY with the server's SQLSTATE and message.
      const auto o = router::resolve_text(*key, *key_type, router::KeyUse::Assign, directory);
      if (o.kind != router::KeyOutcome::Kind::Logical) {
        route_error = SqlError::error(o.sqlstate.empty() ? std::string("22P02") : o.sqlstate, o.message);
        route_error->detail = fmt::format("COPY {}, line {}, column {}: \"{}\"", st.copy_table, line, st.copy_key, *key);
        return;
      }
      logical = o.logical;
    }
    pending[std::size_t(directory.physical(logical))].append(row);
  }

  /// Binary format: the key field in its type's binary form. The target is the physical shard.
  exec::BinaryCopySplitter::KeyRoute binary_key(std::optional<std::string_view> key) const {
    router::KeyOutcome o{router::KeyOutcome::Kind::Logical, router::logical_shard_of_null(modulus)};
    exec::BinaryCopySplitter::KeyRoute route{0, {}, {}};
    if (key) {
      const auto bytes = std::as_bytes(std::span<const char>(key->data(), key->size()));
      auto l = router::logical_shard_of_column_binary(*key_type, bytes, modulus, &route.sqlstate, &route.message);
      if (l) o.logical = *l;
      if (directory.has_tenants()) o.key = router::canonical_key_of_binary(*key_type, bytes);
    }
    router::place_tenant(o, directory);
    route.target = directory.physical(o.logical);
    return route;
  }

  void binary_tuple(std::string_view tuple, int shard, bool header) {
    if (header) {
      for (auto& p : pending) p.append(tuple);
      return;
    }
    pending[std::size_t(shard)].append(tuple);
  }

  void binary_error(const std::optional<exec::CopyDataError>& e) {
    if (!e || route_error) return;
    route_error = SqlError::error(e->sqlstate, e->message);
    route_error->detail = binary_context(e->line, e->field);
  }

  /// PostgreSQL's CONTEXT of a binary COPY error.
  std::string binary_context(std::int64_t row, int field) const {
    const std::string_view relname = std::string_view(st.copy_table).substr(st.copy_table.find('.') + 1);
    if (row <= 0) return std::string();
    if (field < 0 || std::size_t(field) >= columns.size()) return fmt::format("COPY {}, line {}", relname, row);
    return fmt::format("COPY {}, line {}, column {}", relname, row, columns[std::size_t(field)]);
  }
};

asio::awaitable<bool> ClientSession::run_copy_in(const router::TemplateStatement& st, std::string_view sql) {
  const int nshards = int(services_.directory->shard_names().size());
  CopyIn c{st, *services_.directory, services_.schema->logical_shards(), nshards};
  std::vector<int> all;
  for (int shard = 0; shard < nshards; ++shard) all.push_back(shard);
  if (in_transaction()) c.tx = &tx_;  // 2pc: on the transaction's participants
  if (auto err = c.tx ? co_await take_participants(all, c.leases) : co_await acquire_primaries(all, c.leases)) {
    std::string out;
    protocol::MessageWriter w(out);
    w.error(*err);
    w.ready_for_query(tx_.status());
    co_return co_await write_client(out);
  }
  std::string copy_in_response;
  std::optional<SqlError> error = co_await copy_key_column(c);
  if (!error) error = co_await start_copy(c, sql, copy_in_response);
  if (error) co_return co_await write_client(c.fail(*error));
  if (!co_await write_client(copy_in_response)) co_return false;
  if (auto err = co_await copy_key_type(c)) co_return co_await write_client(c.fail(*err));
  if (auto done = co_await stream_copy_rows(c)) co_return *done;
  co_return co_await finish_copy(c);
}

asio::awaitable<std::optional<SqlError>> ClientSession::copy_key_column(CopyIn& c) {
  // The key's position: from the column list, else from the table's column order (the columns
  // COPY loads: not dropped, not generated).
  const auto& st = c.st;
  c.key_index = st.copy_key_column;
  c.columns = st.copy_columns;
  if (st.copy_columns.empty()) {
    std::optional<SqlError> error;
    auto names_in_order = co_await exec::query_column(
        *c.leases[0],
        fmt::format("SELECT attname FROM pg_attribute WHERE attrelid = {}::regclass AND attnum > 0 AND NOT "
                    "attisdropped AND attgenerated = '' ORDER BY attnum",
                    quote_literal(st.copy_table)),
        error);
    if (error) co_return error;
    for (std::size_t i = 0; i < names_in_order.size(); ++i) {
      if (names_in_order[i] == st.copy_key) c.key_index = int(i);
      c.columns.push_back(names_in_order[i].value_or(""));
    }
  }
  if (c.key_index < 0)
    co_return SqlError::error(sqlstate::kFeatureNotSupported,
                              fmt::format("COPY into sharded table {} must include its key column {}", st.copy_table,
                                          st.copy_key));
  co_return std::nullopt;
}

asio::awaitable<std::optional<SqlError>> ClientSession::start_copy(CopyIn& c, std::string_view sql,
                                                                   std::string& copy_in_response) {
  // Start the COPY everywhere, in a transaction (the client's, or one of its own).
  const auto& names = services_.directory->shard_names();
  std::string start = (c.tx ? std::string() : query_message("BEGIN")) + query_message(sql);
  c.started = true;
  for (int i = 0; i < c.nshards; ++i) {
    auto& server = *c.leases[std::size_t(i)];
    std::string req;
    if (server.vars.fingerprint() != vars_.fingerprint()) {
      std::string diff = vars_.diff_from(server.vars);
      if (!diff.empty()) req += query_message(diff);
      server.vars = vars_;
    }
    req += start;
    boost::system::error_code ec;
    co_await server.stream().write_all(req, ec);
  }
  for (int i = 0; i < c.nshards; ++i) {
    for (;;) {
      auto m = co_await next_message(*c.leases[std::size_t(i)]);
      if (!m) co_return lost_shard();
      char tag = (*m)[0];
      if (tag == 'G') {
        if (i == 0) copy_in_response = *m;
        break;
      }
      if (tag == 'E') {
        auto e = protocol::parse_error_fields(std::string_view(*m).substr(5));
        e.severity = "ERROR";
        e.detail = "on shard " + names[std::size_t(i)];
        co_return e;
      }
    }
  }
  co_return std::nullopt;
}

asio::awaitable<std::optional<SqlError>> ClientSession::copy_key_type(CopyIn& c) {
  // The key's type decides its hash; if it is not known yet (a table created behind the
  // proxy's back), ask the shard rather than guess.
  c.key_type = c.st.key_type;
  if (c.key_type) co_return std::nullopt;
  std::optional<SqlError> error;
  auto type = co_await exec::query_column(
      *c.leases[0],
      fmt::format("SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = {}::regclass AND attname = {}",
                  quote_literal(c.st.copy_table), quote_literal(c.st.copy_key)),
      error);
  if (error) co_return error;
  if (!type.empty() && type[0]) c.key_type = router::key_type_from_name(*type[0]);
  if (!c.key_type)
    co_return SqlError::error(sqlstate::kFeatureNotSupported,
                              fmt::format("the key column {} of {} has a type shardline cannot hash (supported: "
                                          "smallint, integer, bigint, text, varchar, uuid)",
                                          c.st.copy_key, c.st.copy_table));
  co_return std::nullopt;
}

asio::awaitable<std::optional<bool>> ClientSession::stream_copy_rows(CopyIn& c) {
  // Stream rows to their shards.
  const auto& st = c.st;
  exec::CopyFormat format;
  format.csv = st.copy_csv;
  format.delimiter = st.copy_delimiter;
  format.quote = st.copy_quote;
  format.escape = st.copy_escape;
  format.null_marker = st.copy_null;
  format.header = st.copy_header;
  exec::CopySplitter splitter(format, c.key_index);
  c.pending.assign(std::size_t(c.nshards), std::string());
  const exec::CopySplitter::RowSink sink = [&c](std::string_view row, const std::optional<std::string>& key,
                                                bool header) { c.text_row(row, key, header); };
  exec::BinaryCopySplitter binary(int(c.columns.size()), c.key_index,
                                  [&c](std::optional<std::string_view> key) { return c.binary_key(key); });
  const exec::BinaryCopySplitter::Sink binary_sink = [&c](std::string_view tuple, int shard, bool header) {
    c.binary_tuple(tuple, shard, header);
  };
  for (;;) {
    protocol::Frame f;
    auto decoded = protocol::decode_client_frame(in_.readable(), f);
    if (decoded == protocol::DecodeStatus::Malformed) co_return false;
    if (decoded == protocol::DecodeStatus::NeedMoreData) {
      boost::system::error_code ec;
      auto n = co_await stream_.read_some(in_.prepare(64 * 1024), ec);
      if (ec) {
        for (auto& l : c.leases) l->broken = true;
        co_return false;
      }
      in_.commit(n);
      continue;
    }
    const char tag = f.tag;
    const std::string_view data(f.body.data(), f.body.size());
    in_.consume(f.total_size);
    if (tag == 'd') {
      if (st.copy_binary) c.binary_error(binary.feed(data, binary_sink));
      else splitter.feed(data, sink);
      for (int i = 0; i < c.nshards; ++i)
        if (!co_await send_copy_data(*c.leases[std::size_t(i)], c.pending[std::size_t(i)], false))
          co_return co_await write_client(c.fail(lost_shard(" during COPY")));
      continue;
    }
    if (tag == 'c') {
      if (!st.copy_binary) {
        splitter.finish(sink);
      } else {
        c.binary_error(binary.finish());
        if (!c.route_error)
          for (auto& p : c.pending) p.append(exec::BinaryCopySplitter::kTrailer);
      }
      co_return std::nullopt;
    }
    if (tag == 'f') {
      protocol::BodyReader r(f.body);
      c.client_fail_message = std::string(r.cstr().value_or(""));
      c.client_failed = true;
      co_return std::nullopt;
    }
    if (tag == 'H' || tag == 'S') continue;  // ignored during COPY, as PostgreSQL does
    co_return co_await write_client(c.fail(SqlError::error(
        sqlstate::kProtocolViolation, fmt::format("unexpected message type {} during COPY from stdin", tag))));
  }
}

asio::awaitable<bool> ClientSession::finish_copy(CopyIn& c) {
  // End the COPY on every shard: data done, or failed.
  const auto& names = services_.directory->shard_names();
  const bool abort = c.client_failed || c.route_error.has_value();
  for (int i = 0; i < c.nshards; ++i) {
    auto& server = *c.leases[std::size_t(i)];
    if (!abort && !co_await send_copy_data(server, c.pending[std::size_t(i)], true))
      co_return co_await write_client(c.fail(lost_shard(" during COPY")));
    std::string msg;
    protocol::MessageWriter mw(msg);
    if (abort) mw.begin('f').cstr(c.client_failed ? c.client_fail_message : "row with an invalid key").end();
    else mw.begin('c').end();
    boost::system::error_code ec;
    co_await server.stream().write_all(msg, ec);
  }
  std::uint64_t total = 0;
  std::optional<SqlError> shard_error;
  for (int i = 0; i < c.nshards; ++i) {
    for (;;) {
      auto m = co_await next_message(*c.leases[std::size_t(i)]);
      if (!m) co_return co_await write_client(c.fail(lost_shard()));
      char tag = (*m)[0];
      if (tag == 'C') {
        std::string t(m->data() + 5, m->size() - 6);
        auto sp = t.rfind(' ');
        if (sp != std::string::npos) total += std::stoull(t.substr(sp + 1));
      } else if (tag == 'E' && !shard_error) {
        shard_error = protocol::parse_error_fields(std::string_view(*m).substr(5));
        shard_error->severity = "ERROR";
        if (!abort)
          shard_error->detail += (shard_error->detail.empty() ? "" : "; ") + std::string("on shard ") + names[std::size_t(i)];
      } else if (tag == 'Z') {
        break;
      }
    }
  }
  const bool ok = !abort && !shard_error;
  const std::optional<SqlError> commit_error = co_await end_copy_transactions(c, ok);
  std::string out;
  protocol::MessageWriter w(out);
  if (c.route_error) {
    w.error(*c.route_error);
  } else if (c.client_failed) {
    w.error(SqlError::error(sqlstate::kQueryCanceled, "COPY from stdin failed: " + c.client_fail_message));
  } else if (shard_error) {
    w.error(*shard_error);
  } else if (commit_error) {
    w.error(*commit_error);
  } else {
    w.command_complete(fmt::format("COPY {}", total));
  }
  w.ready_for_query(tx_.status());
  co_return co_await write_client(out);
}

asio::awaitable<std::optional<SqlError>> ClientSession::end_copy_transactions(CopyIn& c, bool commit) {
  const auto& names = services_.directory->shard_names();
  std::vector<int> shards(static_cast<std::size_t>(c.nshards), 0);
  for (int i = 0; i < c.nshards; ++i) shards[std::size_t(i)] = i;
  if (c.tx) {
    // The client's transaction goes on (failed, after an error: its end rolls back everywhere).
    tx_.wrote({});
    tx_.touch({});
    return_participants(shards, c.leases, commit ? -1 : 0);
    co_return std::nullopt;
  }
  if (commit && services_.twopc && c.nshards > 1) {  // all or nothing (cross_shard_transactions: 2pc)
    std::vector<exec::TwopcBranch> branches;
    for (int i = 0; i < c.nshards; ++i) branches.push_back({c.leases[std::size_t(i)].get(), names[std::size_t(i)]});
    auto err = co_await services_.twopc->commit(branches);
    for (int i = 0; i < c.nshards; ++i) services_.cluster.primary(i).stats.xact_count++;
    if (!err) co_await learn_commit_positions(c.leases, shards);
    c.leases.clear();
    co_return err;
  }
  for (int i = 0; i < c.nshards; ++i) {
    boost::system::error_code ec;
    co_await c.leases[std::size_t(i)]->stream().write_all(query_message(commit ? "COMMIT" : "ROLLBACK"), ec);
  }
  std::string commit_failed;
  for (int i = 0; i < c.nshards; ++i) {
    bool failed = false;
    for (;;) {
      auto m = co_await next_message(*c.leases[std::size_t(i)]);
      if (!m) {
        c.leases[std::size_t(i)]->broken = true;
        failed = true;
        break;
      }
      if ((*m)[0] == 'E') failed = true;
      if ((*m)[0] == 'Z') break;
    }
    if (failed) commit_failed += (commit_failed.empty() ? "" : ", ") + names[std::size_t(i)];
    services_.cluster.primary(i).stats.xact_count++;
  }
  if (commit) co_await learn_commit_positions(c.leases, shards);
  c.leases.clear();
  if (commit_failed.empty()) co_return std::nullopt;
  co_return SqlError::error(sqlstate::kConnectionFailure,
                            "COPY commit failed on shard(s) " + commit_failed + "; it may be partly applied");
}

}  // namespace shardline::proxy::session
