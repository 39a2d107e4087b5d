#include "config/loader.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <string_view>
#include <unistd.h>

namespace shardline::config {
namespace {

LoadResult parse(std::string_view text) { return parse_config(text, "test.yaml"); }

std::string list(const LoadResult& r) {
  std::string out;
  for (const auto& d : r.problems) out += "\n  " + d.str();
  return out.empty() ? " (none)" : out;
}

/// Some diagnostic sits at line:col and its message contains `fragment`.
::testing::AssertionResult has_problem(const LoadResult& r, int line, int col,
                                       std::string_view fragment) {
  for (const auto& d : r.problems) {
    if (d.line == line && d.column == col && d.message.find(fragment) != std::string::npos)
      return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "no problem at " << line << ":" << col << " containing '"
                                       << fragment << "'; got:" << list(r);
}

/// Exactly one problem, at line:col, containing `fragment`; and no config was produced.
::testing::AssertionResult only_problem(const LoadResult& r, int line, int col,
                                        std::string_view fragment) {
  if (r.config.has_value() || r.ok())
    return ::testing::AssertionFailure() << "a config was produced despite problems:" << list(r);
  if (r.problems.size() != 1)
    return ::testing::AssertionFailure() << "expected exactly 1 problem, got " << r.problems.size()
                                         << ":" << list(r);
  return has_problem(r, line, col, fragment);
}

/// A minimal valid config; a test puts its own lines first (so they are lines 1..n) and drops
/// the base sections it replaces.
std::string with(std::string_view first_lines, std::initializer_list<std::string_view> drop = {}) {
  static constexpr std::pair<std::string_view, std::string_view> kBase[] = {
      {"users", "users: [{name: app, password: secret}]\n"},
      {"backend", "backend: {user: app}\n"},
      {"directory", "directory: [{logical: 0-1023, shard: s0}]\n"},
      {"shards", "shards: {s0: {primary: {host: db0}}}\n"},
  };
  std::string text(first_lines);
  for (const auto& [section, line] : kBase) {
    if (std::find(drop.begin(), drop.end(), section) == drop.end()) text += line;
  }
  return text;
}

std::filesystem::path repo_root() {
  // tests/unit/config/loader_test.cpp -> repo root
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().parent_path();
}

// ---- valid configurations --------------------------------------------------------------------

constexpr std::string_view kFull = R"(listen: {host: 0.0.0.0, port: 7000}
tls: {cert: /etc/shardline/server.crt, key: /etc/shardline/server.key}
log_level: debug
shutdown_timeout_ms: 5000
admin: {http_port: 9930, users: [ops]}
users:
  - {name: app, password: secret, database: appdb}
  - {name: ops, password: opspw, auth: md5}
  - {name: local, auth: trust}
backend: {user: svc, password: pw, database: main, tls: require, connect_timeout_ms: 2500}
pool: {mode: session, size: 7, max_client_conn: 500, query_wait_timeout_ms: 1500, server_idle_timeout_ms: 60000, server_lifetime_ms: 120000}
sharding:
  logical_shards: 8
  key: account_id
  tables:
    orders: {}
    events: {key: tenant, type: int8}
    sessions:
    docs: {type: varchar}
  reference_tables: [plans, countries]
  home_shard: beta
  cross_shard: deny
  cross_shard_transactions: 2pc
directory:
  - {logical: 0-3, shard: beta}
  - {logical: 4, shard: alpha}
  - {logical: 5-7, shard: alpha}
shards:
  beta: {primary: {host: 10.0.0.2, port: 5433}}
  alpha:
    primary: {host: 10.0.0.1}
    replicas: [{host: 10.0.0.11, port: 5434}, {host: 10.0.0.12}]
replicas: {max_lag_bytes: 1048576, max_lag_ms: 250, poll_interval_ms: 20, health_timeout_ms: 700, default_consistency: eventual, read_after_wait_ms: 100}
)";

TEST(ConfigLoader, FullConfigIsReadIntoEveryField) {
  const LoadResult r = parse_config(kFull, "full.yaml");
  ASSERT_TRUE(r.ok()) << list(r);
  const Config& c = *r.config;
  EXPECT_EQ(c.path, "full.yaml");
  EXPECT_EQ(c.listen.host, "0.0.0.0");
  EXPECT_EQ(c.listen.port, 7000);
  EXPECT_EQ(c.tls.cert_file, "/etc/shardline/server.crt");
  EXPECT_EQ(c.tls.key_file, "/etc/shardline/server.key");
  EXPECT_TRUE(c.tls.enabled());
  EXPECT_EQ(c.log_level, LogLevel::Debug);
  EXPECT_EQ(c.shutdown_timeout_ms, 5000);
  EXPECT_EQ(c.admin.http_port, 9930);
  EXPECT_EQ(c.admin.users, std::vector<std::string>{"ops"});

  ASSERT_EQ(c.users.size(), 3u);
  EXPECT_EQ(c.users[0].name, "app");
  EXPECT_EQ(c.users[0].password, "secret");
  EXPECT_EQ(c.users[0].database, "appdb");
  EXPECT_EQ(c.users[0].auth, AuthMethod::ScramSha256);
  EXPECT_EQ(c.users[1].auth, AuthMethod::Md5);
  EXPECT_EQ(c.users[1].database, "");
  EXPECT_EQ(c.users[2].auth, AuthMethod::Trust);
  EXPECT_EQ(c.users[2].password, "");
  EXPECT_EQ(c.find_user("ops"), &c.users[1]);

  EXPECT_EQ(c.backend.user, "svc");
  EXPECT_EQ(c.backend.password, "pw");
  EXPECT_EQ(c.backend.database, "main");
  EXPECT_EQ(c.backend.tls, BackendTlsMode::Require);
  EXPECT_EQ(c.backend.connect_timeout_ms, 2500);

  EXPECT_EQ(c.pool.mode, PoolMode::Session);
  EXPECT_EQ(c.pool.size, 7);
  EXPECT_EQ(c.pool.max_client_conn, 500);
  EXPECT_EQ(c.pool.query_wait_timeout_ms, 1500);
  EXPECT_EQ(c.pool.server_idle_timeout_ms, 60000);
  EXPECT_EQ(c.pool.server_lifetime_ms, 120000);

  EXPECT_EQ(c.sharding.logical_shards, 8);
  EXPECT_EQ(c.sharding.key, "account_id");
  ASSERT_EQ(c.sharding.tables.size(), 4u);
  EXPECT_EQ(c.sharding.tables[0].name, "orders");
  EXPECT_EQ(c.sharding.tables[0].key, "account_id");  // defaults to sharding.key
  EXPECT_FALSE(c.sharding.tables[0].type.has_value());
  EXPECT_EQ(c.sharding.tables[1].name, "events");
  EXPECT_EQ(c.sharding.tables[1].key, "tenant");
  EXPECT_EQ(c.sharding.tables[1].type, std::optional<std::string>("bigint"));
  EXPECT_EQ(c.sharding.tables[2].name, "sessions");  // `sessions:` with no value
  EXPECT_EQ(c.sharding.tables[2].key, "account_id");
  EXPECT_EQ(c.sharding.tables[3].type, std::optional<std::string>("text"));
  EXPECT_EQ(c.sharding.reference_tables, (std::vector<std::string>{"plans", "countries"}));
  EXPECT_EQ(c.sharding.home_shard, "beta");
  EXPECT_EQ(c.sharding.cross_shard, CrossShard::Deny);
  EXPECT_EQ(c.sharding.cross_shard_transactions, CrossShardTransactions::TwoPhaseCommit);

  ASSERT_EQ(c.directory.size(), 3u);
  EXPECT_EQ(c.directory[0].first, 0);
  EXPECT_EQ(c.directory[0].last, 3);
  EXPECT_EQ(c.directory[0].shard, "beta");
  EXPECT_EQ(c.directory[1].first, 4);  // a single N is the range N-N
  EXPECT_EQ(c.directory[1].last, 4);
  EXPECT_EQ(c.directory[2].first, 5);
  EXPECT_EQ(c.directory[2].last, 7);
  EXPECT_EQ(c.directory[2].shard, "alpha");

  ASSERT_EQ(c.shards.size(), 2u);
  EXPECT_EQ(c.shards[0].name, "beta");  // file order, not sorted
  EXPECT_EQ(c.shards[0].primary.host, "10.0.0.2");
  EXPECT_EQ(c.shards[0].primary.port, 5433);
  EXPECT_TRUE(c.shards[0].replicas.empty());
  EXPECT_EQ(c.shards[1].name, "alpha");
  EXPECT_EQ(c.shards[1].primary.host, "10.0.0.1");
  EXPECT_EQ(c.shards[1].primary.port, 5432);  // PostgreSQL's default port
  ASSERT_EQ(c.shards[1].replicas.size(), 2u);
  EXPECT_EQ(c.shards[1].replicas[0].host, "10.0.0.11");
  EXPECT_EQ(c.shards[1].replicas[0].port, 5434);
  EXPECT_EQ(c.shards[1].replicas[1].host, "10.0.0.12");
  EXPECT_EQ(c.shards[1].replicas[1].port, 5432);
  EXPECT_EQ(c.find_shard("alpha"), &c.shards[1]);

  EXPECT_EQ(c.replicas.max_lag_bytes, 1048576);
  EXPECT_EQ(c.replicas.max_lag_ms, 250);
  EXPECT_EQ(c.replicas.poll_interval_ms, 20);
  EXPECT_EQ(c.replicas.health_timeout_ms, 700);
  EXPECT_EQ(c.replicas.health_timeout(), 700);
  EXPECT_EQ(c.replicas.default_consistency, Consistency::Eventual);
  EXPECT_EQ(c.replicas.read_after_wait_ms, 100);
}

TEST(ConfigLoader, MinimalConfigGetsDefaults) {
  const LoadResult r = parse(R"(users: [{name: app, password: secret}]
backend: {user: app}
sharding: {tables: {orders: {}}}
directory: [{logical: 0-1023, shard: zeta}]
shards: {zeta: {primary: {host: db1}}, alpha: {primary: {host: db0}}}
)");
  ASSERT_TRUE(r.ok()) << list(r);
  const Config& c = *r.config;
  EXPECT_EQ(c.listen.host, "127.0.0.1");
  EXPECT_EQ(c.listen.port, 6432);
  EXPECT_FALSE(c.tls.enabled());
  EXPECT_EQ(c.admin.http_port, 0);
  EXPECT_TRUE(c.admin.users.empty());
  EXPECT_EQ(c.users[0].auth, AuthMethod::ScramSha256);
  EXPECT_EQ(c.backend.database, "app");  // libpq's rule: database defaults to the user
  EXPECT_EQ(c.backend.password, "");
  EXPECT_EQ(c.backend.tls, BackendTlsMode::Disable);
  EXPECT_EQ(c.backend.connect_timeout_ms, 5000);
  EXPECT_EQ(c.pool.mode, PoolMode::Transaction);
  EXPECT_EQ(c.pool.size, 20);
  EXPECT_EQ(c.pool.max_client_conn, 10000);
  EXPECT_EQ(c.sharding.logical_shards, 1024);
  EXPECT_EQ(c.sharding.key, "tenant_id");
  ASSERT_EQ(c.sharding.tables.size(), 1u);
  EXPECT_EQ(c.sharding.tables[0].key, "tenant_id");
  EXPECT_TRUE(c.sharding.reference_tables.empty());
  EXPECT_EQ(c.sharding.home_shard, "zeta");  // the first shard in the file
  EXPECT_EQ(c.sharding.cross_shard, CrossShard::Allow);
  EXPECT_EQ(c.sharding.cross_shard_transactions, CrossShardTransactions::Deny);
  ASSERT_EQ(c.shards.size(), 2u);
  EXPECT_EQ(c.shards[0].name, "zeta");
  EXPECT_EQ(c.shards[1].name, "alpha");
  EXPECT_EQ(c.replicas.max_lag_bytes, 16 * 1024 * 1024);
  EXPECT_EQ(c.replicas.default_consistency, Consistency::Global);
  EXPECT_EQ(c.replicas.read_after_wait_ms, 0);
  EXPECT_EQ(c.replicas.health_timeout_ms, 0);
  EXPECT_EQ(c.replicas.health_timeout(), 1000);  // max(1000 ms, 3 x the 50 ms poll interval)
  EXPECT_EQ(c.log_level, LogLevel::Info);
  EXPECT_EQ(c.shutdown_timeout_ms, 30000);
}

TEST(ConfigLoader, KeyTypeAliasesAreNormalized) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"smallint", "smallint"}, {"int2", "smallint"}, {"integer", "integer"}, {"int", "integer"},
      {"int4", "integer"},      {"int8", "bigint"},   {"bigint", "bigint"},   {"text", "text"},
      {"varchar", "text"},      {"uuid", "uuid"},
  };
  for (const auto& [written, normalized] : cases) {
    const LoadResult r = parse(with("sharding: {tables: {t: {type: " + std::string(written) + "}}}\n"));
    ASSERT_TRUE(r.ok()) << written << list(r);
    EXPECT_EQ(r.config->sharding.tables[0].type, std::optional<std::string>(normalized)) << written;
  }
}

TEST(ConfigLoader, EmptyOptionalSectionsMeanDefaults) {
  const LoadResult r = parse(with("listen:\npool: {}\nsharding: {tables: {}, reference_tables: []}\n"));
  ASSERT_TRUE(r.ok()) << list(r);
  EXPECT_EQ(r.config->listen.port, 6432);
  EXPECT_EQ(r.config->pool.size, 20);
  EXPECT_TRUE(r.config->sharding.tables.empty());
}

TEST(ConfigLoader, AdminHttpPortZeroMeansOff) {
  const LoadResult r = parse(with("admin: {http_port: 0, users: [app]}\n"));
  ASSERT_TRUE(r.ok()) << list(r);
  EXPECT_EQ(r.config->admin.http_port, 0);
}

TEST(ConfigLoader, AdminMetricsAndHttpKeys) {
  const LoadResult r = parse(with(
      "admin: {http_port: 9930, users: [app], http_auth: basic, metrics: false, tenant_top_k: 50,\n"
      "        hot_tenant_percent: 30, hot_tenant_min_queries: 10}\n"));
  ASSERT_TRUE(r.ok()) << list(r);
  const auto& a = r.config->admin;
  EXPECT_TRUE(a.http_auth);
  EXPECT_FALSE(a.metrics);
  EXPECT_EQ(a.tenant_top_k, 50);
  EXPECT_EQ(a.hot_tenant_percent, 30);
  EXPECT_EQ(a.hot_tenant_min_queries, 10);
  const LoadResult d = parse(with("admin: {users: [app]}\n"));
  ASSERT_TRUE(d.ok()) << list(d);
  EXPECT_FALSE(d.config->admin.http_auth);
  EXPECT_TRUE(d.config->admin.metrics);
  EXPECT_EQ(d.config->admin.tenant_top_k, 1000);

  const LoadResult bad = parse(with("admin: {users: [app], http_auth: digest, hot_tenant_percent: 101}\n"));
  ASSERT_EQ(bad.problems.size(), 2u) << list(bad);
  EXPECT_NE(list(bad).find("unknown value 'digest' (allowed: basic, none)"), std::string::npos) << list(bad);
  EXPECT_NE(list(bad).find("must be between 0 and 100, got 101"), std::string::npos) << list(bad);

  const LoadResult clash = parse(with("listen: {port: 7000}\nadmin: {http_port: 7000, users: [app]}\n"));
  ASSERT_EQ(clash.problems.size(), 1u) << list(clash);
  EXPECT_NE(list(clash).find("admin.http_port: 7000 is also the listen port"), std::string::npos) << list(clash);
}

// ---- diagnostics format and file handling ---------------------------------------------------

TEST(ConfigLoader, DiagnosticFormat) {
  EXPECT_EQ((Diagnostic{"a.yaml", 3, 14, "pool.size: bad"}).str(), "a.yaml:3:14: pool.size: bad");
  EXPECT_EQ((Diagnostic{"a.yaml", 0, 0, "cannot open"}).str(), "a.yaml: cannot open");
}

TEST(ConfigLoader, MissingFileIsReported) {
  const LoadResult r = load_config_file("/nonexistent/shardline.yaml");
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.problems[0].file, "/nonexistent/shardline.yaml");
  EXPECT_NE(r.problems[0].message.find("cannot open config file"), std::string::npos);
  EXPECT_NE(r.problems[0].message.find("No such file"), std::string::npos);
}

TEST(ConfigLoader, BytesThatAreNotUtf8TextAreRefusedWithTheirPosition) {
  LoadResult r = parse("a: b\xff\n");
  EXPECT_TRUE(has_problem(r, 1, 5, "byte 0xff is not valid UTF-8")) << list(r);
  r = parse("users: [{name: app, password: s\xc3\xa9" "cret}]\nbackend: {user: \"a\x01\"}\n");
  EXPECT_TRUE(has_problem(r, 2, 19, "byte 0x01")) << list(r);
  r = parse("a: \xe0\x80\xaf\n");  // an overlong encoding of '/'
  EXPECT_TRUE(has_problem(r, 1, 4, "byte 0xe0")) << list(r);
  r = parse("a: \xed\xa0\x80\n");  // a UTF-16 surrogate
  EXPECT_TRUE(has_problem(r, 1, 4, "byte 0xed")) << list(r);
  // Non-ASCII text itself is fine: the problems are about the config's content, not its bytes.
  r = parse("users: [{name: app, password: s\xc3\xa9" "cr\xf0\x9f\x94\x91" "t}]\n");
  for (const auto& d : r.problems) EXPECT_EQ(d.message.find("UTF-8"), std::string::npos) << d.str();
}

TEST(ConfigLoader, DocumentsStartingWhereYamlCppWouldHangAreRefused) {
  // Inputs the config fuzzer found: yaml-cpp 0.7's LoadAll never returns on any of them.
  for (std::string_view text : {",", "# c\n  ,", "---\n,", "a: 1\n---\n,", "\"a\" ,", "'a'\n,", "! ,",
                                 "&a\n,", "--- !!str ,", "! \"a\" ,", "!, ", "&a,", "a: 1\n%\n,\nb: 2"}) {
    const LoadResult r = parse(text);
    ASSERT_EQ(r.problems.size(), 1u) << text << list(r);
    EXPECT_NE(r.problems[0].message.find("must be a mapping"), std::string::npos) << text << list(r);
  }
  EXPECT_TRUE(has_problem(parse("# c\n  ,"), 2, 3, "starting with `,`"));
  // A `,` inside a value is ordinary text.
  for (const auto& d : parse("users: [{name: app, password: a,b}]\n").problems)
    EXPECT_EQ(d.message.find("must be a mapping"), std::string::npos) << d.str();
}

TEST(ConfigLoader, AnyOtherTextYamlCppCannotFinishIsRefusedNotHung) {
  // An indented root mapping then `,` in column 1 (and its variants, found by mutating the
  // fuzz corpus): no text guard knows this shape; the parse in a limited child process does.
  for (std::string_view text : {"  a: 1\n,", "  pool: {size: 3}\n,\n"}) {
    const LoadResult r = parse(text);
    ASSERT_EQ(r.problems.size(), 1u) << text << list(r);
    EXPECT_NE(r.problems[0].message.find("does not finish"), std::string::npos) << text << list(r);
  }
  // Ordinary text still parses (and a syntax error keeps its position: it finishes).
  const LoadResult syntax = parse("a: [1,\n");
  ASSERT_EQ(syntax.problems.size(), 1u) << list(syntax);
  EXPECT_NE(syntax.problems[0].message.find("YAML syntax error"), std::string::npos) << list(syntax);
  EXPECT_GT(syntax.problems[0].line, 0) << list(syntax);
}

TEST(ConfigLoader, YamlSyntaxErrorHasPosition) {
  const LoadResult r = parse("listen: {host: a, port: 1\nusers: [\n");
  ASSERT_FALSE(r.problems.empty());
  EXPECT_FALSE(r.config.has_value());
  EXPECT_EQ(r.problems.size(), 1u) << list(r);
  EXPECT_EQ(r.problems[0].file, "test.yaml");
  EXPECT_GE(r.problems[0].line, 1);
  EXPECT_NE(r.problems[0].message.find("YAML syntax error"), std::string::npos);

  EXPECT_TRUE(only_problem(parse("listen: port: 5\n"), 1, 13, "YAML syntax error: illegal map value"));
  EXPECT_TRUE(only_problem(parse("a:\n  - x\n y: 2\n"), 3, 2, "YAML syntax error: end of map not found"));
}

TEST(ConfigLoader, EmptyFile) {
  EXPECT_TRUE(only_problem(parse(""), 1, 1, "configuration is empty"));
  EXPECT_TRUE(only_problem(parse("# nothing but a comment\n\n"), 1, 1, "configuration is empty"));
}

TEST(ConfigLoader, RootMustBeAMapping) {
  EXPECT_TRUE(only_problem(parse("- users\n- shards\n"), 1, 1, "must be a mapping of sections, got a list"));
}

TEST(ConfigLoader, OnlyOneDocument) {
  EXPECT_TRUE(only_problem(parse(with("") + "---\nlisten: {port: 1}\n"), 6, 1, "expected one YAML document, found 2"));
}

// ---- unknown keys ---------------------------------------------------------------------------

TEST(ConfigLoader, UnknownTopLevelKeyListsAllowedKeys) {
  EXPECT_TRUE(only_problem(parse(with("colour: blue\n")), 1, 1,
                           "unknown key 'colour' in the top level (allowed: listen, tls, admin, users, "
                           "backend, control, pool, sharding, directory, shards, replicas, log_level, "
                           "shutdown_timeout_ms)"));
}

TEST(ConfigLoader, UnknownNestedKeys) {
  EXPECT_TRUE(only_problem(parse(with("pool: {size: 5, sise: 6}\n")), 1, 17,
                           "unknown key 'sise' in pool (allowed: mode, size, max_client_conn, "
                           "query_wait_timeout_ms, server_idle_timeout_ms, server_lifetime_ms, "
                           "client_login_timeout_ms, max_login_clients, query_timeout_ms, "
                           "idle_transaction_timeout_ms, client_idle_timeout_ms, server_connect_timeout_ms, "
                           "server_login_retry_ms)"));
  EXPECT_TRUE(only_problem(parse(with("users: [{name: app, password: secret, role: admin}]\n", {"users"})),
                           1, 39, "unknown key 'role' in users[0] (allowed: name, password, database, auth)"));
  EXPECT_TRUE(only_problem(parse(with("shards: {s0: {primary: {host: db0, prot: 5432}}}\n", {"shards"})),
                           1, 36, "unknown key 'prot' in shards.s0.primary (allowed: host, port)"));
  EXPECT_TRUE(only_problem(parse(with("shards: {s0: {primary: {host: db0}, replica: []}}\n", {"shards"})),
                           1, 37, "unknown key 'replica' in shards.s0 (allowed: primary, replicas)"));
  EXPECT_TRUE(only_problem(parse(with("sharding: {tables: {orders: {column: id}}}\n")), 1, 30,
                           "unknown key 'column' in sharding.tables.orders (allowed: key, type)"));
  EXPECT_TRUE(only_problem(parse(with("tls: {cert: a.crt, key: a.key, ca: ca.crt}\n")), 1, 32,
                           "unknown key 'ca' in tls (allowed: cert, key)"));
  EXPECT_TRUE(only_problem(parse(with("replicas: {max_lag: 5}\n")), 1, 12,
                           "unknown key 'max_lag' in replicas (allowed: max_lag_bytes, max_lag_ms, "
                           "poll_interval_ms, health_timeout_ms, default_consistency, read_after_wait_ms, report_lsn, read_only_functions, "
                       "track_commit_lsn)"));
  EXPECT_TRUE(only_problem(parse(with("directory: [{logical: 0-1023, shard: s0, weight: 1}]\n", {"directory"})),
                           1, 42, "unknown key 'weight' in directory[0] (allowed: logical, shard)"));
}

TEST(ConfigLoader, DuplicateKeys) {
  EXPECT_TRUE(only_problem(parse(with("shards:\n  s0: {primary: {host: a}}\n  s0: {primary: {host: b}}\n",
                                      {"shards"})),
                           3, 3, "duplicate key 's0' in shards (first at line 2)"));
  EXPECT_TRUE(only_problem(parse(with("pool: {size: 1}\npool: {size: 2}\n")), 2, 1,
                           "duplicate key 'pool' in the top level (first at line 1)"));
}

// ---- wrong types and ranges -----------------------------------------------------------------

TEST(ConfigLoader, StringWhereIntegerExpected) {
  EXPECT_TRUE(only_problem(parse(with("pool: {size: twenty}\n")), 1, 14, "pool.size: expected an integer, got 'twenty'"));
  EXPECT_TRUE(only_problem(parse(with("pool: {size: \"20\"}\n")), 1, 14,
                           "pool.size: expected an integer, got the string '20'"));
  EXPECT_TRUE(only_problem(parse(with("pool: {size: 2.5}\n")), 1, 14, "expected an integer, got '2.5'"));
  EXPECT_TRUE(only_problem(parse(with("pool: {size: [1]}\n")), 1, 14, "expected an integer, got a list"));
  EXPECT_TRUE(only_problem(parse(with("shutdown_timeout_ms:\n")), 1, 1, "shutdown_timeout_ms: expected an integer, got nothing"));
  EXPECT_TRUE(only_problem(parse(with("replicas: {max_lag_bytes: 16MB}\n")), 1, 27,
                           "replicas.max_lag_bytes: expected an integer, got '16MB'"));
}

TEST(ConfigLoader, WrongShapes) {
  EXPECT_TRUE(only_problem(parse(with("listen: {host: [a, b]}\n")), 1, 16, "listen.host: expected a string, got a list"));
  EXPECT_TRUE(only_problem(parse(with("pool: 5\n")), 1, 7, "pool: expected a mapping, got a scalar"));
  EXPECT_TRUE(only_problem(parse(with("users: {name: app}\n", {"users"})), 1, 8, "users: expected a list, got a mapping"));
  EXPECT_TRUE(only_problem(parse(with("sharding: {reference_tables: plans}\n")), 1, 30,
                           "sharding.reference_tables: expected a list, got a scalar"));
}

TEST(ConfigLoader, NegativeAndZeroSizes) {
  EXPECT_TRUE(only_problem(parse(with("pool: {size: -1}\n")), 1, 14, "pool.size: must be between 1 and 2147483647, got -1"));
  EXPECT_TRUE(only_problem(parse(with("pool: {max_client_conn: 0}\n")), 1, 25, "pool.max_client_conn: must be between 1"));
  EXPECT_TRUE(only_problem(parse(with("replicas: {max_lag_bytes: -5}\n")), 1, 27, "replicas.max_lag_bytes: must be between 0"));
  EXPECT_TRUE(only_problem(parse(with("shutdown_timeout_ms: -100\n")), 1, 22, "shutdown_timeout_ms: must be between 0"));
  EXPECT_TRUE(only_problem(parse(with("backend: {user: app, connect_timeout_ms: 0}\n", {"backend"})), 1, 42,
                           "backend.connect_timeout_ms: must be between 1"));
  EXPECT_TRUE(only_problem(parse(with("pool: {size: 99999999999}\n")), 1, 14, "must be between 1 and 2147483647, got 99999999999"));
}

TEST(ConfigLoader, PgBouncerTimeoutsDefaultOffAndAreRead) {
  const LoadResult d = parse(with(""));
  ASSERT_TRUE(d.ok()) << list(d);
  EXPECT_EQ(d.config->pool.query_timeout_ms, 0);
  EXPECT_EQ(d.config->pool.idle_transaction_timeout_ms, 0);
  EXPECT_EQ(d.config->pool.client_idle_timeout_ms, 0);
  EXPECT_EQ(d.config->pool.server_login_retry_ms, 1000);
  // Unset, the server connect timeout is backend.connect_timeout_ms (the older key).
  EXPECT_EQ(d.config->server_connect_timeout_ms(), d.config->backend.connect_timeout_ms);
  const LoadResult r = parse(with(
      "pool: {query_timeout_ms: 1500, idle_transaction_timeout_ms: 2500, client_idle_timeout_ms: 3500, "
      "server_connect_timeout_ms: 700, server_login_retry_ms: 0}\n"));
  ASSERT_TRUE(r.ok()) << list(r);
  EXPECT_EQ(r.config->pool.query_timeout_ms, 1500);
  EXPECT_EQ(r.config->pool.idle_transaction_timeout_ms, 2500);
  EXPECT_EQ(r.config->pool.client_idle_timeout_ms, 3500);
  EXPECT_EQ(r.config->server_connect_timeout_ms(), 700);
  EXPECT_EQ(r.config->pool.server_login_retry_ms, 0);
}

TEST(ConfigLoader, PgBouncerTimeoutsRefuseBadValuesWithTheirPosition) {
  EXPECT_TRUE(only_problem(parse(with("pool: {query_timeout_ms: -1}\n")), 1, 26,
                           "pool.query_timeout_ms: must be between 0 and 2147483647, got -1"));
  EXPECT_TRUE(only_problem(parse(with("pool: {size: 3,\n  idle_transaction_timeout_ms: 5s}\n")), 2, 32,
                           "pool.idle_transaction_timeout_ms: expected an integer, got '5s'"));
  EXPECT_TRUE(only_problem(parse(with("pool: {client_idle_timeout_ms: [1]}\n")), 1, 32,
                           "pool.client_idle_timeout_ms: expected an integer, got a list"));
  EXPECT_TRUE(only_problem(parse(with("pool: {server_connect_timeout_ms: 0}\n")), 1, 35,
                           "pool.server_connect_timeout_ms: must be between 1 and 2147483647, got 0"));
  EXPECT_TRUE(only_problem(parse(with("pool: {server_login_retry_ms: 99999999999}\n")), 1, 31,
                           "pool.server_login_retry_ms: must be between 0 and 2147483647, got 99999999999"));
  EXPECT_TRUE(only_problem(parse(with("pool: {query_timeout_ms: \"1000\"}\n")), 1, 26,
                           "pool.query_timeout_ms: expected an integer, got the string '1000'"));
}

TEST(ConfigLoader, HealthTimeoutDefaultsToThreePollsAndMayNotBeShorterThanOne) {
  const LoadResult slow = parse(with("replicas: {poll_interval_ms: 500}\n"));
  ASSERT_TRUE(slow.ok()) << list(slow);
  EXPECT_EQ(slow.config->replicas.health_timeout(), 1500);
  const LoadResult equal = parse(with("replicas: {poll_interval_ms: 500, health_timeout_ms: 500}\n"));
  ASSERT_TRUE(equal.ok()) << list(equal);
  EXPECT_EQ(equal.config->replicas.health_timeout(), 500);
  EXPECT_TRUE(only_problem(parse(with("replicas: {poll_interval_ms: 500, health_timeout_ms: 200}\n")), 1, 54,
                           "replicas.health_timeout_ms: must be at least replicas.poll_interval_ms (500), got 200"));
  EXPECT_TRUE(only_problem(parse(with("replicas: {health_timeout_ms: 0}\n")), 1, 31,
                           "replicas.health_timeout_ms: must be between 1"));
  EXPECT_TRUE(only_problem(parse(with("replicas: {health_timeout_ms: '900'}\n")), 1, 31,
                           "replicas.health_timeout_ms: expected an integer, got the string '900'"));
}

TEST(ConfigLoader, PortsOutsideRange) {
  EXPECT_TRUE(only_problem(parse(with("listen: {port: 70000}\n")), 1, 16, "listen.port: must be between 1 and 65535, got 70000"));
  EXPECT_TRUE(only_problem(parse(with("listen: {port: 0}\n")), 1, 16, "listen.port: must be between 1 and 65535, got 0"));
  EXPECT_TRUE(only_problem(parse(with("admin: {http_port: 65536}\n")), 1, 20, "admin.http_port: must be between 0 and 65535"));
  EXPECT_TRUE(only_problem(parse(with("shards: {s0: {primary: {host: a}, replicas: [{host: b, port: -1}]}}\n", {"shards"})),
                           1, 62, "shards.s0.replicas[0].port: must be between 1 and 65535, got -1"));
}

TEST(ConfigLoader, UnknownEnumValues) {
  EXPECT_TRUE(only_problem(parse(with("log_level: verbose\n")), 1, 12,
                           "log_level: unknown value 'verbose' (allowed: debug, info, warn, error)"));
  EXPECT_TRUE(only_problem(parse(with("pool: {mode: statement}\n")), 1, 14,
                           "pool.mode: unknown value 'statement' (allowed: transaction, session)"));
  EXPECT_TRUE(only_problem(parse(with("backend: {user: app, tls: verify-full}\n", {"backend"})), 1, 27,
                           "backend.tls: unknown value 'verify-full' (allowed: disable, prefer, require)"));
  EXPECT_TRUE(only_problem(parse(with("users: [{name: app, auth: password}]\n", {"users"})), 1, 27,
                           "users[0].auth: unknown value 'password' (allowed: scram-sha-256, md5, trust)"));
  EXPECT_TRUE(only_problem(parse(with("sharding: {cross_shard: maybe}\n")), 1, 25,
                           "sharding.cross_shard: unknown value 'maybe' (allowed: allow, deny)"));
  EXPECT_TRUE(only_problem(parse(with("sharding: {cross_shard_transactions: 3pc}\n")), 1, 38,
                           "sharding.cross_shard_transactions: unknown value '3pc' (allowed: deny, 2pc)"));
  EXPECT_TRUE(only_problem(parse(with("replicas: {default_consistency: eventually}\n")), 1, 33,
                           "replicas.default_consistency: unknown value 'eventually' (allowed: strong, global, session, eventual)"));
  EXPECT_TRUE(only_problem(parse(with("sharding: {tables: {t: {type: float8}}}\n")), 1, 31,
                           "sharding.tables.t.type: unknown value 'float8' (allowed: smallint, integer, int, "
                           "int2, int4, int8, bigint, text, varchar, uuid)"));
}

// ---- missing required fields ----------------------------------------------------------------

TEST(ConfigLoader, MissingRequiredTopLevelSections) {
  const LoadResult r = parse("listen: {port: 6000}\n");
  EXPECT_FALSE(r.config.has_value());
  ASSERT_EQ(r.problems.size(), 4u) << list(r);
  EXPECT_TRUE(has_problem(r, 1, 1, "missing required top-level key 'users'"));
  EXPECT_TRUE(has_problem(r, 1, 1, "missing required top-level key 'backend'"));
  EXPECT_TRUE(has_problem(r, 1, 1, "missing required top-level key 'directory'"));
  EXPECT_TRUE(has_problem(r, 1, 1, "missing required top-level key 'shards'"));
}

TEST(ConfigLoader, MissingRequiredNestedFields) {
  EXPECT_TRUE(only_problem(parse(with("backend: {password: x}\n", {"backend"})), 1, 10,
                           "backend: missing required key 'user'"));
  EXPECT_TRUE(only_problem(parse(with("users: [{password: x}]\n", {"users"})), 1, 9,
                           "users[0]: missing required key 'name'"));
  EXPECT_TRUE(only_problem(parse(with("shards: {s0: {replicas: []}}\n", {"shards"})), 1, 14,
                           "shards.s0: missing required key 'primary'"));
  EXPECT_TRUE(only_problem(parse(with("shards: {s0: {primary: {port: 5432}}}\n", {"shards"})), 1, 24,
                           "shards.s0.primary: missing required key 'host'"));
  EXPECT_TRUE(only_problem(parse(with("directory: [{shard: s0}]\n", {"directory"})), 1, 13,
                           "directory[0]: missing required key 'logical'"));
  EXPECT_TRUE(only_problem(parse(with("directory: [{logical: 0-1023}]\n", {"directory"})), 1, 13,
                           "directory[0]: missing required key 'shard'"));
  EXPECT_TRUE(only_problem(parse(with("tls: {cert: server.crt}\n")), 1, 6, "tls: missing required key 'key'"));
  EXPECT_TRUE(only_problem(parse(with("backend:\n", {"backend"})), 1, 1, "backend: missing required key 'user'"));
}

TEST(ConfigLoader, PasswordRequiredUnlessTrust) {
  EXPECT_TRUE(only_problem(parse(with("users: [{name: app}]\n", {"users"})), 1, 9,
                           "users[0]: missing required key 'password' (only users with auth: trust may omit it)"));
  EXPECT_TRUE(only_problem(parse(with("users:\n  - {name: app, password: x}\n  - {name: b, auth: md5}\n", {"users"})),
                           3, 5, "users[1]: missing required key 'password'"));
  EXPECT_TRUE(only_problem(parse(with("users: [{name: app, password: \"\"}]\n", {"users"})), 1, 31,
                           "users[0].password: must not be empty"));
  EXPECT_TRUE(parse(with("users: [{name: app, auth: trust}]\n", {"users"})).ok());
}

TEST(ConfigLoader, EmptyRequiredLists) {
  EXPECT_TRUE(only_problem(parse(with("users: []\n", {"users"})), 1, 8, "users: at least one user is required"));
  EXPECT_TRUE(only_problem(parse(with("users:\n", {"users"})), 1, 1, "users: at least one user is required"));
  EXPECT_TRUE(only_problem(parse(with("shards: {}\n", {"shards"})), 1, 9, "shards: at least one shard is required"));
  // An empty directory leaves every logical shard unassigned.
  EXPECT_TRUE(only_problem(parse(with("directory: []\n", {"directory"})), 1, 12,
                           "directory: logical shard 0 is not assigned to any shard (gap 0-1023)"));
}

// ---- logical ranges and the directory -------------------------------------------------------

TEST(ConfigLoader, MalformedLogicalRanges) {
  for (const std::string_view bad : {"abc", "1-", "-1", "1-2-3", "0..511", "x-5"}) {
    const std::string text = "directory: [{logical: " + std::string(bad) + ", shard: s0}]\n";
    EXPECT_TRUE(only_problem(parse(with(text, {"directory"})), 1, 23,
                             "directory[0].logical: malformed logical shard range '" + std::string(bad) + "'"))
        << bad;
  }
  EXPECT_TRUE(only_problem(parse(with("directory: [{logical: 511-0, shard: s0}]\n", {"directory"})), 1, 23,
                           "directory[0].logical: logical shard range '511-0' is reversed"));
  EXPECT_TRUE(only_problem(parse(with("directory: [{logical: [0, 1023], shard: s0}]\n", {"directory"})), 1, 23,
                           "directory[0].logical: expected a logical shard N or range A-B, got a list"));
}

TEST(ConfigLoader, SingleLogicalShardEntries) {
  const LoadResult r = parse(with("sharding: {logical_shards: 3}\ndirectory: [{logical: 0, shard: s0}, "
                                  "{logical: 1, shard: s0}, {logical: \"2\", shard: s0}]\n", {"directory"}));
  ASSERT_TRUE(r.ok()) << list(r);
  ASSERT_EQ(r.config->directory.size(), 3u);
  EXPECT_EQ(r.config->directory[2].first, 2);
  EXPECT_EQ(r.config->directory[2].last, 2);
}

TEST(ConfigLoader, LogicalRangeOutsideLogicalShards) {
  EXPECT_TRUE(only_problem(parse(with("directory: [{logical: 0-1024, shard: s0}]\n", {"directory"})), 1, 23,
                           "directory[0].logical: range '0-1024' is outside 0-1023 (sharding.logical_shards is 1024)"));
  // logical_shards is honoured even when it comes after the directory in the file.
  EXPECT_TRUE(only_problem(parse(with("directory: [{logical: 0-15, shard: s0}]\nsharding: {logical_shards: 8}\n",
                                      {"directory"})),
                           1, 23, "range '0-15' is outside 0-7 (sharding.logical_shards is 8)"));
  EXPECT_TRUE(only_problem(parse(with("sharding: {logical_shards: 0}\n")), 1, 28,
                           "sharding.logical_shards: must be between 1 and 1048576, got 0"));
}

TEST(ConfigLoader, OverlappingRangesNameBothEntries) {
  const LoadResult r = parse(with("directory:\n"
                                  "  - {logical: 0-511, shard: s0}\n"
                                  "  - {logical: 500-1023, shard: s1}\n"
                                  "shards: {s0: {primary: {host: a}}, s1: {primary: {host: b}}}\n",
                                  {"directory", "shards"}));
  EXPECT_TRUE(only_problem(r, 3, 15,
                           "directory[1].logical: range '500-1023' (shard s1) overlaps directory[0] range "
                           "'0-511' (shard s0, line 2)"));
  // Reported at the later entry even when it holds the lower range.
  EXPECT_TRUE(only_problem(parse(with("directory:\n"
                                      "  - {logical: 100-1023, shard: s0}\n"
                                      "  - {logical: 0-100, shard: s0}\n",
                                      {"directory"})),
                           3, 15, "directory[1].logical: range '0-100' (shard s0) overlaps directory[0] range '100-1023'"));
  EXPECT_TRUE(only_problem(parse(with("directory: [{logical: 0-1023, shard: s0}, {logical: 7, shard: s0}]\n",
                                      {"directory"})),
                           1, 53, "range '7' (shard s0) overlaps directory[0] range '0-1023'"));
}

TEST(ConfigLoader, GapsNameTheFirstMissingLogicalShard) {
  EXPECT_TRUE(only_problem(parse(with("directory:\n"
                                      "  - {logical: 0-99, shard: s0}\n"
                                      "  - {logical: 200-1023, shard: s0}\n",
                                      {"directory"})),
                           2, 3, "directory: logical shard 100 is not assigned to any shard (gap 100-199)"));
  EXPECT_TRUE(only_problem(parse(with("directory: [{logical: 0-1000, shard: s0}]\n", {"directory"})), 1, 12,
                           "directory: logical shard 1001 is not assigned to any shard (gap 1001-1023)"));
  EXPECT_TRUE(only_problem(parse(with("directory: [{logical: 1-1023, shard: s0}]\n", {"directory"})), 1, 12,
                           "directory: logical shard 0 is not assigned to any shard (gap 0-0)"));
}

TEST(ConfigLoader, DirectoryNamesUnknownShard) {
  EXPECT_TRUE(only_problem(parse(with("directory: [{logical: 0-1023, shard: s9}]\n", {"directory"})), 1, 38,
                           "directory[0].shard: unknown shard 's9'"));
}

TEST(ConfigLoader, HomeShardUnknown) {
  EXPECT_TRUE(only_problem(parse(with("sharding: {home_shard: s7}\n")), 1, 24,
                           "sharding.home_shard: unknown shard 's7'"));
}

TEST(ConfigLoader, AdminUsersMustBeUsers) {
  EXPECT_TRUE(only_problem(parse(with("admin: {users: [app, root]}\n")), 1, 22,
                           "admin.users[1]: 'root' is not one of the users defined in 'users'"));
}

TEST(ConfigLoader, DuplicateUserNames) {
  EXPECT_TRUE(only_problem(parse(with("users:\n"
                                      "  - {name: app, password: a}\n"
                                      "  - {name: other, password: b}\n"
                                      "  - {name: app, password: c}\n",
                                      {"users"})),
                           4, 12, "users[2].name: duplicate user 'app' (first defined at line 2)"));
}

TEST(ConfigLoader, ReferenceTableAlsoSharded) {
  EXPECT_TRUE(only_problem(parse(with("sharding:\n"
                                      "  tables: {orders: {}}\n"
                                      "  reference_tables: [plans, orders]\n")),
                           3, 29,
                           "sharding.reference_tables[1]: 'orders' is also a sharded table (line 2)"));
  EXPECT_TRUE(only_problem(parse(with("sharding: {reference_tables: [plans, plans]}\n")), 1, 38,
                           "sharding.reference_tables[1]: 'plans' is listed twice (first at line 1)"));
}

// ---- several problems at once ---------------------------------------------------------------

TEST(ConfigLoader, EveryProblemIsReportedInFileOrder) {
  const LoadResult r = parse(R"(listen: {port: http}
users:
  - {name: app, password: a}
  - {name: app, password: b}
backend: {user: app, tls: on}
pool: {size: -3, colour: red}
sharding: {home_shard: nowhere}
directory:
  - {logical: 0-600, shard: s0}
  - {logical: 600-900, shard: s5}
shards: {s0: {primary: {host: a}}}
)");
  EXPECT_FALSE(r.config.has_value());
  EXPECT_EQ(r.problems.size(), 9u) << list(r);
  EXPECT_TRUE(has_problem(r, 1, 16, "listen.port: expected an integer, got 'http'"));
  EXPECT_TRUE(has_problem(r, 4, 12, "duplicate user 'app'"));
  EXPECT_TRUE(has_problem(r, 5, 27, "backend.tls: unknown value 'on'"));
  EXPECT_TRUE(has_problem(r, 6, 14, "pool.size: must be between 1"));
  EXPECT_TRUE(has_problem(r, 6, 18, "unknown key 'colour' in pool"));
  EXPECT_TRUE(has_problem(r, 7, 24, "sharding.home_shard: unknown shard 'nowhere'"));
  EXPECT_TRUE(has_problem(r, 9, 3, "logical shard 901 is not assigned to any shard (gap 901-1023)"));
  EXPECT_TRUE(has_problem(r, 10, 15, "range '600-900' (shard s5) overlaps directory[0] range '0-600'"));
  EXPECT_TRUE(has_problem(r, 10, 31, "directory[1].shard: unknown shard 's5'"));
  EXPECT_TRUE(std::is_sorted(r.problems.begin(), r.problems.end(), [](const auto& a, const auto& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  })) << list(r);
  for (const auto& d : r.problems) EXPECT_EQ(d.file, "test.yaml");
}

// ---- the example files ----------------------------------------------------------------------

TEST(ConfigLoader, ExampleConfigIsValid) {
  const std::string path = (repo_root() / "config/examples/shardline.yaml").string();
  const LoadResult r = load_config_file(path);
  ASSERT_TRUE(r.ok()) << list(r);
  const Config& c = *r.config;
  EXPECT_EQ(c.path, path);
  EXPECT_EQ(c.listen.port, 6432);
  EXPECT_EQ(c.admin.http_port, 9930);
  EXPECT_EQ(c.admin.users, std::vector<std::string>{"app"});
  ASSERT_EQ(c.users.size(), 1u);
  EXPECT_EQ(c.users[0].auth, AuthMethod::ScramSha256);
  EXPECT_EQ(c.backend.database, "app");
  EXPECT_EQ(c.sharding.logical_shards, 1024);
  ASSERT_EQ(c.sharding.tables.size(), 2u);
  EXPECT_EQ(c.sharding.tables[0].name, "orders");
  EXPECT_EQ(c.sharding.tables[0].key, "tenant_id");
  EXPECT_EQ(c.sharding.tables[1].key, "account_id");
  EXPECT_EQ(c.sharding.tables[1].type, std::optional<std::string>("text"));
  EXPECT_EQ(c.sharding.reference_tables, (std::vector<std::string>{"plans", "countries"}));
  EXPECT_EQ(c.sharding.home_shard, "s0");
  ASSERT_EQ(c.directory.size(), 2u);
  EXPECT_EQ(c.directory[1].first, 512);
  EXPECT_EQ(c.directory[1].last, 1023);
  EXPECT_EQ(c.directory[1].shard, "s1");
  ASSERT_EQ(c.shards.size(), 2u);
  EXPECT_EQ(c.shards[1].primary.port, 15410);
  ASSERT_EQ(c.shards[1].replicas.size(), 1u);
  EXPECT_EQ(c.shards[1].replicas[0].port, 15411);
  EXPECT_EQ(c.replicas.default_consistency, Consistency::Global);
  EXPECT_EQ(c.replicas.health_timeout(), 1000);
  EXPECT_EQ(c.pool.size, 20);
  EXPECT_EQ(c.pool.query_timeout_ms, 0);
  EXPECT_EQ(c.server_connect_timeout_ms(), 5000);
  EXPECT_EQ(c.pool.server_login_retry_ms, 1000);
}

TEST(ConfigLoader, InvalidExampleReportsEachProblem) {
  const std::string path = (repo_root() / "config/examples/invalid.yaml").string();
  const LoadResult r = load_config_file(path);
  EXPECT_FALSE(r.config.has_value());
  std::vector<std::string> got;
  for (const auto& d : r.problems) got.push_back(d.str().substr(path.size() + 1));
  const std::vector<std::string> want = {
      "3:33: listen.port: must be between 1 and 65535, got 70000",
      "4:22: admin.users[1]: 'ops' is not one of the users defined in 'users'",
      "7:12: users[1].name: duplicate user 'app' (first defined at line 6)",
      "8:5: users[2]: missing required key 'password' (only users with auth: trust may omit it)",
      "9:27: backend.tls: unknown value 'maybe' (allowed: disable, prefer, require)",
      "10:33: pool.size: expected an integer, got 'twenty'",
      "13:39: sharding.tables.events.type: unknown value 'float' (allowed: smallint, integer, int, "
      "int2, int4, int8, bigint, text, varchar, uuid)",
      "14:22: sharding.reference_tables[0]: 'orders' is also a sharded table (line 13); a table is "
      "either sharded or a reference table",
      "15:15: sharding.home_shard: unknown shard 's9'",
      "17:3: directory: logical shard 701 is not assigned to any shard (gap 701-799)",
      "18:15: directory[1].logical: range '500-700' (shard s1) overlaps directory[0] range '0-511' "
      "(shard s0, line 17)",
      "19:32: directory[2].shard: unknown shard 's2'",
      "22:49: unknown key 'replica' in shards.s1 (allowed: primary, replicas)",
  };
  EXPECT_EQ(got, want);
}

TEST(ConfigLoader, LoadsFromAFile) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("shardline_loader_test_" + std::to_string(::getpid()) + ".yaml");
  {
    std::ofstream out(path);
    out << with("pool: {size: 0}\n");
  }
  const LoadResult r = load_config_file(path.string());
  std::filesystem::remove(path);
  EXPECT_TRUE(only_problem(r, 1, 14, "pool.size: must be between 1"));
  EXPECT_EQ(r.problems[0].file, path.string());
  EXPECT_EQ(r.problems[0].str(), path.string() + ":1:14: pool.size: must be between 1 and 2147483647, got 0");
}

TEST(ConfigLoader, ControlRoleDefaultsToBackend) {
  auto plain = parse(with(""));
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain.config->control);
  EXPECT_EQ(plain.config->control_role().user, plain.config->backend.user);
  auto set = parse(with("control: {user: postgres, password: ''}\n"));
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set.config->control_role().user, "postgres");
  EXPECT_EQ(set.config->control_role().password, "");
  EXPECT_EQ(set.config->control_role().database, set.config->backend.database);
  auto bad = parse(with("control: {password: x}\n"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.problems.front().str().find("missing required key 'user'"), std::string::npos)
      << bad.problems.front().str();
}

}  // namespace
}  // namespace shardline::config
