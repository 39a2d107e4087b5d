// Loading a config file: the raw-text checks, YAML parsing, the top level and the server-side
// sections (listen, tls, admin, users, backend, pool), and the checks across sections.
#include "config/loader.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

#include "config/config_reader.hpp"
#include "config/yaml_parse_probe.hpp"
#include "config/yaml_text_checks.hpp"

namespace shardline::config {
namespace detail {

LoadResult ConfigReader::read(std::string_view text) {
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
  if (probe_yaml_parse(text) == ParseProbe::Runaway) {
    problems_.push_back({file_, 1, 1,
                         "the YAML parser (yaml-cpp) does not finish on this text: it is not a configuration "
                         "(check its syntax: a mapping of `key: value` lines)"});
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

LoadResult ConfigReader::finish() {
  LoadResult result;
  result.problems = sorted_problems();
  if (result.problems.empty()) result.config = std::move(config_);
  return result;
}

bool ConfigReader::read_root(const Value& root) {
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

void ConfigReader::read_listen(const Value& map) {
  Listen& l = config_.listen;
  read_fields(map, {
      {"host", [&](const Value& v) { set_string(l.host, v); }},
      {"port", [&](const Value& v) { set_port(l.port, v); }},
  });
}

void ConfigReader::read_tls(const Value& map) {
  Tls& t = config_.tls;
  read_fields(map, {
      {"cert", [&](const Value& v) { set_string(t.cert_file, v); }, true},
      {"key", [&](const Value& v) { set_string(t.key_file, v); }, true},
  });
}

void ConfigReader::read_admin(const Value& map) {
  Admin& a = config_.admin;
  read_fields(map, {
      {"http_port",
       [&](const Value& v) {
         set_port(a.http_port, v, /*allow_zero=*/true);
         http_port_mark_ = v.mark;
       }},
      {"http_auth", [&](const Value& v) { set_choice(a.http_auth, v, {{"basic", true}, {"none", false}}); }},
      {"metrics", [&](const Value& v) { set_bool(a.metrics, v); }},
      {"tenant_top_k", [&](const Value& v) { set_int(a.tenant_top_k, v, 1, 1000000); }},
      {"hot_tenant_percent", [&](const Value& v) { set_int(a.hot_tenant_percent, v, 0, 100); }},
      {"hot_tenant_min_queries", [&](const Value& v) { set_int(a.hot_tenant_min_queries, v, 1); }},
      {"users",
       [&](const Value& v) {
         for_each_string(v, [&](std::string name, const Value& item) {
           a.users.push_back(std::move(name));
           admin_user_marks_.push_back(item.mark);
         });
       }},
  });
}

void ConfigReader::read_users(const Value& seq) {
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

void ConfigReader::read_control(const Value& map) {
  Backend c;
  read_fields(map, {
      {"user", [&](const Value& v) { set_string(c.user, v); }, true},
      {"password", [&](const Value& v) { set_string(c.password, v, /*allow_empty=*/true); }},
  });
  config_.control = std::move(c);
}

void ConfigReader::read_backend(const Value& map) {
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

void ConfigReader::read_pool(const Value& map) {
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
      {"query_timeout_ms", [&](const Value& v) { set_int(p.query_timeout_ms, v, 0); }},
      {"idle_transaction_timeout_ms", [&](const Value& v) { set_int(p.idle_transaction_timeout_ms, v, 0); }},
      {"client_idle_timeout_ms", [&](const Value& v) { set_int(p.client_idle_timeout_ms, v, 0); }},
      {"server_connect_timeout_ms", [&](const Value& v) { set_int(p.server_connect_timeout_ms, v, 1); }},
      {"server_login_retry_ms", [&](const Value& v) { set_int(p.server_login_retry_ms, v, 0); }},
  });
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

}  // namespace detail

LoadResult parse_config(std::string_view yaml_text, const std::string& file_label) {
  return detail::ConfigReader(file_label).read(yaml_text);
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
