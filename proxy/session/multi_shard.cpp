// A statement on several shards (simple query protocol): a scatter read, a broadcast write or
// DDL, or a multi-row INSERT split by key. Runs on every target shard in parallel; writes run in
// a transaction on each shard and commit only when every part succeeded. The replies are
// merged into what one database would have answered. A scatter read streams through
// exec::run_scatter instead (its rows never buffered whole); writes, broadcasts and splits have
// small replies and are merged here.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/exec/result_merger.hpp"
#include "proxy/exec/scatter_executor.hpp"
#include "proxy/control/lsn.hpp"
#include "proxy/exec/server_io.hpp"
#include "proxy/protocol/frame_reader.hpp"
#include "proxy/protocol/message_writer.hpp"
#include "proxy/session/client_session.hpp"

namespace shardline::proxy::session {

using protocol::Frame;
using protocol::SqlError;
namespace sqlstate = protocol::sqlstate;

namespace {

using exec::query_message;

/// Reads whole messages from a server until `count` ReadyForQuery have arrived. Messages of the
/// first `skip` queries are dropped (the proxy's own SET / BEGIN); the rest are kept.
asio::awaitable<bool> read_replies(backend::ServerConnection& server, int count, int skip,
                                   std::vector<std::string>& kept, bool& failed_skipped) {
  for (int seen = 0; seen < count;) {
    auto msg = co_await exec::next_message(server);
    if (!msg) co_return false;
    const char tag = (*msg)[0];
    if (tag == 'Z') {
      ++seen;
    } else if (seen < skip) {
      if (tag == 'E') failed_skipped = true;
    } else if (tag != 'S') {  // ParameterStatus of our SETs: the client already knows them
      kept.push_back(std::move(*msg));
    }
  }
  co_return true;
}

/// Whether every shard's database orders text by bytes (C, POSIX, C.UTF-8); nullopt when a
/// shard could not be asked (lost connection), so the next scatter asks again.
/// Whether the session's extra_float_digits (the statement that set it, as replayed on servers:
/// `SET extra_float_digits = 3`, or a startup parameter) is at least 1, PostgreSQL's default,
/// under which float text is exact. A form this cannot read counts as below.
bool exact_float_text(const backend::SessionVars& vars) {
  const auto it = vars.vars().find("extra_float_digits");
  if (it == vars.vars().end()) return true;
  std::string_view s = it->second;
  while (!s.empty() && (s.back() == ';' || s.back() == ' ' || s.back() == '\'')) s.remove_suffix(1);
  std::size_t i = s.size();
  while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9') --i;
  if (i == s.size()) return false;
  const bool negative = i > 0 && s[i - 1] == '-';
  return !negative && std::stoi(std::string(s.substr(i))) >= 1;
}

asio::awaitable<std::optional<bool>> bytewise_collation(std::vector<backend::ServerLease>& leases) {
  bool bytewise = true;
  for (auto& lease : leases) {
    std::optional<SqlError> err;
    auto v = co_await exec::query_column(*lease,
                                         "SELECT CASE WHEN datlocprovider = 'c' THEN datcollate END FROM pg_database "
                                         "WHERE datname = current_database()",
                                         err);
    if (err && err->sqlstate == sqlstate::kConnectionFailure) {
      lease->broken = true;
      co_return std::nullopt;
    }
    const std::string c = !err && v.size() == 1 && v[0] ? *v[0] : std::string();
    bytewise = bytewise && (c == "C" || c == "POSIX" || c == "C.UTF-8" || c == "C.utf8");
  }
  co_return bytewise;
}


}  // namespace

asio::awaitable<std::optional<SqlError>> ClientSession::acquire_primaries(const std::vector<int>& shards,
                                                                         std::vector<backend::ServerLease>& leases) {
  // In ascending shard order, so concurrent multi-shard statements never wait on each other
  // in a cycle.
  const auto& cfg = services_.cluster.config();
  for (int shard : shards) {
    SqlError err;
    waiting_for_server_ = true;
    auto lease = co_await services_.cluster.primary(shard).acquire(
        backend::Clock::now() + std::chrono::milliseconds(cfg.pool.query_wait_timeout_ms), err);
    waiting_for_server_ = false;
    if (!lease) co_return err;
    lease->client_id = std::uint64_t(pid_);
    leases.push_back(std::move(lease));
  }
  co_return std::nullopt;
}

asio::awaitable<void> ClientSession::learn_commit_positions(std::vector<backend::ServerLease>& leases,
                                                           const std::vector<int>& shards) {
  // Sent to every shard first, then read: one round trip for all. A shard that does not tell
  // (broken, an error) counts as committed at an unknown position: it may have committed.
  const std::string probe = exec::query_message("SELECT pg_current_wal_insert_lsn()");
  std::vector<bool> sent(leases.size(), false);
  for (std::size_t i = 0; i < leases.size(); ++i) {
    if (!leases[i] || leases[i]->broken) continue;
    boost::system::error_code ec;
    co_await leases[i]->stream().write_all(probe, ec);
    sent[i] = !ec;
  }
  for (std::size_t i = 0; i < leases.size() && i < shards.size(); ++i) {
    std::optional<std::uint64_t> lsn;
    while (sent[i]) {
      auto m = co_await exec::next_message(*leases[i]);
      if (!m) {
        leases[i]->broken = true;
        break;
      }
      if ((*m)[0] == 'D' && m->size() >= 11) {
        const std::uint32_t len = protocol::read_u32(m->data() + 7);
        if (len != 0xffffffffu && 11 + std::size_t(len) <= m->size())
          if (auto parsed = control::Lsn::parse(std::string_view(*m).substr(11, len))) lsn = parsed->value();
      }
      if ((*m)[0] == 'Z') break;
    }
    note_commit(shards[i], {}, lsn);
  }
}

/// One multi-shard write, broadcast or split on its leased primaries, phase by phase.
struct MultiParts {
  std::vector<int> targets;
  std::vector<backend::ServerLease> leases;
  std::vector<std::vector<std::string>> replies;  ///< each shard's reply to the statement
  std::vector<bool> io_ok, sync_failed;
  std::vector<std::string> failed, committed, commit_failed;  ///< shard names
};

namespace {

/// "a, b, c".
std::string name_list(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

/// Phase 2 of a write: COMMIT on every shard if every part succeeded, else ROLLBACK; fills
/// committed / commit_failed.
asio::awaitable<void> finish_parts(MultiParts& m, const std::vector<std::string>& names) {
  const char* finish = m.failed.empty() ? "COMMIT" : "ROLLBACK";
  for (std::size_t i = 0; i < m.targets.size(); ++i) {
    if (!m.io_ok[i]) continue;
    boost::system::error_code ec;
    co_await m.leases[i]->stream().write_all(query_message(finish), ec);
    if (ec) m.io_ok[i] = false;
  }
  for (std::size_t i = 0; i < m.targets.size(); ++i) {
    const std::string& name = names[std::size_t(m.targets[i])];
    if (!m.io_ok[i]) {
      if (m.failed.empty()) m.commit_failed.push_back(name);
      continue;
    }
    std::vector<std::string> msgs;
    bool f = false;
    m.io_ok[i] = co_await read_replies(*m.leases[i], 1, 0, msgs, f);
    bool ok = m.io_ok[i];
    for (const auto& msg : msgs)
      if (msg[0] == 'E' || (msg[0] == 'C' && msg.find("ROLLBACK") != std::string::npos && m.failed.empty())) ok = false;
    if (m.failed.empty()) (ok ? m.committed : m.commit_failed).push_back(name);
  }
}

/// The error a failed multi-shard statement answers: the first shard error, naming where it
/// happened (writes were rolled back everywhere), or the partial commit.
std::optional<SqlError> parts_error(const MultiParts& m, const std::vector<exec::ShardReply>& results, bool writes) {
  if (!m.failed.empty()) {
    SqlError e;
    for (const auto& r : results) {
      const int idx = r.error_index();
      if (idx < 0) continue;
      e = protocol::parse_error_fields(std::string_view(r.messages[std::size_t(idx)]).substr(5));
      break;
    }
    if (e.sqlstate.empty()) e = SqlError::error(sqlstate::kConnectionFailure, "lost the connection to a shard");
    const std::string where = fmt::format("failed on shard(s) {}", name_list(m.failed));
    e.detail = e.detail.empty() ? where : e.detail + "; " + where;
    if (writes) e.detail += "; rolled back on every shard";
    e.severity = "ERROR";
    return e;
  }
  if (!m.commit_failed.empty())
    return SqlError::error(sqlstate::kConnectionFailure,
                           fmt::format("commit failed on shard(s) {} after it succeeded on shard(s) {}: the "
                                       "statement is only partly applied",
                                       name_list(m.commit_failed), m.committed.empty() ? "none" : name_list(m.committed)));
  return std::nullopt;
}

/// The replies one database would have given; a refusal when aggregates cannot be combined.
std::vector<std::string> merge_parts(const router::Plan& plan, const std::vector<exec::ShardReply>& results,
                                     std::string& error) {
  if (plan.kind == router::RouteKind::Scatter && !plan.aggregates.empty()) {
    std::vector<exec::AggregateKind> kinds;
    for (auto a : plan.aggregates) kinds.push_back(exec::AggregateKind(int(a)));
    return exec::merge_aggregates(results, kinds, &error);
  }
  exec::MergeMode mode = exec::MergeMode::Concat;
  std::vector<std::vector<int>> origin;
  if (plan.same_rows_everywhere || plan.ddl) mode = exec::MergeMode::SameRows;
  if (plan.kind == router::RouteKind::Split) {
    mode = exec::MergeMode::Reorder;
    for (const auto& p : plan.parts) origin.push_back(p.rows);
  }
  return exec::merge_replies(results, mode, origin);
}

}  // namespace

asio::awaitable<void> ClientSession::send_parts(const router::Plan& plan, std::string_view sql,
                                                std::string_view request, bool writes, MultiParts& m) {
  // State, BEGIN for writes, the statement: to every shard first, then read, so the shards
  // work in parallel.
  const std::size_t n = m.targets.size();
  m.replies.assign(n, {});
  m.io_ok.assign(n, true);
  m.sync_failed.assign(n, false);
  std::vector<int> skips(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto& server = *m.leases[i];
    int skip = 0;
    std::string req = state_prelude(server, skip);
    if (writes) {
      req += query_message("BEGIN");
      ++skip;
    }
    const std::string_view part = plan.kind == router::RouteKind::Split ? std::string_view(plan.parts[i].sql) : sql;
    req += request.empty() ? query_message(part) : std::string(request);
    skips[i] = skip;
    boost::system::error_code ec;
    co_await server.stream().write_all(req, ec);
    if (ec) m.io_ok[i] = false;
    services_.cluster.primary(m.targets[i]).stats.query_count++;
    meter_.forwarded_part(m.targets[i]);
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!m.io_ok[i]) continue;
    bool f = false;
    m.io_ok[i] = co_await read_replies(*m.leases[i], skips[i] + 1, skips[i], m.replies[i], f);
    m.sync_failed[i] = f;
  }
}

asio::awaitable<bool> ClientSession::run_multi(const router::Plan& plan, std::string_view sql, std::string_view request,
                                              const std::vector<bool>& keep_parse, exec::ScatterRequest scatter) {
  const auto& names = services_.directory->shard_names();
  std::string out;
  protocol::MessageWriter w(out);
  auto fail = [&](const SqlError& e) -> asio::awaitable<bool> {
    w.error(e);
    w.ready_for_query('I');
    co_return co_await write_client(out);
  };
  if (plan.kind == router::RouteKind::Split && plan.parts.empty())
    co_return co_await fail(SqlError::error(
        sqlstate::kFeatureNotSupported,
        "COPY into a sharded table is not supported yet: insert the rows with INSERT, "
        "or COPY per tenant with a /* shardline: tenant=... */ hint or SET shardline.tenant"));
  if (exec::streams_as_scatter(plan)) co_return co_await run_scatter_read(plan, sql, request, std::move(scatter));
  const bool writes = plan.writes || plan.kind == router::RouteKind::Broadcast || plan.kind == router::RouteKind::Split;
  MultiParts m;
  m.targets = plan.shards;
  if (auto err = co_await acquire_primaries(m.targets, m.leases)) co_return co_await fail(*err);
  parts_started(m.leases);
  co_await send_parts(plan, sql, request, writes, m);

  std::vector<exec::ShardReply> results;
  for (std::size_t i = 0; i < m.targets.size(); ++i) {
    auto& replies = m.replies[i];
    if (!keep_parse.empty()) {  // drop the ParseCompletes of Parses the proxy added
      std::size_t k = 0;
      std::erase_if(replies, [&](const std::string& msg) {
        return msg[0] == '1' && k < keep_parse.size() && !keep_parse[k++];
      });
    }
    results.push_back(exec::ShardReply{names[std::size_t(m.targets[i])], std::move(replies)});
    if (!m.io_ok[i] || m.sync_failed[i] || results.back().error_index() >= 0)
      m.failed.push_back(names[std::size_t(m.targets[i])]);
  }
  if (writes) co_await finish_parts(m, names);
  for (std::size_t i = 0; i < m.targets.size(); ++i) {
    if (!m.io_ok[i]) m.leases[i]->broken = true;
    services_.cluster.primary(m.targets[i]).stats.xact_count++;
  }
  if (writes && m.failed.empty()) co_await learn_commit_positions(m.leases, m.targets);
  parts_ended();
  m.leases.clear();  // back to their pools

  if (auto e = parts_error(m, results, writes)) co_return co_await fail(*e);
  std::string error;
  const std::vector<std::string> merged = merge_parts(plan, results, error);
  if (!error.empty()) co_return co_await fail(SqlError::error(sqlstate::kFeatureNotSupported, error));
  for (const auto& msg : merged) out += msg;
  w.ready_for_query('I');
  if (plan.ddl && services_.relearn_key_types) co_await services_.relearn_key_types();
  co_return co_await write_client(out);
}

asio::awaitable<bool> ClientSession::run_scatter_read(const router::Plan& plan, std::string_view sql,
                                                     std::string_view request, exec::ScatterRequest scatter) {
  const auto& names = services_.directory->shard_names();
  std::vector<backend::ServerLease> leases;
  if (auto err = co_await acquire_primaries(plan.shards, leases)) {
    std::string out;
    protocol::MessageWriter w(out);
    w.error(*err);
    w.ready_for_query('I');
    co_return co_await write_client(out);
  }
  if (!services_.bytewise_collation) services_.bytewise_collation = co_await bytewise_collation(leases);
  scatter.context.bytewise_collation = *services_.bytewise_collation;
  scatter.context.exact_float_text = exact_float_text(vars_);
  std::string statement(request);
  if (request.empty()) {  // a Query: the shard SQL with the client's literals put back
    const auto& lits = scratch().normalized;
    statement = exec::query_message(plan.merge ? router::substitute_literals(plan.merge->shard_sql, lits.literals, lits.quoted)
                                               : std::string(sql));
    // The literals are the shape's parameters: LIMIT 5 was cached as LIMIT $1.
    exec::ScatterResult result{plan.merge, {}, {}, {}};
    for (const auto& l : lits.literals) {
      result.param_values.emplace_back(l);
      result.param_formats.push_back(0);
    }
    scatter.results.push_back(std::move(result));
  }
  for (std::size_t i = 0; i < leases.size(); ++i) {
    exec::ScatterTarget t{leases[i].get(), names[std::size_t(plan.shards[i])], {}, 0};
    t.request = state_prelude(*leases[i], t.skip) + statement;
    scatter.targets.push_back(std::move(t));
    services_.cluster.primary(plan.shards[i]).stats.query_count++;
    meter_.forwarded_part(plan.shards[i]);
  }
  exec::ClientWrite write = [this](std::string_view bytes) { return write_client(bytes); };
  parts_started(leases);
  auto outcome = co_await exec::run_scatter(services_.ex, scatter, std::move(write));
  for (std::size_t i = 0; i < leases.size(); ++i) {
    if (outcome.broken[i]) leases[i]->broken = true;
    services_.cluster.primary(plan.shards[i]).stats.xact_count++;
  }
  parts_ended();
  co_return !outcome.client_gone;
}

std::string ClientSession::state_prelude(backend::ServerConnection& server, int& skip) {
  skip = 0;
  if (server.vars.fingerprint() == vars_.fingerprint()) return {};
  std::string diff = vars_.diff_from(server.vars);
  server.vars = vars_;
  if (diff.empty()) return {};
  skip = 1;
  return exec::query_message(diff);
}

}  // namespace shardline::proxy::session
