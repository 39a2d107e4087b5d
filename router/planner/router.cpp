#include "router/planner/router.hpp"

#include <algorithm>
#include <cstddef>
#include <set>

#include "router/planner/key_resolver.hpp"
#include "router/sharding/shard_key.hpp"

namespace shardline::router {

namespace {

Plan refuse(std::string sqlstate, std::string message) {
  Plan p;
  p.kind = RouteKind::Refuse;
  p.error = {std::move(sqlstate), std::move(message)};
  return p;
}

/// What the key values of one group of co-located tables come to.
struct KeyTargets {
  std::set<int> shards;        ///< physical shards of the values that name a logical shard
  std::set<int> logicals;      ///< and their logical shards
  bool unconstrained = false;  ///< a value may equal several keys: no restriction
  std::optional<KeyOutcome> server_error;  ///< PostgreSQL rejects the statement for a value
};

/// Physical shards of a key set's values (values that can match no row drop out); nullopt
/// (error set) when a parameter has no bound value.
std::optional<KeyTargets> shards_of(const KeySet& ks, std::optional<KeyType> type, const RouteContext& ctx,
                                    std::string* error) {
  KeyTargets out;
  auto add = [&](KeyOutcome& o) {
    switch (o.kind) {
      case KeyOutcome::Kind::Logical:
        out.logicals.insert(o.logical);
        out.shards.insert(ctx.directory.physical(o.logical));
        break;
      case KeyOutcome::Kind::NoMatch: break;
      case KeyOutcome::Kind::Unconstrained: out.unconstrained = true; break;
      case KeyOutcome::Kind::ServerError:
        if (!out.server_error) out.server_error = std::move(o);
        break;
    }
  };
  if (ks.values.size() == 1) {  // the common case, without the list machinery
    auto o = resolve_key(ks.values.front(), type, KeyUse::Compare, ctx.bind, ctx.directory, error);
    if (!o) return std::nullopt;
    add(*o);
    return out;
  }
  auto outcomes = resolve_keys(ks.values, type, KeyUse::Compare, ctx.bind, ctx.directory, error);
  if (!outcomes) return std::nullopt;
  for (auto& o : *outcomes) add(o);
  return out;
}

/// Records the tenant key of a Single plan decided by the one key value `v` (for metrics).
void note_tenant(Plan& p, const KeyValue& v, std::optional<KeyType> type, const RouteContext& ctx) {
  if (p.logical.size() != 1) return;
  if (v.kind == KeyValue::Kind::Literal) {
    p.tenant = v.text;
  } else if (v.kind == KeyValue::Kind::Param && ctx.bind && v.param >= 1 &&
             std::size_t(v.param) <= ctx.bind->values.size()) {
    if (const auto& val = ctx.bind->values[std::size_t(v.param - 1)]) {
      p.tenant = *val;
      if (ctx.bind->formats[std::size_t(v.param - 1)] == 1) {
        // The type the bytes were read as (the same size rule when it is unknown).
        KeyType t = type ? *type : val->size() == 16 ? KeyType::Uuid : val->size() <= 8 ? KeyType::BigInt : KeyType::Text;
        p.tenant_format = t == KeyType::Uuid   ? TenantFormat::BinaryUuid
                          : t == KeyType::Text ? TenantFormat::BinaryText
                                               : TenantFormat::BinaryInt;
      }
    }
  }
}

/// A statement PostgreSQL rejects for one of its key values, whichever shard runs it: one
/// shard (the session's, else the home shard) runs it and reports its own error.
Plan server_answers(const TemplateStatement& s, const KeyOutcome& o, const RouteContext& ctx) {
  Plan p;
  p.writes = s.info.writes;
  if (ctx.explain) p.reason = "the server rejects a key value (" + o.sqlstate + ": " + o.message + ")";
  return p;
}

/// A physical shard other than `hinted` that the statement's own key values name, if any: a
/// hint that disagrees with the key would answer from the wrong shard (no rows, or a write where
/// the key does not live).
std::optional<int> hint_contradicted(const TemplateStatement& s, const RouteContext& ctx, int hinted) {
  std::string ignored;
  for (const auto& g : s.groups) {
    if (!g.constrained) continue;
    auto sh = shards_of(g, s.key_type, ctx, &ignored);
    if (!sh || sh->server_error || sh->unconstrained) continue;
    for (int other : sh->shards)
      if (other != hinted) return other;
  }
  for (const auto& k : s.insert_keys) {
    if (!k) continue;
    auto o = resolve_key(*k, s.key_type, KeyUse::Assign, ctx.bind, ctx.directory, &ignored);
    if (o && o->kind == KeyOutcome::Kind::Logical && ctx.directory.physical(o->logical) != hinted)
      return ctx.directory.physical(o->logical);
  }
  return std::nullopt;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

Plan route_query(const RouteTemplate& t, const TemplateStatement& s, const RouteContext& ctx) {
  Plan p;
  p.writes = s.info.writes;
  const int nshards = int(ctx.directory.shard_names().size());
  const int home = ctx.schema.home_shard();
  auto all_shards = [&] {
    std::vector<int> v;
    for (int i = 0; i < nshards; ++i) v.push_back(i);
    return v;
  };
  const bool ddl = s.info.kind == StatementKind::Ddl;

  // A hint fixes the tenant for every sharded table of the statement; a statement without
  // tables goes to the tenant's shard too (e.g. SELECT inet_server_port() with a hint).
  const std::optional<std::string>& hint = ctx.session_tenant ? ctx.session_tenant : t.hint_tenant;  // a reference: Plan::tenant views it
  if (!s.has_sharded && !s.has_reference && !s.has_unsharded) {
    if (hint && s.info.kind != StatementKind::Transaction && s.info.kind != StatementKind::Set &&
        s.info.kind != StatementKind::Empty) {
      if (auto o = resolve_hint(*hint, std::nullopt, ctx.directory); o.kind == KeyOutcome::Kind::Logical) {
        p.kind = RouteKind::Single;
        p.shards = {ctx.directory.physical(o.logical)};
        if (ctx.explain) p.reason = "tenant hint " + *hint;
      }
    }
    return p;
  }
  if (!s.has_sharded) {
    if (s.has_unsharded) {  // unsharded tables live on the home shard (reference tables too)
      p.kind = RouteKind::Single;
      p.shards = {home};
      if (ctx.explain) p.reason = "unsharded table " + s.unsharded_names.front();
      return p;
    }
    if (ddl || s.info.writes) {
      p.kind = RouteKind::Broadcast;
      p.shards = all_shards();
      p.ddl = ddl;
      p.same_rows_everywhere = !ddl;
      if (ctx.explain) p.reason = "reference table";
      return p;
    }
    if (ctx.explain) p.reason = "reference tables only";
    return p;  // Any: every shard has the same rows
  }
  if (ddl) {
    p.kind = RouteKind::Broadcast;
    p.shards = all_shards();
    p.ddl = true;
    if (ctx.explain) p.reason = "DDL on sharded table " + s.sharded_names.front();
    return p;
  }
  if (s.has_unsharded) {
    return refuse("0A000", "statement joins sharded table " + s.sharded_names.front() + " with unsharded table " +
                               s.unsharded_names.front() + ", which lives only on the home shard");
  }

  std::string error;
  if (hint) {
    // The proxy reads a hint itself, so it answers a bad one with PostgreSQL's SQLSTATE.
    const KeyOutcome o = resolve_hint(*hint, s.key_type, ctx.directory);
    if (o.kind != KeyOutcome::Kind::Logical)
      return refuse(o.sqlstate.empty() ? "22P02" : o.sqlstate, "shardline.tenant hint: " + o.message);
    const int l = o.logical;
    if (auto clash = hint_contradicted(s, ctx, ctx.directory.physical(l))) {
      const auto& names = ctx.directory.shard_names();
      return refuse("0A000", "the tenant hint tenant=" + *hint + " (shard " + names[std::size_t(ctx.directory.physical(l))] +
                                 ") and the statement's own key of " + s.sharded_names.front() + " (shard " +
                                 names[std::size_t(*clash)] + ") name different shards; drop the hint or fix the key");
    }
    p.kind = RouteKind::Single;
    p.shards = {ctx.directory.physical(l)};
    p.logical = {l};
    p.tenant = *hint;
    if (ctx.explain) p.reason = std::string(ctx.session_tenant ? "SET shardline.tenant" : "comment hint") + " tenant=" + *hint +
               (l < ctx.directory.logical_shards() ? " (logical " + std::to_string(l) + ")" : std::string(" (pinned)"));
    return p;
  }

  if (s.copy_from_sharded) {
    p.kind = RouteKind::Split;
    p.shards = all_shards();
    if (ctx.explain) p.reason = "COPY rows routed one by one";
    return p;
  }

  if (s.insert_values || !s.insert_problem.empty()) {
    if (!s.insert_problem.empty()) return refuse("0A000", s.insert_problem);
    std::map<int, std::vector<int>> by_shard;
    std::set<int> logicals;
    for (std::size_t r = 0; r < s.insert_keys.size(); ++r) {
      auto outcome = resolve_key(*s.insert_keys[r], s.key_type, KeyUse::Assign, ctx.bind, ctx.directory, &error);
      if (!outcome) return refuse("22P02", error);
      const KeyOutcome& o = *outcome;
      if (o.kind == KeyOutcome::Kind::Unconstrained)
        return refuse("0A000", "cannot tell the shard of the key of row " + std::to_string(r + 1) + ": " + o.message);
      // The server rejects the whole INSERT for this row's key: one shard runs it unsplit.
      if (o.kind != KeyOutcome::Kind::Logical) return server_answers(s, o, ctx);
      logicals.insert(o.logical);
      by_shard[ctx.directory.physical(o.logical)].push_back(int(r));
    }
    if (by_shard.size() == 1) {
      p.kind = RouteKind::Single;
      p.shards = {by_shard.begin()->first};
      p.logical.assign(logicals.begin(), logicals.end());
      if (s.insert_keys.size() == 1) note_tenant(p, *s.insert_keys.front(), s.key_type, ctx);
      if (ctx.explain) p.reason = "INSERT key";
      return p;
    }
    p.kind = RouteKind::Split;
    std::vector<std::vector<int>> groups;
    for (auto& [shard, rows] : by_shard) {
      p.shards.push_back(shard);
      p.parts.push_back(ShardPart{shard, {}, rows});
      groups.push_back(rows);
    }
    auto sqls = split_insert_sql(s.info.text, groups, &error);
    if (!sqls) return refuse("0A000", "cannot split the multi-row INSERT: " + error);
    for (std::size_t i = 0; i < sqls->size(); ++i) p.parts[i].sql = (*sqls)[i];
    if (ctx.explain) p.reason = "INSERT rows split by key";
    return p;
  }

  if (s.updates_key)
    return refuse("0A000", "UPDATE of the sharding key of " + s.sharded_names.front() +
                               " could move rows between shards; delete and re-insert instead");

  // Keys of every group of co-located tables.
  std::set<int> targets;
  std::set<int> logicals;
  bool unconstrained = false;
  for (const auto& g : s.groups) {
    if (!g.constrained) {
      unconstrained = true;
      continue;
    }
    auto sh = shards_of(g, s.key_type, ctx, &error);
    if (!sh) return refuse("22P02", error);
    if (sh->server_error) return server_answers(s, *sh->server_error, ctx);
    if (sh->unconstrained) {
      unconstrained = true;
      continue;
    }
    targets.insert(sh->shards.begin(), sh->shards.end());
    logicals.insert(sh->logicals.begin(), sh->logicals.end());
  }
  if (!unconstrained) {
    if (targets.empty()) {  // e.g. tenant_id = 2147483648 on an integer key: no row can match
      p.kind = RouteKind::Any;
      if (ctx.explain) p.reason = "no key value can match a row";
      return p;
    }
    if (targets.size() == 1) {
      p.kind = RouteKind::Single;
      p.shards = {*targets.begin()};
      p.logical.assign(logicals.begin(), logicals.end());
      if (s.groups.size() == 1 && s.groups.front().values.size() == 1)
        note_tenant(p, s.groups.front().values.front(), s.key_type, ctx);
      if (ctx.explain) p.reason = "key of " + s.sharded_names.front();
      return p;
    }
    if (s.groups.size() > 1)
      return refuse("0A000", "tables " + join(s.sharded_names) + " are not joined on their sharding keys and "
                             "their tenants live on different shards");
  } else {
    if (s.groups.size() > 1)
      return refuse("0A000", "tables " + join(s.sharded_names) + " are not joined on their sharding keys; "
                             "add the tenant key of each, or join them on it");
    if (!ctx.schema.cross_shard_allowed())
      return refuse("0A000", "cross-shard query refused (cross_shard: deny): no tenant key for sharded table " +
                                 s.sharded_names.front());
    targets.clear();
    for (int i = 0; i < nshards; ++i) targets.insert(i);
  }
  p.shards.assign(targets.begin(), targets.end());
  if (s.info.writes) {
    p.kind = RouteKind::Broadcast;
    if (ctx.explain) p.reason = unconstrained ? "no tenant key: every shard" : "keys on several shards";
    return p;
  }
  if (s.info.locking)
    return refuse("0A000", "cross-shard SELECT ... FOR UPDATE/SHARE on " + s.sharded_names.front() + " is not supported");
  for (const std::string* what : {&s.needs_merge, &s.merge_refusal})
    if (!what->empty())
      return refuse("0A000", "cross-shard " + *what + " on sharded table " + s.sharded_names.front() +
                                 " is not supported yet; add a tenant key or a /* shardline: tenant=... */ hint");
  p.kind = RouteKind::Scatter;
  p.aggregates = s.aggregates;
  p.merge = s.merge;
  if (ctx.explain) p.reason = unconstrained ? "no tenant key: every shard" : "keys on several shards";
  return p;
}

/// Statements whose answer lives on one server: EXPLAIN (each shard has its own plan) and
/// cursors. A cursor lives on the server connection that ran its DECLARE and FETCH, MOVE and
/// CLOSE (no tables) follow the session's server, so the DECLARE must run on one shard, and a
/// WITH HOLD cursor must not outlive its transaction on a server that goes back to the pool.
Plan route_statement(const RouteTemplate& t, const TemplateStatement& s, const RouteContext& ctx) {
  if (s.info.declare_cursor && s.info.cursor_hold && !ctx.schema.session_pooling())
    return refuse("0A000", "DECLARE ... WITH HOLD is not supported with pool.mode: transaction: the cursor would "
                           "outlive its transaction on a server connection that goes back to the pool; declare "
                           "it without HOLD and use it inside the transaction, or use pool.mode: session");
  Plan p = route_query(t, s, ctx);
  const bool several = p.kind == RouteKind::Scatter || p.kind == RouteKind::Broadcast || p.kind == RouteKind::Split;
  if (s.info.kind == StatementKind::Explain && several)
    return refuse("0A000", "EXPLAIN of a statement on several shards is not supported: each shard has a plan of its "
                           "own; add a tenant key or a /* shardline: tenant=... */ hint");
  if (s.info.declare_cursor && p.kind != RouteKind::Single && p.kind != RouteKind::Any && p.kind != RouteKind::Refuse)
    return refuse("0A000", "DECLARE CURSOR over several shards is not supported" +
                               (s.sharded_names.empty() ? std::string() : " (sharded table " + s.sharded_names.front() + ")") +
                               "; add a tenant key or a /* shardline: tenant=... */ hint");
  return p;
}

}  // namespace

namespace {

Plan route_plan(const RouteTemplate& t, const RouteContext& ctx) {
  if (t.parse_error) {
    Plan p;  // PostgreSQL reports its own syntax error from the home shard
    p.kind = RouteKind::Single;
    p.shards = {ctx.schema.home_shard()};
    if (ctx.explain) p.reason = "syntax error";
    return p;
  }
  if (t.statements.size() == 1) return route_statement(t, t.statements.front(), ctx);
  std::vector<Plan> plans;
  for (const auto& s : t.statements) plans.push_back(route_statement(t, s, ctx));
  for (auto& p : plans)
    if (p.kind == RouteKind::Refuse) return p;
  std::vector<Plan*> routed;
  for (auto& p : plans)
    if (p.kind != RouteKind::Any) routed.push_back(&p);
  if (routed.empty()) {
    Plan p;
    p.writes = std::any_of(plans.begin(), plans.end(), [](const Plan& x) { return x.writes; });
    return p;
  }
  if (routed.size() == 1 && plans.size() == 1) return std::move(*routed.front());
  // Several statements: fine when they all go to the same single shard, or all broadcast.
  Plan first = *routed.front();
  for (auto* p : routed) {
    if (p->kind != first.kind || p->shards != first.shards || p->kind == RouteKind::Split ||
        (p->kind == RouteKind::Broadcast && (p->ddl != first.ddl || p->same_rows_everywhere != first.same_rows_everywhere)))
      return refuse("0A000", "the statements of this query string go to different shards; send them separately");
    first.writes = first.writes || p->writes;
  }
  // Tenant-confined only if every statement is confined; a statement without tables that
  // writes (a function call) may touch anything on the shard.
  std::set<int> logicals;
  bool confined = true;
  for (const auto& p : plans) {
    if (p.kind == RouteKind::Any) {
      if (p.writes) confined = false;
      continue;
    }
    if (p.logical.empty()) confined = false;
    logicals.insert(p.logical.begin(), p.logical.end());
  }
  first.logical.clear();
  if (confined) first.logical.assign(logicals.begin(), logicals.end());
  if (first.kind == RouteKind::Scatter && routed.size() != plans.size())
    return refuse("0A000", "a cross-shard read cannot share a query string with other statements");
  return first;
}

}  // namespace

Plan route(const RouteTemplate& t, const RouteContext& ctx) {
  Plan p = route_plan(t, ctx);
  p.epoch = ctx.directory.epoch();
  return p;
}

}  // namespace shardline::router
