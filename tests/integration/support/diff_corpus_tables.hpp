#pragma once
// What the differential corpus generator (diff_corpus.cpp) knows of the tables of diff_data.hpp:
// per table the columns and expressions it may select and sort by, the keys it may group by,
// and the columns each aggregate applies to. Expressions never yield -0 or overflow, so equal
// sort keys always print alike.

#include <string>
#include <vector>

namespace shardline::testing::diff_corpus {

/// A column or expression of a table with the type tag its features are counted under.
struct Expr {
  std::string sql;
  std::string type;  ///< int, numeric, float, bool, text, timestamptz, date
};

inline bool operator==(const Expr& a, const Expr& b) { return a.sql == b.sql; }

struct Table {
  std::string name;
  bool text_key = false;
  std::vector<Expr> columns;      ///< selectable and sortable
  std::vector<Expr> expressions;  ///< sortable expressions (never -0, never an overflow)
  std::vector<Expr> groupable;    ///< GROUP BY / DISTINCT keys
  std::vector<std::string> sums;  ///< integer and numeric columns (sum/avg)
  std::vector<std::string> minmax;
  std::vector<std::string> bools;
  std::vector<std::string> ints;  ///< for HAVING sum(x) > $n
};

inline const std::vector<Table>& tables() {
  static const std::vector<Table> t = {
      {"diff_a", false,
       {{"tenant_id", "int"}, {"id", "int"}, {"i2", "int"}, {"i4", "int"}, {"i8", "int"}, {"n", "numeric"},
        {"f", "float"}, {"b", "bool"}, {"t", "text"}, {"ts", "timestamptz"}, {"d", "date"}},
       {{"i4 % 7", "int"}, {"abs(i4 % 100)", "int"}, {"lower(t)", "text"}, {"length(t)", "int"},
        {"coalesce(i2, 0)", "int"}, {"i4 / 2 + i2", "int"}, {"n * 2", "numeric"}, {"d + 1", "date"},
        {"upper(t)", "text"}, {"f * 2", "float"}},
       {{"i2", "int"}, {"b", "bool"}, {"t", "text"}, {"d", "date"}, {"i4 % 5", "int"}, {"tenant_id", "int"},
        {"length(t)", "int"}, {"ts", "timestamptz"}, {"n", "numeric"}},
       {"i2", "i4", "i8", "n"},
       {"i2", "i4", "i8", "n", "f", "t", "ts", "d"},
       {"b"},
       {"i2", "i4"}},
      {"diff_b", false,
       {{"tenant_id", "int"}, {"id", "int"}, {"grp", "int"}, {"qty", "int"}, {"amount", "numeric"},
        {"flag", "bool"}, {"label", "text"}},
       {{"qty * grp", "int"}, {"amount * 2", "numeric"}, {"lower(label)", "text"}, {"grp % 3", "int"}},
       {{"grp", "int"}, {"flag", "bool"}, {"label", "text"}, {"qty % 4", "int"}, {"tenant_id", "int"}},
       {"qty", "amount"},
       {"qty", "grp", "amount", "label"},
       {"flag"},
       {"qty", "grp"}},
      {"diff_k", true,
       {{"code", "text"}, {"id", "int"}, {"v", "int"}, {"w", "numeric"}, {"s", "text"}, {"b", "bool"}},
       {{"v % 5", "int"}, {"length(s)", "int"}, {"w + 1", "numeric"}},
       {{"code", "text"}, {"b", "bool"}, {"v % 3", "int"}, {"s", "text"}},
       {"v", "w"},
       {"v", "w", "s", "code"},
       {"b"},
       {"v"}},
  };
  return t;
}

}  // namespace shardline::testing::diff_corpus
