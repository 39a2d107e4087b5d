// The request a multi-shard extended-protocol unit becomes: every shard gets the same messages,
// with statements made unnamed (named ones may not exist on the servers taken for this request);
// Parses added here are not answered to the client. A scatter read runs each bound statement as
// its MergePlan's shard SQL (Parsed again, unnamed, before its Bind, with text results for the
// hidden columns), and every Execute is preceded by a Describe of its portal so the merge learns
// the column types even when the client did not ask for them.

#include <functional>
#include <unordered_map>
#include <utility>

#include "proxy/exec/scatter_executor.hpp"
#include "proxy/protocol/frame_reader.hpp"
#include "proxy/protocol/message_writer.hpp"
#include "proxy/session/client_session.hpp"

namespace shardline::proxy::session {

using protocol::Frame;

namespace {

/// A Bind message taken apart: what routing, the merge and the rewrite need.
struct BindParts {
  std::string_view portal, statement;
  std::string_view params;  ///< parameter formats and values, as sent
  std::vector<std::int16_t> result_formats;
  router::BindValues values;  ///< formats expanded to one per value
};

std::optional<BindParts> parse_bind(std::span<const char> body) {
  BindParts b;
  protocol::BodyReader r(body);
  auto portal = r.cstr();
  auto stmt = r.cstr();
  if (!portal || !stmt) return std::nullopt;
  b.portal = *portal;
  b.statement = *stmt;
  const char* params_begin = r.pos();
  std::vector<std::int16_t> fmts;
  const int nfmt = r.i16().value_or(0);
  for (int i = 0; i < nfmt; ++i) fmts.push_back(r.i16().value_or(0));
  const int nval = r.i16().value_or(0);
  for (int i = 0; i < nval && r.ok(); ++i) {
    auto len = r.i32();
    if (!len) return std::nullopt;
    if (*len < 0) b.values.values.push_back(std::nullopt);
    else b.values.values.push_back(r.bytes(std::size_t(*len)));
    b.values.formats.push_back(fmts.empty() ? 0 : fmts.size() == 1 ? fmts[0] : std::size_t(i) < fmts.size() ? fmts[std::size_t(i)] : 0);
  }
  b.params = std::string_view(params_begin, std::size_t(r.pos() - params_begin));
  const int nres = r.i16().value_or(0);
  for (int i = 0; i < nres; ++i) b.result_formats.push_back(r.i16().value_or(0));
  if (!r.ok()) return std::nullopt;
  return b;
}

/// Result formats for the shard SQL: the client's for its columns, text for the hidden ones;
/// nullopt when they cannot be known (all binary over a `*` select list with hidden columns,
/// whose width only the shard knows).
std::optional<std::vector<std::int16_t>> shard_result_formats(const std::vector<std::int16_t>& client,
                                                              const router::MergePlan& plan) {
  const int hidden = plan.star ? -plan.client_columns : exec::shard_column_count(plan) - plan.client_columns;
  if (client.empty() || (client.size() == 1 && client[0] == 0) || hidden <= 0) return client;
  if (plan.star && client.size() == 1) return std::nullopt;
  const int visible = client.size() == 1 ? plan.client_columns : int(client.size());
  std::vector<std::int16_t> out;
  for (int i = 0; i < visible; ++i) out.push_back(client.size() == 1 ? client[0] : client[std::size_t(i)]);
  out.insert(out.end(), std::size_t(hidden), 0);
  return out;
}

using Query = std::pair<std::string_view, std::string_view>;  ///< query text, parameter-type part of Parse

/// Rewrites one unit, message by message.
class UnitRewriter {
 public:
  using Lookup = std::function<std::optional<Query>(std::string_view)>;
  using Route = std::function<bool(Query, router::BindValues&, std::vector<int>&,
                                   std::shared_ptr<const router::MergePlan>&)>;
  UnitRewriter(std::vector<bool>& keep_parse, exec::ScatterRequest* scatter, std::string& why, Lookup session,
               Route route)
      : keep_parse_(keep_parse), scatter_(scatter), why_(why), session_(std::move(session)), route_(std::move(route)) {}

  /// False when the unit cannot run on several shards (`why` may say why).
  bool message(const Frame& g, std::string_view whole) {
    protocol::BodyReader r(g.body);
    const auto described = std::exchange(just_described_, std::nullopt);
    if (g.tag != 'B') flush_parse();
    switch (g.tag) {
      case 'P': return parse(r);
      case 'B': return bind(g);
      case 'E': return execute(r, whole, described);
      case 'D': case 'C': return describe_or_close(g.tag, r, whole);
      default: out.append(whole); return true;
    }
  }
  /// After the unit's last message: sends what was held back.
  void finish() { flush_parse(); }
  std::string out;

 private:
  /// What the shards' unnamed statement holds: the client's unnamed statement (as the client
  /// parsed it, or rewritten as its MergePlan's shard SQL), or another one put there here.
  enum class Unnamed { Client, ClientRewritten, Other };

  std::optional<Query> lookup(std::string_view name) const {
    if (name.empty() && unnamed_) return unnamed_;
    if (auto it = parsed_.find(name); !name.empty() && it != parsed_.end()) return it->second;
    return session_(name);
  }
  void put_parse(std::string_view sql, std::string_view types, bool client_asked, Unnamed now) {
    w_.begin('P').cstr("").cstr(sql).raw(types).end();
    keep_parse_.push_back(client_asked);
    shard_unnamed_ = now;
    shard_merge_.reset();
  }

  /// The client's Parse of the unnamed statement waits for the next message: when that is a
  /// Bind whose statement is rewritten for the merge, the shards parse only the rewritten SQL.
  void flush_parse() {
    if (!pending_parse_) return;
    put_parse(pending_parse_->first, pending_parse_->second, true, Unnamed::Client);
    pending_parse_.reset();
  }

  bool parse(protocol::BodyReader& r) {
    auto name = r.cstr();
    auto query = r.cstr();
    if (!name || !query) return false;
    const std::string_view types(r.pos(), r.remaining());
    if (name->empty()) {
      unnamed_ = Query(*query, types);
      pending_parse_ = unnamed_;
      return true;
    }
    parsed_[*name] = Query(*query, types);
    put_parse(*query, types, true, Unnamed::Other);
    return true;
  }

  bool bind(const Frame& g) {
    auto b = parse_bind(g.body);
    if (!b) return false;
    auto q = lookup(b->statement);
    if (!q) return false;
    std::shared_ptr<const router::MergePlan> merge;
    if (scatter_ && !route_(*q, b->values, shards_, merge)) {
      why_ = "a cross-shard read cannot share an extended-protocol batch (up to Sync) with statements that route "
             "elsewhere; send a Sync after it";
      return false;
    }
    const bool replaces_pending = pending_parse_ && b->statement.empty() && merge;
    if (!replaces_pending) flush_parse();
    pending_parse_.reset();
    if (merge) {
      // The client's own Parse, when it was held back, is answered by this one's ParseComplete.
      put_parse(merge->shard_sql, q->second, replaces_pending,
                b->statement.empty() ? Unnamed::ClientRewritten : Unnamed::Other);
      shard_merge_ = merge;
    } else if (!b->statement.empty() || shard_unnamed_ != Unnamed::Client) {
      put_parse(q->first, q->second, false, b->statement.empty() ? Unnamed::Client : Unnamed::Other);
    }
    const auto formats = merge ? shard_result_formats(b->result_formats, *merge)
                               : std::optional<std::vector<std::int16_t>>(b->result_formats);
    if (!formats) {
      why_ = "binary results of a cross-shard SELECT * that sorts or groups by columns it does not show are not "
             "supported; name the columns or ask for text results";
      return false;
    }
    w_.begin('B').cstr(b->portal).cstr("").raw(b->params).i16(std::int16_t(formats->size()));
    for (auto f : *formats) w_.i16(f);
    w_.end();
    if (scatter_) {
      exec::ScatterResult res;
      res.merge = merge;
      for (const auto& v : b->values.values) res.param_values.emplace_back(v ? std::optional<std::string>(*v) : std::nullopt);
      res.param_formats = b->values.formats;
      res.param_types = b->values.types;
      portals_[b->portal] = std::move(res);
    }
    return true;
  }

  /// The client's Describe of a portal, when it was the message just before: its portal name and
  /// its entry in the scatter's describes.
  using Described = std::optional<std::pair<std::string_view, std::size_t>>;

  bool execute(protocol::BodyReader& r, std::string_view whole, Described described) {
    auto portal = r.cstr();
    auto max_rows = r.i32();
    if (!portal || !max_rows) return false;
    if (scatter_) {
      if (*max_rows > 0) {
        why_ = "Execute with a row limit (fetch size) is not supported for a read on several shards; fetch the "
               "whole result, add a tenant key or use LIMIT";
        return false;
      }
      if (described && described->first == *portal) {  // its RowDescription starts the rows too
        scatter_->describes[described->second].role = exec::DescribeRole::ClientPortalForExecute;
      } else {
        w_.begin('D').byte('P').cstr(*portal).end();
        scatter_->describes.push_back({exec::DescribeRole::ForExecute, nullptr});
      }
      auto it = portals_.find(*portal);
      scatter_->results.push_back(it != portals_.end() ? it->second : exec::ScatterResult{});
    }
    out.append(whole);
    return true;
  }

  bool describe_or_close(char tag, protocol::BodyReader& r, std::string_view whole) {
    auto kind = r.byte();
    auto name = r.cstr();
    if (!kind || !name) return false;
    if (*kind != 'S') {
      if (scatter_ && tag == 'D') {
        auto it = portals_.find(*name);
        just_described_.emplace(*name, scatter_->describes.size());
        scatter_->describes.push_back({exec::DescribeRole::ClientPortal, it != portals_.end() ? it->second.merge : nullptr});
      }
      out.append(whole);
      return true;
    }
    if (tag == 'D') {
      if (!name->empty() || shard_unnamed_ == Unnamed::Other) {
        auto q = lookup(*name);
        if (!q) return false;
        put_parse(q->first, q->second, false, name->empty() ? Unnamed::Client : Unnamed::Other);
      }
      if (scatter_)
        scatter_->describes.push_back(
            {exec::DescribeRole::ClientStatement, shard_unnamed_ == Unnamed::ClientRewritten ? shard_merge_ : nullptr});
    } else {
      shard_unnamed_ = Unnamed::Other;  // closed on the shards
      shard_merge_.reset();
    }
    w_.begin(tag).byte('S').cstr("").end();
    return true;
  }

  std::vector<bool>& keep_parse_;
  exec::ScatterRequest* scatter_;
  std::string& why_;
  Lookup session_;
  Route route_;
  protocol::MessageWriter w_{out};
  std::unordered_map<std::string_view, Query> parsed_;
  std::optional<Query> unnamed_;
  std::optional<Query> pending_parse_;  ///< the client's Parse of the unnamed statement, not sent yet
  Described just_described_;
  Unnamed shard_unnamed_ = Unnamed::Other;  // the servers were just taken
  std::shared_ptr<const router::MergePlan> shard_merge_;  ///< ClientRewritten: its plan
  std::unordered_map<std::string_view, exec::ScatterResult> portals_;
  std::vector<int> shards_;  ///< where the unit's first Bind reads
};

}  // namespace

std::optional<std::string> ClientSession::multi_shard_unit(std::span<const char> unit, std::vector<bool>& keep_parse,
                                                           exec::ScatterRequest* scatter, std::string& why) {
  auto session_lookup = [this](std::string_view name) -> std::optional<Query> {
    if (name.empty()) return has_unnamed_ ? std::optional<Query>(Query(unnamed_query_, unnamed_types_)) : std::nullopt;
    if (auto it = statements_.find(std::string(name)); it != statements_.end())
      return Query(it->second->query, it->second->param_types);
    return std::nullopt;
  };
  auto route = [this](Query q, router::BindValues& bind, std::vector<int>& shards,
                      std::shared_ptr<const router::MergePlan>& merge) { return scatter_bind(q, bind, shards, merge); };
  UnitRewriter rw(keep_parse, scatter, why, session_lookup, route);
  for (std::size_t pos = 0;;) {
    Frame g;
    if (protocol::decode_frame(unit.subspan(pos), g) != protocol::DecodeStatus::Ok) break;
    if (!rw.message(g, std::string_view(unit.data() + pos, g.total_size))) return std::nullopt;
    pos += g.total_size;
    if (g.tag == 'S') break;
  }
  rw.finish();
  if (scatter) scatter->keep_parse = keep_parse;
  return std::move(rw.out);
}

bool ClientSession::scatter_bind(std::pair<std::string_view, std::string_view> query, router::BindValues& bind,
                                 std::vector<int>& shards, std::shared_ptr<const router::MergePlan>& merge) {
  // The types the client declared decide how the values are read (as in route_unit).
  bind.types.clear();
  protocol::BodyReader tr(query.second);
  const int ntypes = tr.i16().value_or(0);
  for (std::size_t i = 0; i < bind.values.size(); ++i)
    bind.types.push_back(int(i) < ntypes ? std::uint32_t(tr.i32().value_or(0)) : 0);
  auto tmpl = services_.templates.get(query.first, *services_.schema);
  router::RouteContext ctx{*services_.directory, *services_.schema, tenant_, &bind};
  router::Plan p = router::route(*tmpl, ctx);
  if (!exec::streams_as_scatter(p) || (!shards.empty() && p.shards != shards)) return false;
  shards = p.shards;
  merge = p.merge;
  return true;
}

}  // namespace shardline::proxy::session
