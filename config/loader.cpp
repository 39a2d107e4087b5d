#include "config/loader.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <utility>

namespace shardline::config {

std::string Diagnostic::str() const {
  if (line <= 0) return fmt::format("{}: {}", file, message);
  return fmt::format("{}:{}:{}: {}", file, line, column, message);
}

namespace {

/// Large enough for any real deployment, small enough that a directory array stays cheap.
constexpr std::int64_t kMaxLogicalShards = std::int64_t{1} << 20;
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

/// Parses a whole decimal integer; nothing else (no "1.5", "12abc", "0x10").
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

/// One end of a `logical` range: unsigned decimal digits that fit an int.
bool parse_logical_shard(std::string_view s, int& out) {
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

/// Where a byte YAML text cannot hold is (1-based line and column, counted in characters).
struct BytePosition {
  std::size_t offset = 0;
  int line = 1, column = 1;
};

/// The first byte that is not part of valid UTF-8, or is a C0 control character other than tab,
/// LF and CR (or DEL), as YAML 1.2's printable character set requires; nullopt when all are fine.
std::optional<BytePosition> first_non_text_byte(std::string_view s) {
  BytePosition pos;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 1;
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) return BytePosition{i, pos.line, pos.column};
    } else {
      std::uint32_t cp = 0;
      if (c >= 0xc2 && c <= 0xdf) len = 2, cp = c & 0x1f;
      else if (c >= 0xe0 && c <= 0xef) len = 3, cp = c & 0x0f;
      else if (c >= 0xf0 && c <= 0xf4) len = 4, cp = c & 0x07;
      else return BytePosition{i, pos.line, pos.column};
      if (i + len > s.size()) return BytePosition{i, pos.line, pos.column};
      for (std::size_t k = 1; k < len; ++k) {
        const auto cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xc0) != 0x80) return BytePosition{i, pos.line, pos.column};
        cp = (cp << 6) | (cc & 0x3f);
      }
      const bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
      if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return BytePosition{i, pos.line, pos.column};
    }
    if (c == '\n') {
      ++pos.line;
      pos.column = 1;
    } else {
      ++pos.column;
    }
    i += len;
  }
  return std::nullopt;
}

/// yaml-cpp 0.7 never returns from LoadAll when a document's root node starts with `,` (or a
/// root quoted scalar is followed by one), found by fuzz/config_fuzz.cpp. A config's root must
/// be a mapping anyway, so a document whose first token is `,` or a quoted scalar is refused
/// before yaml-cpp sees it. Blank lines, comments, directives, `---` / `...` and the root's tag
/// or anchor are skipped.
std::optional<BytePosition> document_start_problem(std::string_view s) {
  bool at_start = true;
  int line = 1;
  for (std::size_t i = 0; i < s.size(); ++line) {
    const std::size_t eol = std::min(s.find('\n', i), s.size());
    std::string_view l = s.substr(i, eol - i);
    const bool marker = l.substr(0, 3) == "---" || l.substr(0, 3) == "...";
    std::size_t k = marker ? 3 : 0;
    // `---`, `...` and a directive line (`%` in column 1, which yaml-cpp takes as one even
    // inside a document) start the next document.
    if (marker || l.substr(0, 1) == "%") at_start = true;
    const auto blank = [&] {
      while (k < l.size() && (l[k] == ' ' || l[k] == '\t' || l[k] == '\r')) ++k;
    };
    blank();
    // A root node's properties (a tag `!x`, an anchor `&a`) come before it, on its line or above.
    while (at_start && k < l.size() && (l[k] == '!' || l[k] == '&')) {
      // A tag or anchor name ends at a blank or a flow indicator (`!,` is the tag `!`, then `,`).
      while (k < l.size() && l[k] != ' ' && l[k] != '\t' && l[k] != '\r' && l[k] != ',' && l[k] != '[' &&
             l[k] != ']' && l[k] != '{' && l[k] != '}')
        ++k;
      blank();
    }
    if (at_start && k < l.size() && l[k] != '#' && !(k == 0 && l[k] == '%')) {
      if (l[k] == ',' || l[k] == '"' || l[k] == '\'') return BytePosition{i + k, line, int(k) + 1};
      at_start = false;
    }
    i = eol + 1;
  }
  return std::nullopt;
}

/// Walks the YAML tree once, filling a Config and collecting every problem on the way; the
/// checks that relate sections to each other run at the end, when everything has been read.
class ConfigReader {
 public:
  explicit ConfigReader(std::string file) : file_(std::move(file)) {}

  LoadResult read(std::string_view text) {
    // YAML is Unicode text without control characters; refused here with their position.
    if (auto bad = first_non_text_byte(text)) {
      problems_.push_back({file_, bad->line, bad->column,
                           fmt::format("byte 0x{:02x} is not valid UTF-8 YAML text (the file must be UTF-8, "
                                       "without control characters other than tab and line breaks)",
                                       static_cast<unsigned char>(text[bad->offset]))});
      return finish();
    }
    if (auto bad = document_start_problem(text)) {
      problems_.push_back({file_, bad->line, bad->column,
                           fmt::format("the configuration must be a mapping of `key: value` lines; a document "
                                       "starting with `{}` is not one",
                                       text[bad->offset])});
      return finish();
    }
    std::vector<YAML::Node> docs;
    try {
      docs = YAML::LoadAll(std::string(text));
    } catch (const YAML::Exception& e) {
      error(e.mark, fmt::format("YAML syntax error: {}", e.msg));
      return finish();
    }
    if (docs.empty() || (docs.size() == 1 && docs.front().IsNull())) {
      problems_.push_back({file_, 1, 1, "configuration is empty"});
      return finish();
    }
    if (docs.size() > 1) {
      error(docs[1].Mark(),
            fmt::format("expected one YAML document, found {} (remove the '---')", docs.size()));
    }
    const Value root{docs.front(), docs.front().Mark(), ""};
    if (read_root(root)) validate();
    return finish();
  }

 private:
  /// What the cross-section checks need to know about one `directory` entry.
  struct DirectoryEntry {
    int index = 0;
    DirectoryRange range;
    std::string text;  ///< the range as written, for messages
    bool parsed = false;
    YAML::Mark logical_mark, shard_mark;
  };

  // ---- diagnostics ------------------------------------------------------------------------
  void error(const YAML::Mark& at, std::string message) {
    // A mark-less node (should not happen for parsed nodes) still yields a usable diagnostic.
    const int line = at.is_null() ? 0 : at.line + 1;
    const int column = at.is_null() ? 0 : at.column + 1;
    problems_.push_back({file_, line, column, std::move(message)});
  }
  void error(const Value& v, std::string_view message) {
    if (v.path.empty()) {
      error(v.mark, std::string(message));
    } else {
      error(v.mark, fmt::format("{}: {}", v.path, message));
    }
  }

  LoadResult finish() {
    std::stable_sort(problems_.begin(), problems_.end(), [](const auto& a, const auto& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    LoadResult result;
    result.problems = std::move(problems_);
    if (result.problems.empty()) result.config = std::move(config_);
    return result;
  }

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
  void read_fields(const Value& map, std::initializer_list<Field> fields) {
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

  // ---- scalars ----------------------------------------------------------------------------
  std::optional<std::string> string(const Value& v, bool allow_empty = false) {
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

  std::optional<std::int64_t> integer(const Value& v, std::int64_t min, std::int64_t max) {
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

  void set_int(int& out, const Value& v, int min, std::int64_t max = kMaxInt) {
    if (auto x = integer(v, min, max)) out = static_cast<int>(*x);
  }

  /// Ports are 1..65535; `allow_zero` for optional listeners where 0 means "off".
  void set_port(std::uint16_t& out, const Value& v, bool allow_zero = false) {
    if (auto x = integer(v, allow_zero ? 0 : 1, 65535)) out = static_cast<std::uint16_t>(*x);
  }

  void set_string(std::string& out, const Value& v, bool allow_empty = false) {
    if (auto s = string(v, allow_empty)) out = std::move(*s);
  }

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

  // ---- sections ---------------------------------------------------------------------------
  /// False when the document is not a mapping at all: then there is nothing to cross-check.
  bool read_root(const Value& root) {
    if (!root.node.IsMap()) {
      error(root.mark, fmt::format("the configuration must be a mapping of sections, got {}",
                                   kind_name(root.node)));
      return false;
    }
    Config& c = config_;
    c.path = file_;
    read_fields(root, {
        {"listen", [&](const Value& v) { read_listen(v); }},
        {"tls", [&](const Value& v) { read_tls(v); }},
        {"admin", [&](const Value& v) { read_admin(v); }},
        {"users", [&](const Value& v) { read_users(v); }, true},
        {"backend", [&](const Value& v) { read_backend(v); }, true},
        {"control", [&](const Value& v) { read_control(v); }},
        {"pool", [&](const Value& v) { read_pool(v); }},
        {"sharding", [&](const Value& v) { read_sharding(v); }},
        {"directory", [&](const Value& v) { read_directory(v); }, true},
        {"shards", [&](const Value& v) { read_shards(v); }, true},
        {"replicas", [&](const Value& v) { read_replicas(v); }},
        {"log_level",
         [&](const Value& v) {
           set_choice(c.log_level, v,
                      {{"debug", LogLevel::Debug}, {"info", LogLevel::Info},
                       {"warn", LogLevel::Warn}, {"error", LogLevel::Error}});
         }},
        {"shutdown_timeout_ms", [&](const Value& v) { set_int(c.shutdown_timeout_ms, v, 0); }},
    });
    return true;
  }

  void read_listen(const Value& map) {
    Listen& l = config_.listen;
    read_fields(map, {
        {"host", [&](const Value& v) { set_string(l.host, v); }},
        {"port", [&](const Value& v) { set_port(l.port, v); }},
    });
  }

  void read_tls(const Value& map) {
    Tls& t = config_.tls;
    read_fields(map, {
        {"cert", [&](const Value& v) { set_string(t.cert_file, v); }, true},
        {"key", [&](const Value& v) { set_string(t.key_file, v); }, true},
    });
  }

  void read_admin(const Value& map) {
    Admin& a = config_.admin;
    read_fields(map, {
        {"http_port",
         [&](const Value& v) {
           set_port(a.http_port, v, /*allow_zero=*/true);
           http_port_mark_ = v.mark;
         }},
        {"http_auth", [&](const Value& v) { set_choice(a.http_auth, v, {{"basic", true}, {"none", false}}); }},
        {"metrics",
         [&](const Value& v) { set_choice(a.metrics, v, {{"true", true}, {"on", true}, {"false", false}, {"off", false}}); }},
        {"tenant_top_k", [&](const Value& v) { set_int(a.tenant_top_k, v, 1, 1000000); }},
        {"hot_tenant_percent", [&](const Value& v) { set_int(a.hot_tenant_percent, v, 0, 100); }},
        {"hot_tenant_min_queries", [&](const Value& v) { set_int(a.hot_tenant_min_queries, v, 1); }},
        {"users",
         [&](const Value& v) {
           if (v.node.IsNull()) return;
           for_each_item(v, [&](const Value& item) {
             if (auto name = string(item)) {
               a.users.push_back(*name);
               admin_user_marks_.push_back(item.mark);
             }
           });
         }},
    });
  }

  void read_users(const Value& seq) {
    if (seq.node.IsNull()) {
      error(seq, "at least one user is required");
      return;
    }
    users_complete_ = seq.node.IsSequence();
    for_each_item(seq, [&](const Value& item) {
      User u;
      YAML::Mark name_mark = item.mark;
      bool has_password = false;
      bool auth_known = true;  // a misspelt auth already has its error; don't guess about passwords
      read_fields(item, {
          {"name",
           [&](const Value& v) {
             set_string(u.name, v);
             name_mark = v.mark;
           },
           true},
          {"password",
           [&](const Value& v) {
             set_string(u.password, v);
             has_password = true;
           }},
          {"database", [&](const Value& v) { set_string(u.database, v); }},
          {"auth",
           [&](const Value& v) {
             const auto auth = choice<AuthMethod>(v, {{"scram-sha-256", AuthMethod::ScramSha256},
                                          {"md5", AuthMethod::Md5},
                                          {"trust", AuthMethod::Trust}});
             auth_known = auth.has_value();
             if (auth) u.auth = *auth;
           }},
      });
      if (item.node.IsMap() && auth_known && !has_password && u.auth != AuthMethod::Trust) {
        error(item, "missing required key 'password' (only users with auth: trust may omit it)");
      }
      if (u.name.empty()) {
        users_complete_ = false;
      } else {
        auto [it, fresh] = user_lines_.emplace(u.name, name_mark.line + 1);
        if (!fresh) {
          error(name_mark, fmt::format("{}.name: duplicate user '{}' (first defined at line {})",
                                       item.path, u.name, it->second));
        }
      }
      config_.users.push_back(std::move(u));
    });
    if (seq.node.IsSequence() && seq.node.size() == 0) error(seq, "at least one user is required");
  }

  void read_control(const Value& map) {
    Backend c;
    read_fields(map, {
        {"user", [&](const Value& v) { set_string(c.user, v); }, true},
        {"password", [&](const Value& v) { set_string(c.password, v, /*allow_empty=*/true); }},
    });
    config_.control = std::move(c);
  }

  void read_backend(const Value& map) {
    Backend& b = config_.backend;
    read_fields(map, {
        {"user", [&](const Value& v) { set_string(b.user, v); }, true},
        {"password", [&](const Value& v) { set_string(b.password, v, /*allow_empty=*/true); }},
        {"database", [&](const Value& v) { set_string(b.database, v); }},
        {"tls",
         [&](const Value& v) {
           set_choice(b.tls, v,
                      {{"disable", BackendTlsMode::Disable},
                       {"prefer", BackendTlsMode::Prefer},
                       {"require", BackendTlsMode::Require}});
         }},
        {"connect_timeout_ms", [&](const Value& v) { set_int(b.connect_timeout_ms, v, 1); }},
    });
    // libpq's rule: the database defaults to the user name.
    if (b.database.empty()) b.database = b.user;
  }

  void read_pool(const Value& map) {
    Pool& p = config_.pool;
    read_fields(map, {
        {"mode",
         [&](const Value& v) {
           set_choice(p.mode, v,
                      {{"transaction", PoolMode::Transaction}, {"session", PoolMode::Session}});
         }},
        {"size", [&](const Value& v) { set_int(p.size, v, 1); }},
        {"max_client_conn", [&](const Value& v) { set_int(p.max_client_conn, v, 1); }},
        {"query_wait_timeout_ms", [&](const Value& v) { set_int(p.query_wait_timeout_ms, v, 1); }},
        {"server_idle_timeout_ms",
         [&](const Value& v) { set_int(p.server_idle_timeout_ms, v, 1); }},
        {"server_lifetime_ms", [&](const Value& v) { set_int(p.server_lifetime_ms, v, 1); }},
        {"client_login_timeout_ms", [&](const Value& v) { set_int(p.client_login_timeout_ms, v, 1); }},
        {"max_login_clients", [&](const Value& v) { set_int(p.max_login_clients, v, 1); }},
    });
  }

  void read_sharding(const Value& map) {
    Sharding& s = config_.sharding;
    read_fields(map, {
        {"logical_shards",
         [&](const Value& v) {
           if (auto n = integer(v, 1, kMaxLogicalShards)) {
             s.logical_shards = static_cast<int>(*n);
           } else {
             logical_shards_valid_ = false;
           }
         }},
        {"key", [&](const Value& v) { set_string(s.key, v); }},
        {"tables", [&](const Value& v) { read_tables(v); }},
        {"auto_tables",
         [&](const Value& v) { set_choice(s.auto_tables, v, {{"true", true}, {"on", true}, {"false", false}, {"off", false}}); }},
        {"reference_tables",
         [&](const Value& v) {
           if (v.node.IsNull()) return;
           for_each_item(v, [&](const Value& item) {
             if (auto name = string(item)) {
               s.reference_tables.push_back(*name);
               reference_marks_.push_back(item.mark);
             }
           });
         }},
        {"home_shard",
         [&](const Value& v) {
           if (auto name = string(v)) {
             s.home_shard = *name;
             home_shard_mark_ = v.mark;
           }
         }},
        {"cross_shard",
         [&](const Value& v) {
           set_choice(s.cross_shard, v, {{"allow", CrossShard::Allow}, {"deny", CrossShard::Deny}});
         }},
        {"cross_shard_transactions",
         [&](const Value& v) {
           set_choice(s.cross_shard_transactions, v,
                      {{"deny", CrossShardTransactions::Deny},
                       {"2pc", CrossShardTransactions::TwoPhaseCommit}});
         }},
    });
  }

  void read_tables(const Value& map) {
    for_each_entry(map, [&](const std::string& name, const YAML::Mark& key_mark, const Value& spec) {
      ShardedTable t;
      t.name = name;
      if (name.empty()) error(key_mark, fmt::format("{}: table names must not be empty", map.path));
      read_fields(spec, {
          {"key", [&](const Value& v) { set_string(t.key, v); }},
          {"type",
           [&](const Value& v) {
             // Aliases PostgreSQL accepts, folded to the names the hash functions are keyed by.
             t.type = choice<std::string_view>(
                 v, {{"smallint", "smallint"}, {"integer", "integer"}, {"int", "integer"},
                     {"int2", "smallint"}, {"int4", "integer"}, {"int8", "bigint"},
                     {"bigint", "bigint"}, {"text", "text"}, {"varchar", "text"},
                     {"uuid", "uuid"}});
           }},
      });
      table_marks_.push_back(key_mark);
      config_.sharding.tables.push_back(std::move(t));
    });
  }

  void read_directory(const Value& seq) {
    directory_mark_ = seq.mark;
    if (seq.node.IsNull()) {
      error(seq, "at least one logical shard range is required");
      return;
    }
    directory_readable_ = seq.node.IsSequence();
    for_each_item(seq, [&](const Value& item) {
      DirectoryEntry e;
      e.index = static_cast<int>(entries_.size());
      read_fields(item, {
          {"logical", [&](const Value& v) { read_logical_range(v, e); }, true},
          {"shard",
           [&](const Value& v) {
             if (auto name = string(v)) {
               e.range.shard = *name;
               e.shard_mark = v.mark;
             }
           },
           true},
      });
      if (!e.parsed) directory_complete_ = false;
      entries_.push_back(e);
      config_.directory.push_back(e.range);
    });
  }

  void read_logical_range(const Value& v, DirectoryEntry& e);

  void read_shards(const Value& map) {
    if (map.node.IsNull() || (map.node.IsMap() && map.node.size() == 0)) {
      error(map, "at least one shard is required");
      return;
    }
    shards_readable_ = for_each_entry(map, [&](const std::string& name, const YAML::Mark& key_mark,
                                                const Value& spec) {
      if (name.empty()) error(key_mark, "shards: shard names must not be empty");
      Shard shard;
      shard.name = name;
      read_fields(spec, {
          {"primary", [&](const Value& v) { read_endpoint(v, shard.primary); }, true},
          {"replicas",
           [&](const Value& v) {
             if (v.node.IsNull()) return;
             for_each_item(v, [&](const Value& item) {
               Endpoint ep;
               read_endpoint(item, ep);
               shard.replicas.push_back(ep);
             });
           }},
      });
      config_.shards.push_back(std::move(shard));
    });
  }

  void read_endpoint(const Value& map, Endpoint& ep) {
    if (map.node.IsNull()) {
      error(map, "expected a mapping {host, port}, got nothing");
      return;
    }
    read_fields(map, {
        {"host", [&](const Value& v) { set_string(ep.host, v); }, true},
        {"port", [&](const Value& v) { set_port(ep.port, v); }},
    });
  }

  void read_replicas(const Value& map) {
    Replicas& r = config_.replicas;
    read_fields(map, {
        {"max_lag_bytes",
         [&](const Value& v) {
           if (auto n = integer(v, 0, std::numeric_limits<std::int64_t>::max())) r.max_lag_bytes = *n;
         }},
        {"max_lag_ms", [&](const Value& v) { set_int(r.max_lag_ms, v, 0); }},
        {"poll_interval_ms", [&](const Value& v) { set_int(r.poll_interval_ms, v, 1); }},
        {"health_timeout_ms",
         [&](const Value& v) {
           health_timeout_mark_ = v.mark;
           set_int(r.health_timeout_ms, v, 1);
         }},
        {"default_consistency",
         [&](const Value& v) {
           set_choice(r.default_consistency, v,
                      {{"strong", Consistency::Strong}, {"global", Consistency::Global}, {"session", Consistency::Session},
                       {"eventual", Consistency::Eventual}});
         }},
        {"read_after_wait_ms", [&](const Value& v) { set_int(r.read_after_wait_ms, v, 0); }},
        {"report_lsn",
         [&](const Value& v) { set_choice(r.report_lsn, v, {{"true", true}, {"on", true}, {"false", false}, {"off", false}}); }},
        {"read_only_functions",
         [&](const Value& v) {
           if (v.node.IsNull()) return;
           for_each_item(v, [&](const Value& item) {
             if (auto name = string(item)) r.read_only_functions.push_back(*name);
           });
         }},
        {"track_commit_lsn",
         [&](const Value& v) {
           set_choice(r.track_commit_lsn, v, {{"true", true}, {"on", true}, {"false", false}, {"off", false}});
         }},
    });
  }

  // ---- cross-section checks ---------------------------------------------------------------
  void validate();
  void validate_directory();

  std::string file_;
  std::vector<Diagnostic> problems_;
  Config config_;

  // Positions remembered for the checks that relate sections to each other.
  std::map<std::string, int> user_lines_;
  std::vector<YAML::Mark> admin_user_marks_;
  std::optional<YAML::Mark> http_port_mark_;
  std::vector<YAML::Mark> reference_marks_;
  std::vector<YAML::Mark> table_marks_;
  std::vector<DirectoryEntry> entries_;
  YAML::Mark directory_mark_;
  YAML::Mark home_shard_mark_;
  YAML::Mark health_timeout_mark_;
  bool logical_shards_valid_ = true;
  bool directory_complete_ = true;
  bool directory_readable_ = false;  ///< `directory` is a list: coverage checks are meaningful
  bool shards_readable_ = false;  ///< shard names are known: unknown-shard checks are meaningful
  bool users_complete_ = false;   ///< every user's name is known: unknown-user checks are meaningful
};

void ConfigReader::read_logical_range(const Value& v, DirectoryEntry& e) {
  e.logical_mark = v.mark;
  if (!v.node.IsScalar()) {
    error(v, fmt::format("expected a logical shard N or range A-B, got {}", kind_name(v.node)));
    return;
  }
  e.text = v.node.Scalar();
  const std::string_view text = trim(e.text);
  const auto dash = text.find('-');
  const std::string_view first = trim(text.substr(0, dash));
  const std::string_view last = dash == std::string_view::npos ? first : trim(text.substr(dash + 1));
  int a = 0;
  int b = 0;
  if (!parse_logical_shard(first, a) || !parse_logical_shard(last, b)) {
    error(v, fmt::format("malformed logical shard range '{}' (expected N or A-B, e.g. 0-511)", e.text));
    return;
  }
  if (a > b) {
    error(v, fmt::format("logical shard range '{}' is reversed (the first shard must not exceed the last)",
                         e.text));
    return;
  }
  e.range.first = a;
  e.range.last = b;
  e.parsed = true;
}

void ConfigReader::validate() {
  Config& c = config_;
  for (std::size_t i = 0; i < c.admin.users.size() && users_complete_; ++i) {
    if (!c.find_user(c.admin.users[i])) {
      error(admin_user_marks_[i],
            fmt::format("admin.users[{}]: '{}' is not one of the users defined in 'users'", i,
                        c.admin.users[i]));
    }
  }

  if (http_port_mark_ && c.admin.http_port != 0 && c.admin.http_port == c.listen.port)
    error(*http_port_mark_, fmt::format("admin.http_port: {} is also the listen port; the HTTP endpoint needs a port of its own",
                                        c.admin.http_port));
  for (std::size_t i = 0; i < c.sharding.tables.size(); ++i) {
    if (c.sharding.tables[i].key.empty()) c.sharding.tables[i].key = c.sharding.key;
  }
  std::map<std::string, int> reference_lines;
  for (std::size_t i = 0; i < c.sharding.reference_tables.size(); ++i) {
    const std::string& name = c.sharding.reference_tables[i];
    const YAML::Mark& at = reference_marks_[i];
    if (auto [it, fresh] = reference_lines.emplace(name, at.line + 1); !fresh) {
      error(at, fmt::format("sharding.reference_tables[{}]: '{}' is listed twice (first at line {})",
                            i, name, it->second));
    }
    for (std::size_t t = 0; t < c.sharding.tables.size(); ++t) {
      if (c.sharding.tables[t].name == name) {
        error(at, fmt::format("sharding.reference_tables[{}]: '{}' is also a sharded table (line {}); "
                              "a table is either sharded or a reference table",
                              i, name, table_marks_[t].line + 1));
      }
    }
  }

  if (c.sharding.home_shard.empty()) {
    if (!c.shards.empty()) c.sharding.home_shard = c.shards.front().name;
  } else if (shards_readable_ && !c.find_shard(c.sharding.home_shard)) {
    error(home_shard_mark_, fmt::format("sharding.home_shard: unknown shard '{}'", c.sharding.home_shard));
  }

  // A probe is judged once per round, so a health timeout below the poll interval would act as
  // the poll interval anyway; saying so beats silently stretching it.
  if (c.replicas.health_timeout_ms > 0 && c.replicas.health_timeout_ms < c.replicas.poll_interval_ms) {
    error(health_timeout_mark_,
          fmt::format("replicas.health_timeout_ms: must be at least replicas.poll_interval_ms ({}), got {}",
                      c.replicas.poll_interval_ms, c.replicas.health_timeout_ms));
  }

  validate_directory();
}

void ConfigReader::validate_directory() {
  const Config& c = config_;
  for (const DirectoryEntry& e : entries_) {
    if (shards_readable_ && !e.range.shard.empty() && !c.find_shard(e.range.shard)) {
      error(e.shard_mark, fmt::format("directory[{}].shard: unknown shard '{}'", e.index, e.range.shard));
    }
  }
  if (!logical_shards_valid_ || !directory_readable_) return;

  const int n = c.sharding.logical_shards;
  std::vector<const DirectoryEntry*> in_range;
  bool complete = directory_complete_;
  for (const DirectoryEntry& e : entries_) {
    if (!e.parsed) continue;
    if (e.range.last >= n) {
      error(e.logical_mark,
            fmt::format("directory[{}].logical: range '{}' is outside 0-{} (sharding.logical_shards is {})",
                        e.index, e.text, n - 1, n));
      complete = false;
      continue;
    }
    in_range.push_back(&e);
  }

  // Sorted by first shard, an entry overlaps an earlier one iff it starts at or before the
  // furthest end seen so far; whatever lies between that end and its start is a gap.
  std::stable_sort(in_range.begin(), in_range.end(),
                   [](const auto* a, const auto* b) { return a->range.first < b->range.first; });
  const DirectoryEntry* furthest = nullptr;
  int next_unassigned = 0;
  for (const DirectoryEntry* e : in_range) {
    if (furthest && e->range.first <= furthest->range.last) {
      // Report at whichever of the two comes later in the file: that is the one just added.
      const DirectoryEntry* later = e->index > furthest->index ? e : furthest;
      const DirectoryEntry* earlier = later == e ? furthest : e;
      error(later->logical_mark,
            fmt::format("directory[{}].logical: range '{}' (shard {}) overlaps directory[{}] range '{}' "
                        "(shard {}, line {})",
                        later->index, later->text, later->range.shard, earlier->index, earlier->text,
                        earlier->range.shard, earlier->logical_mark.line + 1));
    } else if (e->range.first > next_unassigned && complete) {
      error(directory_mark_,
            fmt::format("directory: logical shard {} is not assigned to any shard (gap {}-{})",
                        next_unassigned, next_unassigned, e->range.first - 1));
    }
    if (!furthest || e->range.last > furthest->range.last) furthest = e;
    next_unassigned = std::max(next_unassigned, e->range.last + 1);
  }
  if (complete && next_unassigned < n) {
    error(directory_mark_,
          fmt::format("directory: logical shard {} is not assigned to any shard (gap {}-{})",
                      next_unassigned, next_unassigned, n - 1));
  }
}

}  // namespace

LoadResult parse_config(std::string_view yaml_text, const std::string& file_label) {
  return ConfigReader(file_label).read(yaml_text);
}

LoadResult load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult result;
    result.problems.push_back({path, 0, 0, fmt::format("cannot open config file: {}", std::strerror(errno))});
    return result;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    LoadResult result;
    result.problems.push_back({path, 0, 0, fmt::format("cannot read config file: {}", std::strerror(errno))});
    return result;
  }
  return parse_config(text.str(), path);
}

}  // namespace shardline::config
