#include "tests/integration/support/diff_corpus.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <set>

#include "tests/integration/support/diff_corpus_tables.hpp"
#include "tests/integration/support/diff_rng.hpp"

namespace shardline::testing {

namespace {

using namespace diff_corpus;

/// The SQL of one query under construction, in both protocols' forms.
class Builder {
 public:
  explicit Builder(bool use_params) : use_params_(use_params) {}
  Builder& operator<<(const std::string& sql) {
    simple_ += sql;
    extended_ += sql;
    return *this;
  }
  /// A value: `literal` inline, or $n bound to `text` in the extended form.
  void value(const std::string& literal, const std::string& text) {
    simple_ += literal;
    if (!use_params_) {
      extended_ += literal;
      return;
    }
    params_.push_back(text);
    extended_ += fmt::format("${}", params_.size());
  }
  void number(std::int64_t v) { value(std::to_string(v), std::to_string(v)); }
  bool uses_params() const { return use_params_ && !params_.empty(); }
  bool params_on() const { return use_params_; }
  void finish(DiffQuery& q) const {
    q.simple_sql = simple_;
    q.extended_sql = extended_;
    q.params = params_;
  }

 private:
  bool use_params_;
  std::string simple_, extended_;
  std::vector<std::string> params_;
};

/// One item of a select list.
struct Item {
  Expr expr;
  std::string alias;  ///< empty: the column keeps the name PostgreSQL gives it
};

class Generator {
 public:
  Generator(std::uint64_t seed, const DiffDataset& data) : r_(seed), data_(data) {}

  DiffQuery next() {
    q_ = DiffQuery{};
    const int k = int(r_.between(0, 99));
    const Table& t = pick_table();
    Builder b(r_.chance(75));
    if (k < 18) order_query(b, t, false);
    else if (k < 35) order_query(b, t, true);
    else if (k < 52) aggregate_query(b, t);
    else if (k < 74) group_query(b, t);
    else if (k < 85) distinct_query(b, t);
    else if (k < 89) scan_query(b, t);
    else optional_query(b);
    if (b.uses_params()) tag("param");
    b.finish(q_);
    std::sort(q_.features.begin(), q_.features.end());
    q_.features.erase(std::unique(q_.features.begin(), q_.features.end()), q_.features.end());
    return q_;
  }

 private:
  const Table& pick_table() {
    const int k = int(r_.between(0, 99));
    return tables()[k < 60 ? 0 : k < 80 ? 1 : 2];
  }
  void tag(const std::string& f) { q_.features.push_back(f); }
  std::string dir() {
    switch (r_.between(0, 2)) {
      case 1: tag("asc"); return " ASC";
      case 2: tag("desc"); return " DESC";
      default: return "";
    }
  }
  std::string nulls() {
    switch (r_.between(0, 3)) {
      case 1: tag("nulls_first"); return " NULLS FIRST";
      case 2: tag("nulls_last"); return " NULLS LAST";
      default: return "";
    }
  }
  std::string item_sql(const Item& i) const { return i.alias.empty() ? i.expr.sql : i.expr.sql + " AS " + i.alias; }

  /// 1..max distinct items, expressions aliased half of the time.
  std::vector<Item> select_items(const Table& t, int max, bool with_expressions) {
    std::vector<Expr> pool = t.columns;
    if (with_expressions) pool.insert(pool.end(), t.expressions.begin(), t.expressions.end());
    std::vector<Item> items;
    const int n = int(r_.between(1, max));
    std::set<std::string> used;
    for (int i = 0; i < n * 3 && int(items.size()) < n; ++i) {
      const Expr& e = r_.pick(pool);
      if (!used.insert(e.sql).second) continue;
      const bool is_column = std::any_of(t.columns.begin(), t.columns.end(), [&](const Expr& c) { return c.sql == e.sql; });
      if (!is_column) tag("expression");
      items.push_back({e, !is_column && r_.chance(50) ? fmt::format("e{}", items.size()) : ""});
    }
    return items;
  }

  void from_where(Builder& b, const Table& t) {
    b << " FROM " << t.name;
    if (t.text_key) tag("text_key");
    const bool predicate = r_.chance(35), in_list = r_.chance(25);
    if (!predicate && !in_list) return;
    b << " WHERE ";
    if (predicate) value_predicate(b, t);
    if (predicate && in_list) b << " AND ";
    if (in_list) key_in_list(b, t);
  }

  void value_predicate(Builder& b, const Table& t) {
    tag("where");
    const int k = int(r_.between(0, 5));
    if (t.name == "diff_a") {
      switch (k) {
        case 0: b << "i4 > "; b.number(r_.between(-500, 500)); return;
        case 1: b << "i2 = "; b.number(r_.between(-5, 5)); return;
        case 2: b << "n < "; b.value("0.5", "0.5"); return;
        case 3: b << "d >= "; b.value("'2025-12-01'", "2025-12-01"); return;
        case 4: b << "t >= "; b.value("'b'", "b"); return;
        default: b << (r_.chance(50) ? "b" : "i8 IS NOT NULL"); return;
      }
    }
    if (t.name == "diff_b") {
      if (k < 3) { b << "qty > "; b.number(r_.between(-30, 30)); }
      else if (k < 5) b << "grp IN (1, 2, 3)";
      else b << "flag";
      return;
    }
    if (k < 4) { b << "v > "; b.number(r_.between(-80, 80)); }
    else b << "s IS NOT NULL";
  }

  /// `key IN (...)` with keys of one or two of the three shards (and now and then a key no row
  /// has), so the scatter may target only those shards.
  void key_in_list(Builder& b, const Table& t) {
    tag("in_list");
    const std::size_t shards = data_.tenants_by_shard.size();
    const std::size_t skip = r_.index(shards);
    const bool two = r_.chance(50);
    std::vector<std::pair<std::string, std::string>> keys;  // literal, text
    for (std::size_t s = 0; s < shards; ++s) {
      if (s == skip || (!two && s != (skip + 1) % shards)) continue;
      const int n = int(r_.between(1, 3));
      for (int i = 0; i < n; ++i) {
        if (t.text_key) {
          const std::string& c = r_.pick(data_.codes_by_shard[s]);
          keys.emplace_back(sql_quote(c), c);
        } else {
          const std::string v = std::to_string(r_.chance(20) ? data_.skewed_tenant : r_.pick(data_.tenants_by_shard[s]));
          if (shard_of_skewed_ok(s, v)) keys.emplace_back(v, v);
        }
      }
    }
    if (!t.text_key && r_.chance(15)) keys.emplace_back("4242424242424", "4242424242424");
    if (keys.empty()) keys.emplace_back(std::to_string(data_.tenants_by_shard[(skip + 1) % shards].front()),
                                        std::to_string(data_.tenants_by_shard[(skip + 1) % shards].front()));
    b << (t.text_key ? "code" : "tenant_id") << " IN (";
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (i) b << ", ";
      b.value(keys[i].first, keys[i].second);
    }
    b << ")";
  }
  /// The skewed tenant is only listed for the shard it lives on.
  bool shard_of_skewed_ok(std::size_t s, const std::string& v) const {
    if (v != std::to_string(data_.skewed_tenant)) return true;
    const auto& on = data_.tenants_by_shard[s];
    return std::find(on.begin(), on.end(), data_.skewed_tenant) != on.end();
  }

  void limit_offset(Builder& b, bool force) {
    const bool limit = r_.chance(80) || !force, offset = r_.chance(45) || (force && !limit);
    if (!force && !r_.chance(30)) return;
    if (b.params_on()) tag("limit_param");
    if (limit) {
      tag("limit");
      b << " LIMIT ";
      b.number(r_.pick(std::vector<std::int64_t>{0, 1, 3, 5, 10, 37, 100, 1000}));
    }
    if (offset) {
      tag("offset");
      b << " OFFSET ";
      b.number(r_.pick(std::vector<std::int64_t>{0, 1, 3, 50, 500, 5000}));
    }
  }

  /// ORDER BY over visible items (by name, alias or ordinal) and hidden expressions; ends in the
  /// unique `id` when `total` or a hidden key would make runs of equal keys invisible.
  void order_query(Builder& b, const Table& t, bool with_limit) {
    tag("order_by");
    const std::vector<Item> items = select_items(t, 4, true);
    b << "SELECT ";
    for (std::size_t i = 0; i < items.size(); ++i) b << (i ? ", " : "") << item_sql(items[i]);
    from_where(b, t);
    b << " ORDER BY ";
    const int keys = int(r_.between(1, 3));
    if (keys > 1) tag("multi_key");
    bool hidden = false;
    std::vector<int> visible;
    for (int k = 0; k < keys; ++k) {
      if (k) b << ", ";
      if (r_.chance(60)) {
        const std::size_t i = r_.index(items.size());
        tag("sort_" + items[i].expr.type);
        if (r_.chance(25)) { tag("ordinal"); b << std::to_string(i + 1); }
        else b << (items[i].alias.empty() ? items[i].expr.sql : items[i].alias);
        visible.push_back(int(i));
      } else {
        const Expr& e = r_.chance(60) ? r_.pick(t.columns) : r_.pick(t.expressions);
        tag("sort_" + e.type);
        if (std::find(t.expressions.begin(), t.expressions.end(), e) != t.expressions.end()) tag("expression");
        b << e.sql;
        const auto same = std::find_if(items.begin(), items.end(), [&](const Item& i) { return i.expr == e; });
        if (same != items.end()) {  // PostgreSQL matches it to the select item
          visible.push_back(int(same - items.begin()));
        } else {
          hidden = true;
          tag("hidden_sort_key");
        }
      }
      b << dir() << nulls();
    }
    if (hidden || with_limit || r_.chance(50)) {
      b << ", id" << dir();
      q_.order = DiffOrder::Total;
    } else {
      q_.order = DiffOrder::Runs;
      q_.run_keys = visible;
    }
    if (with_limit) limit_offset(b, true);
  }

  std::string aggregate(const Table& t, std::string* type) {
    *type = "int";
    switch (r_.between(0, 7)) {
      case 0: tag("count"); return "count(*)";
      case 1: tag("count"); return fmt::format("count({})", r_.pick(t.columns).sql);
      case 2: case 3: {
        const std::string c = r_.pick(t.sums);
        tag("sum");
        *type = "numeric";
        return fmt::format("sum({})", c);
      }
      case 4: {
        tag("avg");
        *type = "numeric";
        return fmt::format("avg({})", r_.pick(t.sums));
      }
      case 5: case 6: {
        const bool mx = r_.chance(50);
        tag(mx ? "max" : "min");
        return fmt::format("{}({})", mx ? "max" : "min", r_.pick(t.minmax));
      }
      default: {
        const bool a = r_.chance(50);
        tag(a ? "bool_and" : "bool_or");
        *type = "bool";
        return fmt::format("{}({})", a ? "bool_and" : "bool_or", r_.pick(t.bools));
      }
    }
  }

  void aggregate_query(Builder& b, const Table& t) {
    tag("aggregate");
    b << "SELECT ";
    const int n = int(r_.between(1, 5));
    for (int i = 0; i < n; ++i) {
      std::string type;
      b << (i ? ", " : "") << aggregate(t, &type);
    }
    from_where(b, t);
    q_.order = DiffOrder::Total;
  }

  void having(Builder& b, const Table& t) {
    tag("having");
    b << " HAVING ";
    switch (r_.between(0, 3)) {
      case 0: b << "count(*) > "; b.number(r_.between(1, 40)); return;
      case 1: b << fmt::format("sum({}) > ", r_.pick(t.ints)); b.number(r_.between(-200, 200)); return;
      case 2: b << fmt::format("bool_or({})", r_.pick(t.bools)); return;
      default: b << fmt::format("avg({}) < ", r_.pick(t.ints)); b.value("2.5", "2.5"); return;
    }
  }

  void group_query(Builder& b, const Table& t) {
    tag("group_by");
    tag("aggregate");
    std::vector<Expr> keys;
    const int nkeys = int(r_.between(1, 2));
    for (int i = 0; i < nkeys * 3 && int(keys.size()) < nkeys; ++i) {
      const Expr& e = r_.pick(t.groupable);
      if (std::find(keys.begin(), keys.end(), e) == keys.end()) keys.push_back(e);
    }
    std::vector<int> key_column(keys.size(), -1);  // output column of each key, -1 if not selected
    std::vector<std::string> select;
    for (std::size_t i = 0; i < keys.size(); ++i)
      if (r_.chance(85)) {
        key_column[i] = int(select.size());
        select.push_back(keys[i].sql);
      }
    const int naggs = int(r_.between(1, 3));
    const int first_agg = int(select.size());
    for (int i = 0; i < naggs; ++i) {
      std::string type;
      select.push_back(aggregate(t, &type));
    }
    b << "SELECT ";
    for (std::size_t i = 0; i < select.size(); ++i) b << (i ? ", " : "") << select[i];
    from_where(b, t);
    b << " GROUP BY ";
    for (std::size_t i = 0; i < keys.size(); ++i) b << (i ? ", " : "") << keys[i].sql;
    if (r_.chance(40)) having(b, t);
    q_.order = DiffOrder::Unordered;
    if (!r_.chance(65)) return;
    tag("order_by");
    b << " ORDER BY ";
    const int mode = int(r_.between(0, 3));
    auto all_keys = [&](bool comma) {
      for (std::size_t i = 0; i < keys.size(); ++i) {
        b << (comma || i ? ", " : "") << keys[i].sql << dir() << nulls();
        if (key_column[i] < 0) tag("hidden_sort_key");
      }
      q_.order = DiffOrder::Total;
    };
    if (mode == 0) {
      all_keys(false);
    } else if (mode == 1) {  // a visible aggregate, then maybe the keys
      const int col = first_agg + int(r_.index(std::size_t(naggs)));
      b << std::to_string(col + 1) << dir() << nulls();
      tag("ordinal");
      if (r_.chance(60)) all_keys(true);
      else { q_.order = DiffOrder::Runs; q_.run_keys = {col}; }
    } else if (mode == 2) {  // an aggregate that is not selected
      std::string type;
      b << aggregate(t, &type) << dir() << nulls();
      tag("hidden_sort_key");
      all_keys(true);
    } else {  // the first key only
      b << keys[0].sql << dir() << nulls();
      if (keys.size() == 1) q_.order = DiffOrder::Total;
      else if (key_column[0] >= 0) { q_.order = DiffOrder::Runs; q_.run_keys = {key_column[0]}; }
      else { tag("hidden_sort_key"); all_keys(true); }
    }
    if (q_.order == DiffOrder::Total) limit_offset(b, false);
  }

  void distinct_query(Builder& b, const Table& t) {
    tag("distinct");
    std::vector<Expr> cols;
    const int n = int(r_.between(1, 3));
    for (int i = 0; i < n * 3 && int(cols.size()) < n; ++i) {
      const Expr& e = r_.pick(t.groupable);
      if (std::find(cols.begin(), cols.end(), e) == cols.end()) cols.push_back(e);
    }
    b << "SELECT DISTINCT ";
    for (std::size_t i = 0; i < cols.size(); ++i) b << (i ? ", " : "") << cols[i].sql;
    from_where(b, t);
    q_.order = DiffOrder::Unordered;
    if (!r_.chance(60)) return;
    tag("order_by");
    const std::size_t keys = r_.chance(70) ? cols.size() : 1;
    b << " ORDER BY ";
    for (std::size_t i = 0; i < keys; ++i) {
      tag("sort_" + cols[i].type);
      b << (i ? ", " : "") << cols[i].sql << dir() << nulls();
    }
    if (keys == cols.size()) {
      q_.order = DiffOrder::Total;
      limit_offset(b, false);
    } else {
      q_.order = DiffOrder::Runs;
      q_.run_keys = {0};
    }
  }

  void scan_query(Builder& b, const Table& t) {
    tag("scan");
    const std::vector<Item> items = select_items(t, 4, true);
    b << "SELECT ";
    for (std::size_t i = 0; i < items.size(); ++i) b << (i ? ", " : "") << item_sql(items[i]);
    from_where(b, t);
    q_.order = DiffOrder::Unordered;
  }

  /// Constructs one database answers but a proxy may refuse (0A000), each still determined.
  void optional_query(Builder& b) {
    q_.required = false;
    const Table& t = tables()[0];
    const std::string g = r_.pick(std::vector<std::string>{"i2", "b", "i4 % 5"});
    const std::string in = r_.pick(std::vector<std::string>{"i2", "i4", "t", "n"});
    q_.order = DiffOrder::Total;
    auto grouped = [&](const std::string& feature, const std::string& agg) {
      tag(feature);
      b << "SELECT " << g << ", " << agg;
      from_where(b, t);
      b << " GROUP BY " << g << " ORDER BY " << g;
    };
    auto plain = [&](const std::string& feature, const std::string& agg) {
      tag(feature);
      b << "SELECT " << agg;
      from_where(b, t);
    };
    switch (r_.between(0, 15)) {
      case 0: tag("window"); b << "SELECT id, i4, row_number() OVER (ORDER BY i4, id)"; from_where(b, t); b << " ORDER BY id"; return;
      case 1: tag("window"); b << "SELECT id, sum(i4) OVER (PARTITION BY tenant_id ORDER BY id)"; from_where(b, t); b << " ORDER BY id"; return;
      case 2: return r_.chance(50) ? grouped("count_distinct", "count(DISTINCT " + in + ")") : plain("count_distinct", "count(DISTINCT " + in + ")");
      case 3: return r_.chance(50) ? grouped("float_sum", "sum(f)") : plain("float_sum", "sum(f), avg(f)");
      case 4: return grouped("string_agg", "string_agg(t, ',' ORDER BY t, id)");
      case 5: return plain("array_agg", "array_agg(i2 ORDER BY id)");
      case 6: return plain("ordered_set", "percentile_cont(0.5) WITHIN GROUP (ORDER BY i4), percentile_disc(0.5) WITHIN GROUP (ORDER BY n)");
      case 7: return r_.chance(50) ? grouped("stddev", "stddev(i4), variance(n)") : plain("stddev", "stddev(i4), var_samp(i8)");
      case 8: return grouped("filter", "count(*) FILTER (WHERE b), sum(i4) FILTER (WHERE i2 > 0)");
      case 9: tag("distinct_on"); b << "SELECT DISTINCT ON (i2) i2, id, t"; from_where(b, t); b << " ORDER BY i2, id"; return;
      case 10: tag("join_on_key"); b << "SELECT a.id, b.qty FROM diff_a a JOIN diff_b b ON a.tenant_id = b.tenant_id AND a.id = b.id ORDER BY a.id"; return;
      case 11: tag("join_not_on_key"); b << "SELECT count(*), sum(b.qty) FROM diff_a a JOIN diff_b b ON a.id = b.id"; return;
      case 12: tag("subquery"); b << "SELECT count(*) FROM (SELECT DISTINCT " << g << " FROM diff_a) s"; return;
      case 13: tag("rollup"); b << "SELECT i2, count(*) FROM diff_a GROUP BY ROLLUP (i2) ORDER BY i2 NULLS FIRST, 2"; return;
      case 14: return plain("aggregate_arithmetic", "sum(i4) + 1, max(n) - min(n), count(*) * 2");
      default: tag("union"); b << "SELECT id FROM diff_a UNION ALL SELECT id FROM diff_b"; q_.order = DiffOrder::Unordered; return;
    }
  }

  DiffRng r_;
  const DiffDataset& data_;
  DiffQuery q_;
};

}  // namespace

std::vector<DiffQuery> generate_diff_corpus(std::uint64_t seed, const DiffDataset& data, int count) {
  Generator g(seed ^ 0x51a7d1ffc0ffeeull, data);
  std::vector<DiffQuery> out;
  std::set<std::string> seen;
  for (int attempts = 0; int(out.size()) < count && attempts < count * 20; ++attempts) {
    DiffQuery q = g.next();
    if (!seen.insert(q.simple_sql).second) continue;  // the same query twice proves nothing more
    q.index = int(out.size());
    out.push_back(std::move(q));
  }
  return out;
}

}  // namespace shardline::testing
