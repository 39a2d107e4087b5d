// COPY sharded_table FROM STDIN: every shard runs the same COPY inside a transaction, each data
// row goes to the shard that owns its key, and the COPY commits on every shard only if all
// of them accepted their rows. The client sees one CopyInResponse and one "COPY n". In binary
// format every shard gets the header, its own tuples and the trailer.

#include <fmt/format.h>

#include <map>
#include <span>

#include "proxy/exec/binary_copy_splitter.hpp"
#include "proxy/exec/copy_splitter.hpp"
#include "proxy/exec/server_io.hpp"
#include "proxy/protocol/message_writer.hpp"
#include "proxy/session/client_session.hpp"
#include "router/sharding/key_datum.hpp"
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

}  // namespace

asio::awaitable<bool> ClientSession::run_copy_in(const router::TemplateStatement& st, std::string_view sql) {
  const auto& names = services_.directory->shard_names();
  const int nshards = int(names.size());
  std::string out;
  protocol::MessageWriter w(out);

  std::vector<int> all;
  for (int shard = 0; shard < nshards; ++shard) all.push_back(shard);
  std::vector<backend::ServerLease> leases;
  if (auto err = co_await acquire_primaries(all, leases)) {
    w.error(*err);
    w.ready_for_query('I');
    co_return co_await write_client(out);
  }
  auto fail = [&](SqlError e) -> std::string {
    for (auto& l : leases) l->broken = true;  // mid-COPY state: never reuse these
    std::string o;
    protocol::MessageWriter ow(o);
    ow.error(e);
    ow.ready_for_query('I');
    return o;
  };

  // The key's position: from the column list, else from the table's column order (the columns
  // COPY loads: not dropped, not generated).
  int key_index = st.copy_key_column;
  std::vector<std::string> columns = st.copy_columns;
  if (st.copy_columns.empty()) {
    std::optional<SqlError> error;
    auto names_in_order = co_await exec::query_column(
        *leases[0],
        fmt::format("SELECT attname FROM pg_attribute WHERE attrelid = {}::regclass AND attnum > 0 AND NOT "
                    "attisdropped AND attgenerated = '' ORDER BY attnum",
                    quote_literal(st.copy_table)),
        error);
    if (error) co_return co_await write_client(fail(*error));
    for (std::size_t i = 0; i < names_in_order.size(); ++i) {
      if (names_in_order[i] == st.copy_key) key_index = int(i);
      columns.push_back(names_in_order[i].value_or(""));
    }
  }
  if (key_index < 0) {
    co_return co_await write_client(fail(SqlError::error(
        sqlstate::kFeatureNotSupported,
        fmt::format("COPY into sharded table {} must include its key column {}", st.copy_table, st.copy_key))));
  }

  // Start the COPY everywhere, in a transaction.
  std::string start = query_message("BEGIN") + query_message(sql);
  std::string copy_in_response;
  for (int i = 0; i < nshards; ++i) {
    auto& server = *leases[std::size_t(i)];
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
  for (int i = 0; i < nshards; ++i) {
    for (;;) {
      auto m = co_await next_message(*leases[std::size_t(i)]);
      if (!m) co_return co_await write_client(fail(SqlError::error(sqlstate::kConnectionFailure, "lost shard connection")));
      char tag = (*m)[0];
      if (tag == 'G') {
        if (i == 0) copy_in_response = *m;
        break;
      }
      if (tag == 'E') {
        auto e = protocol::parse_error_fields(std::string_view(*m).substr(5));
        e.severity = "ERROR";
        e.detail = "on shard " + names[std::size_t(i)];
        co_return co_await write_client(fail(e));
      }
    }
  }
  if (!co_await write_client(copy_in_response)) co_return false;

  // Stream rows to their shards.
  exec::CopyFormat format;
  format.csv = st.copy_csv;
  format.delimiter = st.copy_delimiter;
  format.quote = st.copy_quote;
  format.escape = st.copy_escape;
  format.null_marker = st.copy_null;
  format.header = st.copy_header;
  exec::CopySplitter splitter(format, key_index);
  std::vector<std::string> pending(static_cast<std::size_t>(nshards));
  std::optional<SqlError> route_error;
  // The key's type decides its hash; if it is not known yet (a table created behind the
  // proxy's back), ask the shard rather than guess.
  std::optional<router::KeyType> key_type = st.key_type;
  if (!key_type) {
    std::optional<SqlError> error;
    auto type = co_await exec::query_column(
        *leases[0],
        fmt::format("SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = {}::regclass AND attname = {}",
                    quote_literal(st.copy_table), quote_literal(st.copy_key)),
        error);
    if (error) co_return co_await write_client(fail(*error));
    if (!type.empty() && type[0]) key_type = router::key_type_from_name(*type[0]);
    if (!key_type)
      co_return co_await write_client(fail(SqlError::error(
          sqlstate::kFeatureNotSupported,
          fmt::format("the key column {} of {} has a type shardline cannot hash (supported: smallint, integer, "
                      "bigint, text, varchar, uuid)", st.copy_key, st.copy_table))));
  }
  const int modulus = services_.schema->logical_shards();
  std::int64_t line = 0;
  exec::CopySplitter::RowSink sink = [&](std::string_view row, const std::optional<std::string>& key, bool header) {
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
      const auto o = router::KeyDatum::unknown_text(*key).outcome(*key_type, router::KeyUse::Assign, modulus);
      if (o.kind != router::KeyOutcome::Kind::Logical) {
        route_error = SqlError::error(o.sqlstate.empty() ? std::string("22P02") : o.sqlstate, o.message);
        route_error->detail = fmt::format("COPY {}, line {}, column {}: \"{}\"", st.copy_table, line, st.copy_key, *key);
        return;
      }
      logical = o.logical;
    }
    pending[std::size_t(services_.directory->physical(logical))].append(row);
  };

  // Binary format: tuples cut at their field lengths, the key field in its type's binary form.
  exec::BinaryCopySplitter binary(int(columns.size()), key_index, [&](std::optional<std::string_view> key) {
    exec::BinaryCopySplitter::KeyRoute route{router::logical_shard_of_null(modulus), {}, {}};
    if (key) {
      auto l = router::logical_shard_of_column_binary(*key_type, std::as_bytes(std::span<const char>(key->data(), key->size())),
                                                      modulus, &route.sqlstate, &route.message);
      if (l) route.target = *l;
    }
    return route;
  });
  const std::string_view relname = std::string_view(st.copy_table).substr(st.copy_table.find('.') + 1);
  const auto context = [&](std::int64_t row, int field) {  // PostgreSQL's CONTEXT of a binary COPY
    if (row <= 0) return std::string();
    if (field < 0 || std::size_t(field) >= columns.size()) return fmt::format("COPY {}, line {}", relname, row);
    return fmt::format("COPY {}, line {}, column {}", relname, row, columns[std::size_t(field)]);
  };
  exec::BinaryCopySplitter::Sink binary_sink = [&](std::string_view tuple, int logical, bool header) {
    if (header) {
      for (auto& p : pending) p.append(tuple);
      return;
    }
    pending[std::size_t(services_.directory->physical(logical))].append(tuple);
  };
  const auto binary_error = [&](const std::optional<exec::CopyDataError>& e) {
    if (!e || route_error) return;
    route_error = SqlError::error(e->sqlstate, e->message);
    route_error->detail = context(e->line, e->field);
  };

  bool client_failed = false;
  std::string client_fail_message;
  for (;;) {
    protocol::Frame f;
    auto st2 = protocol::decode_client_frame(in_.readable(), f);
    if (st2 == protocol::DecodeStatus::Malformed) co_return false;
    if (st2 == protocol::DecodeStatus::NeedMoreData) {
      boost::system::error_code ec;
      auto n = co_await stream_.read_some(in_.prepare(64 * 1024), ec);
      if (ec) {
        for (auto& l : leases) l->broken = true;
        co_return false;
      }
      in_.commit(n);
      continue;
    }
    const char tag = f.tag;
    if (tag == 'd') {
      if (st.copy_binary) binary_error(binary.feed(std::string_view(f.body.data(), f.body.size()), binary_sink));
      else splitter.feed(std::string_view(f.body.data(), f.body.size()), sink);
      in_.consume(f.total_size);
      for (int i = 0; i < nshards; ++i)
        if (!co_await send_copy_data(*leases[std::size_t(i)], pending[std::size_t(i)], false)) co_return co_await write_client(fail(SqlError::error(sqlstate::kConnectionFailure, "lost shard connection during COPY")));
      continue;
    }
    if (tag == 'c') {
      in_.consume(f.total_size);
      if (st.copy_binary) {
        binary_error(binary.finish());
        if (!route_error)
          for (auto& p : pending) p.append(exec::BinaryCopySplitter::kTrailer);
      } else {
        splitter.finish(sink);
      }
      break;
    }
    if (tag == 'f') {
      protocol::BodyReader r(f.body);
      client_fail_message = std::string(r.cstr().value_or(""));
      in_.consume(f.total_size);
      client_failed = true;
      break;
    }
    if (tag == 'H' || tag == 'S') {  // ignored during COPY, as PostgreSQL does
      in_.consume(f.total_size);
      continue;
    }
    in_.consume(f.total_size);
    co_return co_await write_client(fail(SqlError::error(
        sqlstate::kProtocolViolation, fmt::format("unexpected message type {} during COPY from stdin", tag))));
  }

  // End the COPY on every shard: data done, or failed.
  const bool abort = client_failed || route_error.has_value();
  for (int i = 0; i < nshards; ++i) {
    if (!abort && !co_await send_copy_data(*leases[std::size_t(i)], pending[std::size_t(i)], true)) co_return co_await write_client(fail(SqlError::error(sqlstate::kConnectionFailure, "lost shard connection during COPY")));
    std::string msg;
    protocol::MessageWriter mw(msg);
    if (abort) mw.begin('f').cstr(client_failed ? client_fail_message : "row with an invalid key").end();
    else mw.begin('c').end();
    boost::system::error_code ec;
    co_await leases[std::size_t(i)]->stream().write_all(msg, ec);
  }
  std::uint64_t total = 0;
  std::optional<SqlError> shard_error;
  for (int i = 0; i < nshards; ++i) {
    for (;;) {
      auto m = co_await next_message(*leases[std::size_t(i)]);
      if (!m) co_return co_await write_client(fail(SqlError::error(sqlstate::kConnectionFailure, "lost shard connection")));
      char tag = (*m)[0];
      if (tag == 'C') {
        std::string t(m->data() + 5, m->size() - 6);
        auto sp = t.rfind(' ');
        if (sp != std::string::npos) total += std::stoull(t.substr(sp + 1));
      } else if (tag == 'E' && !shard_error) {
        shard_error = protocol::parse_error_fields(std::string_view(*m).substr(5));
        shard_error->severity = "ERROR";
        if (!client_failed && !route_error) shard_error->detail += (shard_error->detail.empty() ? "" : "; ") + std::string("on shard ") + names[std::size_t(i)];
      } else if (tag == 'Z') {
        break;
      }
    }
  }
  const bool ok = !abort && !shard_error;
  for (int i = 0; i < nshards; ++i) {
    boost::system::error_code ec;
    co_await leases[std::size_t(i)]->stream().write_all(query_message(ok ? "COMMIT" : "ROLLBACK"), ec);
  }
  std::vector<std::string> commit_failed;
  for (int i = 0; i < nshards; ++i) {
    for (;;) {
      auto m = co_await next_message(*leases[std::size_t(i)]);
      if (!m) {
        leases[std::size_t(i)]->broken = true;
        commit_failed.push_back(names[std::size_t(i)]);
        break;
      }
      if ((*m)[0] == 'E') commit_failed.push_back(names[std::size_t(i)]);
      if ((*m)[0] == 'Z') break;
    }
    services_.cluster.primary(i).stats.xact_count++;
  }
  if (ok) {
    std::vector<int> shards(static_cast<std::size_t>(nshards), 0);
    for (int i = 0; i < nshards; ++i) shards[std::size_t(i)] = i;
    co_await learn_commit_positions(leases, shards);
  }
  leases.clear();
  if (route_error) {
    w.error(*route_error);
  } else if (client_failed) {
    w.error(SqlError::error(sqlstate::kQueryCanceled, "COPY from stdin failed: " + client_fail_message));
  } else if (shard_error) {
    w.error(*shard_error);
  } else if (!commit_failed.empty()) {
    std::string f;
    for (const auto& n : commit_failed) f += (f.empty() ? "" : ", ") + n;
    w.error(SqlError::error(sqlstate::kConnectionFailure, "COPY commit failed on shard(s) " + f + "; it may be partly applied"));
  } else {
    w.command_complete(fmt::format("COPY {}", total));
  }
  w.ready_for_query('I');
  co_return co_await write_client(out);
}

}  // namespace shardline::proxy::session
