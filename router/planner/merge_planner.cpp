// The merge planner: a tenant-less top-level SELECT -> the SQL each shard runs plus the
// operators that merge the shards' rows. A little over our usual ~500 lines: the Planner's row
// and aggregate paths share its state (hidden columns, sort keys), kept in one class.

#include "router/planner/merge_planner.hpp"

#include <algorithm>
#include <climits>
#include <optional>
#include <vector>

#include "router/planner/aggregate_call.hpp"
#include "router/planner/column_name.hpp"
#include "router/planner/expression_traits.hpp"
#include "router/planner/having_predicate.hpp"
#include "router/planner/limit_rewrite.hpp"
#include "router/planner/tree_builder.hpp"

namespace shardline::router {

namespace {

using Node = PgQuery__Node;

/// One column of the shard rows: a client column (a target), or a hidden one the merge needs.
struct Col {
  PgQuery__Node* target = nullptr;  ///< the ResTarget the shard selects
  const Node* expr = nullptr;       ///< the client's expression; null for a `*`
  std::string name;                 ///< output name (client columns)
  bool aggregate = false;
  AggregateFn fn = AggregateFn::Count;
  std::string agg_text;  ///< the client's aggregate call as text (avg(x), not the sum(x) shards run)
  int count_col = -1;    ///< Avg: index in tail_ of the shards' count(x)
  bool group_key = false;
};

/// Where a sort/group/distinct item points: a column entry, or (with a `*` before it) only an
/// output position.
struct Ref {
  int entry = -1;
  int ordinal = 0;  ///< 1-based output position when entry < 0
};

class Planner {
 public:
  Planner(const PgQuery__SelectStmt& s, std::int32_t version) : s_(s), b_(version) {}

  MergePlanning run() {
    MergePlanning out;
    if (!plan()) {
      out.refusal = refusal_.empty() ? "this query" : refusal_;
      return out;
    }
    out.plan = std::make_shared<const MergePlan>(std::move(plan_));
    return out;
  }

 private:
  bool refuse(std::string why) {
    if (refusal_.empty()) refusal_ = std::move(why);
    return false;
  }

  // ---- columns --------------------------------------------------------------------------------

  int first_star() const {
    for (std::size_t j = 0; j < cols_.size(); ++j)
      if (!cols_[j].expr) return int(j);
    return INT_MAX;
  }
  int last_star() const {
    for (std::size_t j = cols_.size(); j-- > 0;)
      if (!cols_[j].expr) return int(j);
    return -1;
  }
  /// The shard-row column of entry `j` (tail_ entries follow cols_), counted from the end when
  /// a `*` precedes it; nullopt between two `*`s, where neither end gives its position.
  std::optional<int> number(int j) const {
    if (j < first_star()) return j;
    if (j > last_star()) return j - int(cols_.size() + tail_.size());
    return std::nullopt;
  }
  int number_of(const Ref& r) const { return r.entry >= 0 ? *number(r.entry) : r.ordinal - 1; }

  int add_hidden(const Node* expr) {
    Col c;
    c.expr = expr;
    c.target = b_.res_target(const_cast<Node*>(expr), "");
    cols_.push_back(std::move(c));
    return int(cols_.size()) - 1;
  }

  /// Makes `c` (already holding `call`) the partial of aggregate `use`: avg runs as sum plus a
  /// hidden count on the shards.
  void make_aggregate(Col& c, const AggregateUse& use, const Node* call, const std::string& alias) {
    c.aggregate = true;
    c.fn = use.fn;
    c.agg_text = b_.text(call);
    if (use.fn != AggregateFn::Avg) {
      c.target = b_.res_target(const_cast<Node*>(call), alias);
      return;
    }
    c.target = b_.res_target(b_.renamed_call(*use.call, "sum"), alias);
    Col count;
    count.expr = call;
    count.target = b_.res_target(b_.renamed_call(*use.call, "count"), "");
    tail_.push_back(std::move(count));
    c.count_col = int(tail_.size()) - 1;
  }

  /// The column of aggregate call `n` (a target computing it, else a new hidden column).
  std::optional<int> aggregate_column(const Node* n, const AggregateUse& use) {
    const std::string& t = b_.text(n);
    for (std::size_t j = 0; j < cols_.size(); ++j)
      if (cols_[j].aggregate && cols_[j].agg_text == t) return int(j);
    Col c;
    c.expr = n;
    make_aggregate(c, use, n, "");
    cols_.push_back(std::move(c));
    return int(cols_.size()) - 1;
  }

  bool targets() {
    for (std::size_t i = 0; i < s_.n_target_list; ++i) {
      const Node* t = s_.target_list[i];
      if (!t || t->node_case != PG_QUERY__NODE__NODE_RES_TARGET) return refuse("this select list");
      const auto* rt = t->res_target;
      Col c;
      c.target = const_cast<Node*>(t);
      if (is_star(rt->val)) {
        star_ = true;
        cols_.push_back(std::move(c));
        continue;
      }
      c.expr = rt->val;
      c.name = rt->name && *rt->name ? rt->name : figure_colname(rt->val);
      AggregateUse use = classify_aggregate(rt->val);
      if (use.kind == AggregateUse::Kind::Refused)
        return refuse(use.refusal);
      if (use.kind == AggregateUse::Kind::Call) {
        aggregating_ = true;
        make_aggregate(c, use, rt->val, c.name);
        // Only avg's rewrite needs the name spelled out; the others run as written.
        if (use.fn != AggregateFn::Avg) c.target = const_cast<Node*>(t);
      }
      cols_.push_back(std::move(c));
    }
    visible_ = int(cols_.size());
    return true;
  }

  // ---- resolving ORDER BY / GROUP BY / DISTINCT ON items ----------------------------------------

  enum class Clause { OrderBy, GroupBy, DistinctOn };

  /// PostgreSQL's findTargetlistEntrySQL92, then SQL99: an output position, an output name
  /// (for GROUP BY only when it cannot also be an input column), an equal expression; else a
  /// hidden column when `hidden` allows it.
  std::optional<Ref> resolve(const Node* n, Clause clause, bool hidden) {
    auto r = resolve_item(n, clause, hidden);
    // A collation of the expression's own decides the shards' order and equality; the merge
    // compares with the database's.
    if (r && r->entry >= 0 && cols_[std::size_t(r->entry)].expr && has_collate(cols_[std::size_t(r->entry)].expr))
      return refuse("COLLATE in a merged column"), std::nullopt;
    return r;
  }

  std::optional<Ref> resolve_item(const Node* n, Clause clause, bool hidden) {
    const char* what = clause == Clause::GroupBy ? "GROUP BY" : clause == Clause::OrderBy ? "ORDER BY" : "DISTINCT ON";
    if (has_collate(n)) return refuse(std::string(what) + " ... COLLATE"), std::nullopt;
    if (n->node_case == PG_QUERY__NODE__NODE_PARAM_REF)
      return refuse(std::string(what) + " $n (a parameter where a column position would be a constant)"), std::nullopt;
    if (n->node_case == PG_QUERY__NODE__NODE_A_CONST && n->a_const->val_case == PG_QUERY__A__CONST__VAL_IVAL) {
      const int k = n->a_const->ival ? n->a_const->ival->ival : 0;
      if (k < 1 || (!star_ && k > visible_)) return refuse(std::string(what) + " position out of range"), std::nullopt;
      if (k - 1 < first_star()) return Ref{k - 1, 0};
      return Ref{-1, k};
    }
    if (n->node_case == PG_QUERY__NODE__NODE_COLUMN_REF && n->column_ref->n_fields == 1 &&
        n->column_ref->fields[0]->node_case == PG_QUERY__NODE__NODE_STRING) {
      const std::string name = n->column_ref->fields[0]->string->sval;
      std::optional<int> found;
      for (int j = 0; j < visible_; ++j) {
        const Col& c = cols_[std::size_t(j)];
        if (!c.expr || c.name != name) continue;
        if (clause == Clause::GroupBy) {
          // GROUP BY prefers an input column of that name, which the router cannot see.
          if (b_.text(c.expr) != b_.text(n))
            return refuse("GROUP BY " + name + " (both an output column name and possibly an input column: group by "
                          "the expression or its position)"),
                   std::nullopt;
          continue;
        }
        if (found && b_.text(cols_[std::size_t(*found)].expr) != b_.text(c.expr))
          return refuse(std::string(what) + " " + name + " (ambiguous output name)"), std::nullopt;
        if (!found) found = j;
      }
      if (found && number(*found)) return Ref{*found, 0};
      // Between two `*`s neither end gives its position: the same expression again, hidden.
      if (found && hidden) return Ref{add_hidden(cols_[std::size_t(*found)].expr), 0};
    }
    const std::string& t = b_.text(n);
    // Without `hidden` (SELECT DISTINCT) only a client column will do.
    for (std::size_t j = 0; j < (hidden ? cols_.size() : std::size_t(visible_)); ++j) {
      const Col& c = cols_[j];
      if (c.expr && number(int(j)) && b_.text(c.expr) == t) return Ref{int(j), 0};
    }
    if (!hidden) return std::nullopt;
    AggregateUse use = classify_aggregate(n);
    if (use.kind == AggregateUse::Kind::Refused)
      return refuse(use.refusal), std::nullopt;
    if (use.kind == AggregateUse::Kind::Call) {
      if (clause != Clause::OrderBy) return refuse(std::string("aggregates in ") + what), std::nullopt;
      aggregating_ = true;
      return Ref{*aggregate_column(n, use), 0};
    }
    return Ref{add_hidden(n), 0};
  }

  /// ORDER BY items as columns with resolved directions.
  bool order_by(bool hidden) {
    for (std::size_t i = 0; i < s_.n_sort_clause; ++i) {
      const Node* item = s_.sort_clause[i];
      if (!item || item->node_case != PG_QUERY__NODE__NODE_SORT_BY) return refuse("this ORDER BY");
      const auto* sb = item->sort_by;
      if (sb->sortby_dir == PG_QUERY__SORT_BY_DIR__SORTBY_USING) return refuse("ORDER BY ... USING");
      auto r = resolve(sb->node, Clause::OrderBy, hidden);
      if (!r) return refuse("SELECT DISTINCT with ORDER BY expressions that are not in the select list");
      const bool desc = sb->sortby_dir == PG_QUERY__SORT_BY_DIR__SORTBY_DESC;
      bool nulls_first = desc;
      if (sb->sortby_nulls == PG_QUERY__SORT_BY_NULLS__SORTBY_NULLS_FIRST) nulls_first = true;
      if (sb->sortby_nulls == PG_QUERY__SORT_BY_NULLS__SORTBY_NULLS_LAST) nulls_first = false;
      order_.push_back({*r, desc, nulls_first});
    }
    return true;
  }

  struct OrderItem {
    Ref ref;
    bool desc = false, nulls_first = false;
  };

  SortKey key(const OrderItem& o) const { return SortKey{number_of(o.ref), o.desc, o.nulls_first}; }

  // ---- LIMIT / OFFSET -------------------------------------------------------------------------

  bool limits() {
    if (s_.limit_option == PG_QUERY__LIMIT_OPTION__LIMIT_OPTION_WITH_TIES) return refuse("FETCH FIRST ... WITH TIES");
    auto c = plan_value(s_.limit_count);
    auto o = plan_value(s_.limit_offset);
    if (!c || !o) return refuse("LIMIT/OFFSET expressions other than constants and parameters");
    count_ = *c;
    offset_ = *o;
    return true;
  }
  bool has_limit() const { return count_.kind != PlanValue::Kind::None || offset_.kind != PlanValue::Kind::None; }

  void shard_limit(PgQuery__SelectStmt& q, bool pushed) {
    rewrite_limit(b_, s_, count_, offset_, pushed, q);
  }

  // ---- the plan -------------------------------------------------------------------------------

  bool plan();
  bool plan_aggregate(PgQuery__SelectStmt& q);
  bool plan_rows(PgQuery__SelectStmt& q);
  void add(MergeOperator op) { plan_.operators.push_back(std::move(op)); }
  void add_limit() {
    if (!has_limit()) return;
    MergeOperator op;
    op.kind = MergeOperator::Kind::Limit;
    op.count = count_;
    op.offset = offset_;
    add(std::move(op));
  }
  void add_project(int columns) {
    if (columns <= visible_) return;
    MergeOperator op;
    op.kind = MergeOperator::Kind::Project;
    op.visible = star_ ? visible_ - columns : visible_;
    add(std::move(op));
  }

  const PgQuery__SelectStmt& s_;
  TreeBuilder b_;
  std::vector<Col> cols_;  ///< client columns, then hidden ones
  std::vector<Col> tail_;  ///< avg's counts, after every other column
  std::vector<OrderItem> order_;
  std::vector<PgQuery__Node*> shard_targets_, shard_sort_;
  PlanValue count_, offset_;
  bool star_ = false;
  bool aggregating_ = false;
  int visible_ = 0;
  std::string refusal_;
  MergePlan plan_;
};

bool Planner::plan() {
  for (std::size_t i = 0; i < s_.n_group_clause; ++i)
    if (s_.group_clause[i] && s_.group_clause[i]->node_case == PG_QUERY__NODE__NODE_GROUPING_SET)
      return refuse("GROUPING SETS/ROLLUP/CUBE");
  if (!targets() || !limits()) return false;
  aggregating_ = aggregating_ || s_.n_group_clause > 0 || s_.having_clause;
  for (std::size_t i = 0; i < s_.n_sort_clause && !aggregating_; ++i) {
    const Node* item = s_.sort_clause[i];
    if (item && item->node_case == PG_QUERY__NODE__NODE_SORT_BY && has_aggregate_or_window(item->sort_by->node)) {
      AggregateUse use = classify_aggregate(item->sort_by->node);
      if (use.kind == AggregateUse::Kind::Refused) return refuse(use.refusal);
      aggregating_ = true;
    }
  }
  PgQuery__SelectStmt q = s_;
  if (!(aggregating_ ? plan_aggregate(q) : plan_rows(q))) return false;
  for (std::size_t j = 0; j < cols_.size(); ++j)  // every column is compared or combined
    if (aggregating_ && has_collate(cols_[j].expr)) return refuse("COLLATE in a merged column");
  for (const auto& c : cols_) shard_targets_.push_back(c.target);
  for (const auto& c : tail_) shard_targets_.push_back(c.target);
  q.n_target_list = shard_targets_.size();
  q.target_list = shard_targets_.data();
  q.n_sort_clause = shard_sort_.size();
  q.sort_clause = shard_sort_.empty() ? nullptr : shard_sort_.data();
  std::string error;
  auto sql = b_.deparse(q, &error);
  if (!sql) return refuse("this query (the shard statement cannot be written: " + error + ")");
  plan_.shard_sql = std::move(*sql);
  plan_.client_columns = star_ ? visible_ - int(cols_.size()) : visible_;
  plan_.star = star_;
  return true;
}

bool Planner::plan_rows(PgQuery__SelectStmt& q) {
  const bool distinct = s_.n_distinct_clause > 0;
  const bool distinct_on = distinct && s_.distinct_clause[0] && s_.distinct_clause[0]->node_case != PG_QUERY__NODE__NODE__NOT_SET;
  if (distinct && !distinct_on && star_) return refuse("SELECT DISTINCT * (name the columns)");
  if (!order_by(/*hidden=*/!distinct || distinct_on)) return false;
  shard_sort_.assign(s_.sort_clause, s_.sort_clause + s_.n_sort_clause);
  std::vector<Ref> on_refs;
  for (std::size_t i = 0; distinct_on && i < s_.n_distinct_clause; ++i) {
    auto r = resolve(s_.distinct_clause[i], Clause::DistinctOn, true);
    if (!r) return false;
    on_refs.push_back(*r);
  }
  // Numbers only now: with a `*`, hidden columns count from the end, so every one must exist.
  std::vector<SortKey> keys;
  for (const auto& o : order_) keys.push_back(key(o));
  MergeOperator dist;
  dist.kind = MergeOperator::Kind::Distinct;
  if (distinct_on) {
    std::vector<int> on;
    for (const auto& r : on_refs) on.push_back(number_of(r));
    // PostgreSQL requires the ORDER BY to start with the DISTINCT ON expressions (any order).
    std::vector<int> lead;
    for (std::size_t i = 0; i < on.size() && i < keys.size(); ++i) lead.push_back(keys[i].column);
    std::vector<int> a = on, b = lead;
    std::sort(a.begin(), a.end());
    a.erase(std::unique(a.begin(), a.end()), a.end());
    std::sort(b.begin(), b.end());
    b.erase(std::unique(b.begin(), b.end()), b.end());
    if (keys.empty() || a != b) return refuse("DISTINCT ON without an ORDER BY that starts with its expressions");
    for (const auto& r : on_refs)
      if (r.entry >= 0 && per_server_value(cols_[std::size_t(r.entry)].expr))
        return refuse("DISTINCT ON a value each shard computes differently (now(), random()...)");
    for (int c : a) dist.keys.push_back(SortKey{c, false, false});
  } else if (distinct) {
    for (int j = 0; j < visible_; ++j) {
      if (has_collate(cols_[std::size_t(j)].expr)) return refuse("COLLATE in a merged column");
      if (per_server_value(cols_[std::size_t(j)].expr))
        return refuse("DISTINCT of a value each shard computes differently (now(), random()...)");
      dist.keys.push_back(SortKey{j, false, false});
      bool ordered = false;
      for (const auto& k : keys) ordered = ordered || k.column == j;
      if (ordered) continue;
      keys.push_back(SortKey{j, false, false});
      shard_sort_.push_back(b_.sort_by_ordinal(j + 1, false, false));
    }
  }
  MergeOperator leaf;
  leaf.kind = keys.empty() ? MergeOperator::Kind::Concat : MergeOperator::Kind::MergeSort;
  leaf.keys = keys;
  add(std::move(leaf));
  if (distinct) add(std::move(dist));
  add_limit();
  add_project(int(cols_.size()));
  shard_limit(q, /*pushed=*/true);
  return true;
}

bool Planner::plan_aggregate(PgQuery__SelectStmt& q) {
  if (star_) return refuse("SELECT * with GROUP BY or aggregates");
  const bool distinct = s_.n_distinct_clause > 0;
  if (distinct && s_.distinct_clause[0] && s_.distinct_clause[0]->node_case != PG_QUERY__NODE__NODE__NOT_SET)
    return refuse("DISTINCT ON with GROUP BY or aggregates");
  std::vector<int> groups;  // entries, in GROUP BY order, distinct
  for (std::size_t i = 0; i < s_.n_group_clause; ++i) {
    auto r = resolve(s_.group_clause[i], Clause::GroupBy, true);
    if (!r) return false;
    Col& c = cols_[std::size_t(r->entry)];
    if (c.aggregate) return refuse("aggregates in GROUP BY");
    if (per_server_value(c.expr)) return refuse("GROUP BY a value each shard computes differently (now(), random()...)");
    c.group_key = true;
    if (std::find(groups.begin(), groups.end(), r->entry) == groups.end()) groups.push_back(r->entry);
  }
  // SELECT DISTINCT: the ORDER BY must name output columns, as PostgreSQL requires.
  if (!order_by(/*hidden=*/!distinct)) return false;
  std::optional<Predicate> having;
  if (s_.having_clause) {
    std::string why;
    having = having_predicate(
        s_.having_clause,
        [&](const Node* n) -> std::optional<int> {
          if (!n) return std::nullopt;
          AggregateUse use = classify_aggregate(n);
          if (use.kind == AggregateUse::Kind::Call) return aggregate_column(n, use);
          if (use.kind == AggregateUse::Kind::Refused) {
            why = use.refusal;
            return std::nullopt;
          }
          const std::string& t = b_.text(n);
          for (int g : groups)
            if (b_.text(cols_[std::size_t(g)].expr) == t) return g;
          return std::nullopt;
        },
        why);
    if (!having) return refuse(why);
    q.having_clause = b_.or_true(s_.having_clause);
  }
  for (std::size_t j = 0; j < cols_.size(); ++j) {
    const Col& c = cols_[j];
    // A column computed from the group keys is one value per group on every shard, unless the
    // shards compute it differently.
    if (!c.aggregate && !c.group_key && (per_server_value(c.expr) || has_sublink(c.expr)))
      return refuse("output expressions that are neither aggregates nor GROUP BY keys and may differ between shards");
  }
  // Groups arrive sorted: by the query's ORDER BY when it names only group keys (then no Sort
  // is needed after the merge), else by the group keys in GROUP BY order.
  bool by_groups = !groups.empty();
  for (const auto& o : order_) by_groups = by_groups && o.ref.entry >= 0 && cols_[std::size_t(o.ref.entry)].group_key;
  std::vector<SortKey> shard_keys;
  if (by_groups)
    for (const auto& o : order_) shard_keys.push_back(key(o));
  for (int g : groups) {
    bool present = false;
    for (const auto& k : shard_keys) present = present || k.column == g;
    if (!present) shard_keys.push_back(SortKey{g, false, false});
  }
  for (const auto& k : shard_keys) shard_sort_.push_back(b_.sort_by_ordinal(k.column + 1, k.descending, k.nulls_first));
  MergeOperator leaf;
  leaf.kind = groups.empty() ? MergeOperator::Kind::Concat : MergeOperator::Kind::MergeSort;
  leaf.keys = shard_keys;
  add(std::move(leaf));
  MergeOperator agg;
  agg.kind = MergeOperator::Kind::FinalAggregate;
  const int tail_base = int(cols_.size());
  for (std::size_t j = 0; j < cols_.size(); ++j) {
    const Col& c = cols_[j];
    AggregateColumn a;
    a.input = int(j);
    a.group_key = !c.aggregate;
    a.fn = c.fn;
    if (c.aggregate && c.fn == AggregateFn::Avg) a.count_input = tail_base + c.count_col;
    agg.aggregates.push_back(a);
  }
  add(std::move(agg));
  if (having) {
    MergeOperator h;
    h.kind = MergeOperator::Kind::Having;
    h.predicate = std::move(*having);
    add(std::move(h));
  }
  if (distinct) {
    // Equal rows of different groups are adjacent only once sorted by every client column; the
    // shards' partial rows are one per group already, so they run without DISTINCT.
    q.n_distinct_clause = 0;
    q.distinct_clause = nullptr;
    MergeOperator sort, dist;
    sort.kind = MergeOperator::Kind::Sort;
    dist.kind = MergeOperator::Kind::Distinct;
    for (const auto& o : order_) sort.keys.push_back(key(o));
    for (int j = 0; j < visible_; ++j) {
      if (per_server_value(cols_[std::size_t(j)].expr))
        return refuse("DISTINCT of a value each shard computes differently (now(), random()...)");
      dist.keys.push_back(SortKey{j, false, false});
      if (std::none_of(sort.keys.begin(), sort.keys.end(), [&](const SortKey& k) { return k.column == j; }))
        sort.keys.push_back(SortKey{j, false, false});
    }
    if (!groups.empty()) add(std::move(sort));
    add(std::move(dist));
  } else if (!order_.empty() && !by_groups && !groups.empty()) {
    MergeOperator sort;
    sort.kind = MergeOperator::Kind::Sort;
    for (const auto& o : order_) sort.keys.push_back(key(o));
    add(std::move(sort));
  }
  add_limit();
  add_project(int(cols_.size()));
  shard_limit(q, /*pushed=*/false);
  q.limit_option = s_.limit_option == PG_QUERY__LIMIT_OPTION__LIMIT_OPTION_COUNT && !q.limit_count
                       ? PG_QUERY__LIMIT_OPTION__LIMIT_OPTION_DEFAULT
                       : q.limit_option;
  return true;
}

}  // namespace

bool needs_merge(const PgQuery__SelectStmt& s) {
  if (s.n_sort_clause || s.limit_count || s.limit_offset || s.n_group_clause || s.having_clause || s.n_distinct_clause)
    return true;
  for (std::size_t i = 0; i < s.n_target_list; ++i) {
    const Node* t = s.target_list[i];
    if (t && t->node_case == PG_QUERY__NODE__NODE_RES_TARGET && has_aggregate_or_window(t->res_target->val)) return true;
  }
  return false;
}

MergePlanning plan_merge(const PgQuery__SelectStmt& s, std::int32_t version) { return Planner(s, version).run(); }

}  // namespace shardline::router
