#pragma once
// YamlReader: the generic machinery for reading a YAML tree into typed settings, independent of
// shardline's schema: positioned diagnostics, mappings with known keys, lists, checked scalars.

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/diagnostic.hpp"

namespace shardline::config::detail {

constexpr std::int64_t kMaxInt = std::numeric_limits<int>::max();

/// A node together with the position its problems are reported at and its dotted path for
/// messages. yaml-cpp gives an implicit null (`key:` and nothing else) the mark of the *next*
/// token, often on another line, so null values are positioned at their key instead.
struct Value {
  YAML::Node node;
  YAML::Mark mark;
  std::string path;  ///< "pool.size", "users[1].name"; empty for the document root
};

/// One known key of a YAML mapping and what to do with its value.
struct Field {
  std::string_view name;
  std::function<void(const Value&)> read;
  bool required = false;
};

std::string child_path(const std::string& parent, std::string_view key);
std::string_view kind_name(const YAML::Node& n);
/// Parses a whole decimal integer; nothing else (no "1.5", "12abc", "0x10").
std::optional<std::int64_t> parse_int64(std::string_view s);
std::string_view trim(std::string_view s);

/// Collects every problem met while reading one file, each at the position of its node; a
/// reader for a schema derives from it and reads its sections with these primitives.
class YamlReader {
 public:
  explicit YamlReader(std::string file) : file_(std::move(file)) {}

 protected:
  // ---- diagnostics ------------------------------------------------------------------------
  void error(const YAML::Mark& at, std::string message);
  void error(const Value& v, std::string_view message);
  /// Hands the problems over, sorted by position (stable: same position, order of finding).
  std::vector<Diagnostic> sorted_problems();

  // ---- structure --------------------------------------------------------------------------
  /// Calls `fn` for each key/value of a mapping, reporting non-scalar and duplicate keys (yaml-cpp
  /// keeps duplicates silently, and a second `s0:` would otherwise vanish). A null value counts
  /// as an empty mapping: `pool:` with nothing under it means "all defaults".
  template <class Fn>
  bool for_each_entry(const Value& map, Fn&& fn) {
    if (map.node.IsNull()) return true;
    if (!map.node.IsMap()) {
      error(map, fmt::format("expected a mapping, got {}", kind_name(map.node)));
      return false;
    }
    std::map<std::string, int> seen;  // key -> line (1-based)
    for (const auto& kv : map.node) {
      const YAML::Node& key = kv.first;
      if (!key.IsScalar()) {
        error(key.Mark(), fmt::format("{}: keys must be plain names, got {}",
                                      map.path.empty() ? "top level" : map.path, kind_name(key)));
        continue;
      }
      const std::string& name = key.Scalar();
      if (auto [it, fresh] = seen.emplace(name, key.Mark().line + 1); !fresh) {
        error(key.Mark(), fmt::format("duplicate key '{}' in {} (first at line {})", name,
                                      map.path.empty() ? "the top level" : map.path, it->second));
        continue;
      }
      const YAML::Node value = kv.second;
      fn(name, key.Mark(),
         Value{value, value.IsNull() ? key.Mark() : value.Mark(), child_path(map.path, name)});
    }
    return true;
  }

  /// Reads a mapping with a fixed set of keys: unknown keys and missing required ones are errors.
  void read_fields(const Value& map, std::initializer_list<Field> fields);

  template <class Fn>
  void for_each_item(const Value& seq, Fn&& fn) {
    if (!seq.node.IsSequence()) {
      error(seq, fmt::format("expected a list, got {}", kind_name(seq.node)));
      return;
    }
    std::size_t i = 0;
    for (const auto& item : seq.node) {
      fn(Value{item, item.Mark(), fmt::format("{}[{}]", seq.path, i)});
      ++i;
    }
  }

  /// An optional list of strings (nothing under the key is an empty list): `fn(name, item)` for
  /// each item that is a non-empty string; the others are reported.
  template <class Fn>
  void for_each_string(const Value& seq, Fn&& fn) {
    if (seq.node.IsNull()) return;
    for_each_item(seq, [&](const Value& item) {
      if (auto name = string(item)) fn(std::move(*name), item);
    });
  }

  // ---- scalars ----------------------------------------------------------------------------
  std::optional<std::string> string(const Value& v, bool allow_empty = false);
  std::optional<std::int64_t> integer(const Value& v, std::int64_t min, std::int64_t max);
  void set_int(int& out, const Value& v, int min, std::int64_t max = kMaxInt);
  /// Ports are 1..65535; `allow_zero` for optional listeners where 0 means "off".
  void set_port(std::uint16_t& out, const Value& v, bool allow_zero = false);
  void set_string(std::string& out, const Value& v, bool allow_empty = false);

  template <class E>
  std::optional<E> choice(const Value& v, std::initializer_list<std::pair<std::string_view, E>> options) {
    std::string allowed;
    for (const auto& [name, e] : options) allowed += fmt::format("{}{}", allowed.empty() ? "" : ", ", name);
    if (!v.node.IsScalar()) {
      error(v, fmt::format("expected one of {}, got {}", allowed, kind_name(v.node)));
      return std::nullopt;
    }
    for (const auto& [name, e] : options) {
      if (name == v.node.Scalar()) return e;
    }
    error(v, fmt::format("unknown value '{}' (allowed: {})", v.node.Scalar(), allowed));
    return std::nullopt;
  }

  template <class E>
  void set_choice(E& out, const Value& v, std::initializer_list<std::pair<std::string_view, E>> options) {
    if (auto e = choice(v, options)) out = *e;
  }

  /// A switch: true/on or false/off.
  void set_bool(bool& out, const Value& v);

  std::string file_;
  std::vector<Diagnostic> problems_;
};

}  // namespace shardline::config::detail
