#pragma once
// Flattening of SET arguments into the string PostgreSQL hands to a parameter
// (guc.c flatten_set_variable_args), for analyze().

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace shardline::router {

/// Lower-cases ASCII letters only, as PostgreSQL compares parameter names (guc_name_compare).
[[nodiscard]] std::string lower_ascii(std::string_view s);

/// Parameters declared GUC_LIST_QUOTE in PostgreSQL, whose list elements are stored as quoted
/// identifiers (the same list pg_dump keeps in variable_is_guc_list_quote()).
[[nodiscard]] bool is_list_quoted_parameter(std::string_view lower_name);

/// Accumulates the elements of one SET argument list, joined with ", ".
class SetValue {
 public:
  explicit SetValue(std::string_view lower_name)
      : list_quoted_(is_list_quoted_parameter(lower_name)) {}

  /// A string constant or bare word: quoted with quote_identifier for list-quoted parameters.
  void add_string(std::string_view s);
  /// An integer constant, printed like "%d".
  void add_integer(std::int32_t v);
  /// A float constant: PostgreSQL keeps its text as written (with a '-' in front when negated).
  void add_float(std::string_view text);
  /// Text that PostgreSQL would normalize through a type's input/output functions (the INTERVAL
  /// form of SET TIME ZONE): kept verbatim.
  void add_verbatim(std::string_view text);

  [[nodiscard]] const std::string& str() const& { return out_; }
  [[nodiscard]] std::string str() && { return std::move(out_); }

 private:
  void separator();
  bool list_quoted_;
  bool first_ = true;
  std::string out_;
};

}  // namespace shardline::router
