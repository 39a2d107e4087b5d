// The non-template parts of YamlReader (yaml_reader.hpp) and its helpers: diagnostics, keyed
// mappings, checked scalars.
#include "config/yaml_reader.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace shardline::config {

std::string Diagnostic::str() const {
  if (line <= 0) return fmt::format("{}: {}", file, message);
  return fmt::format("{}:{}:{}: {}", file, line, column, message);
}

namespace detail {

std::string child_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
}

std::string_view kind_name(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return "a scalar";
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Undefined: break;
  }
  return "an undefined value";
}

std::optional<std::int64_t> parse_int64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::int64_t v = 0;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, v);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return v;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

void YamlReader::error(const YAML::Mark& at, std::string message) {
  // A mark-less node (should not happen for parsed nodes) still yields a usable diagnostic.
  const int line = at.is_null() ? 0 : at.line + 1;
  const int column = at.is_null() ? 0 : at.column + 1;
  problems_.push_back({file_, line, column, std::move(message)});
}

void YamlReader::error(const Value& v, std::string_view message) {
  if (v.path.empty()) {
    error(v.mark, std::string(message));
  } else {
    error(v.mark, fmt::format("{}: {}", v.path, message));
  }
}

std::vector<Diagnostic> YamlReader::sorted_problems() {
  std::stable_sort(problems_.begin(), problems_.end(), [](const auto& a, const auto& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  });
  return std::move(problems_);
}

void YamlReader::read_fields(const Value& map, std::initializer_list<Field> fields) {
  std::vector<bool> found(fields.size(), false);
  const bool is_map = for_each_entry(map, [&](const std::string& key, const YAML::Mark& key_mark,
                                              const Value& value) {
    std::size_t i = 0;
    for (const Field& f : fields) {
      if (f.name == key) {
        found[i] = true;
        f.read(value);
        return;
      }
      ++i;
    }
    std::string allowed;
    for (const Field& f : fields) allowed += fmt::format("{}{}", allowed.empty() ? "" : ", ", f.name);
    error(key_mark, fmt::format("unknown key '{}' in {} (allowed: {})", key,
                                map.path.empty() ? "the top level" : map.path, allowed));
  });
  if (!is_map) return;
  std::size_t i = 0;
  for (const Field& f : fields) {
    if (f.required && !found[i]) {
      if (map.path.empty()) {
        error(map.mark, fmt::format("missing required top-level key '{}'", f.name));
      } else {
        error(map, fmt::format("missing required key '{}'", f.name));
      }
    }
    ++i;
  }
}

std::optional<std::string> YamlReader::string(const Value& v, bool allow_empty) {
  if (!v.node.IsScalar()) {
    error(v, fmt::format("expected a string, got {}", kind_name(v.node)));
    return std::nullopt;
  }
  if (!allow_empty && v.node.Scalar().empty()) {
    error(v, "must not be empty");
    return std::nullopt;
  }
  return v.node.Scalar();
}

std::optional<std::int64_t> YamlReader::integer(const Value& v, std::int64_t min, std::int64_t max) {
  if (!v.node.IsScalar()) {
    error(v, fmt::format("expected an integer, got {}", kind_name(v.node)));
    return std::nullopt;
  }
  const std::string& text = v.node.Scalar();
  // A quoted scalar ("6432") is a string in YAML; accepting it would hide a typing mistake.
  const bool quoted = v.node.Tag() == "!";
  const auto parsed = quoted ? std::nullopt : parse_int64(text);
  if (!parsed) {
    error(v, fmt::format("expected an integer, got {}'{}'", quoted ? "the string " : "", text));
    return std::nullopt;
  }
  if (*parsed < min || *parsed > max) {
    error(v, fmt::format("must be between {} and {}, got {}", min, max, *parsed));
    return std::nullopt;
  }
  return parsed;
}

void YamlReader::set_int(int& out, const Value& v, int min, std::int64_t max) {
  if (auto x = integer(v, min, max)) out = static_cast<int>(*x);
}

void YamlReader::set_port(std::uint16_t& out, const Value& v, bool allow_zero) {
  if (auto x = integer(v, allow_zero ? 0 : 1, 65535)) out = static_cast<std::uint16_t>(*x);
}

void YamlReader::set_string(std::string& out, const Value& v, bool allow_empty) {
  if (auto s = string(v, allow_empty)) out = std::move(*s);
}

void YamlReader::set_bool(bool& out, const Value& v) {
  set_choice(out, v, {{"true", true}, {"on", true}, {"false", false}, {"off", false}});
}

}  // namespace detail
}  // namespace shardline::config
