// The catalog schema `shardline` against a real PostgreSQL: migrations (idempotent, checksummed,
// safe when proxies start together), seeding and reading the directory, the epoch trigger, the
// watcher (LISTEN, polling fallback, refusal of a bad directory, reconnects), and key types
// learned from information_schema.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "config/loader.hpp"
#include "proxy/control/catalog.hpp"
#include "proxy/control/catalog_error.hpp"
#include "proxy/control/catalog_migrations.hpp"
#include "proxy/control/directory_watcher.hpp"
#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"

namespace {

using namespace std::chrono_literals;
using shardline::control::Catalog;
using shardline::control::catalog_migrations;
using shardline::control::CatalogError;
using shardline::control::DirectoryWatcher;
using shardline::control::DirectoryWatcherOptions;
using shardline::router::DirectorySnapshot;
using shardline::testing::PgConnection;
using shardline::testing::test_cluster;
using Snapshot = std::shared_ptr<const DirectorySnapshot>;
using Clock = std::chrono::steady_clock;

shardline::config::Config cluster_config() {
  auto loaded = shardline::config::parse_config(test_cluster().config_yaml(shardline::testing::free_port()),
                                                "catalog_test.yaml");
  if (!loaded.ok()) throw std::runtime_error("the fixture's config does not load");
  return *loaded.config;
}

/// The app user on shard `i`'s primary (where the catalog lives for i = 0).
PgConnection sql(int shard = 0) {
  PgConnection c(test_cluster().conninfo(shard));
  if (!c.ok()) throw std::runtime_error("cannot connect: " + c.error());
  return c;
}

void exec(const PgConnection& c, const std::string& statement) {
  const auto r = c.exec(statement);
  if (!r.ok()) throw std::runtime_error(statement + ": " + r.describe());
}

/// Each test starts from a database without the catalog schema.
Catalog fresh_catalog() {
  exec(sql(), "DROP SCHEMA IF EXISTS shardline CASCADE");
  return Catalog(Catalog::default_conninfo(cluster_config()));
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const CatalogError& e) {
    return e.what();
  }
  return "(no CatalogError)";
}

/// What a watcher delivered, waited for from the test thread.
struct Inbox {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Snapshot> snapshots;
  std::vector<std::string> errors;

  DirectoryWatcher::Callback callback() {
    return [this](Snapshot s) {
      std::lock_guard lock(mu);
      snapshots.push_back(std::move(s));
      cv.notify_all();
    };
  }
  std::function<void(const std::string&)> error_callback() {
    return [this](const std::string& e) {
      std::lock_guard lock(mu);
      errors.push_back(e);
      cv.notify_all();
    };
  }
  /// The first snapshot with epoch >= `epoch`, or nullptr after `timeout`.
  Snapshot wait_epoch(std::uint64_t epoch, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu);
    Snapshot found;
    cv.wait_for(lock, timeout, [&] {
      for (const auto& s : snapshots)
        if (s->epoch() >= epoch) return (found = s) != nullptr;
      return false;
    });
    return found;
  }
  bool wait_error(const std::string& needle, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] {
      return std::any_of(errors.begin(), errors.end(),
                         [&](const std::string& e) { return e.find(needle) != std::string::npos; });
    });
  }
  std::size_t count() {
    std::lock_guard lock(mu);
    return snapshots.size();
  }
};

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ---- migrations ------------------------------------------------------------------------------

TEST(CatalogMigrate, RunsOnceRecordsTheFileChecksumAndIsIdempotent) {
  auto catalog = fresh_catalog();
  catalog.migrate();
  const auto c = sql();
  const auto n = std::to_string(catalog_migrations().size());
  EXPECT_EQ(c.value("SELECT count(*) FROM shardline.schema_migrations"), n);
  EXPECT_EQ(c.value("SELECT epoch FROM shardline.directory_epoch"), "0");
  const std::string applied_at = c.value("SELECT max(applied_at)::text FROM shardline.schema_migrations");

  // The recorded checksum is the SHA-256 of the file in the source tree, computed by the server.
  const std::string text = read_file(std::string(SHARDLINE_SOURCE_DIR) + "/migrations/0001_catalog.sql");
  ASSERT_FALSE(text.empty());
  const auto r = c.exec_params(
      "SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex') = "
      "(SELECT checksum FROM shardline.schema_migrations WHERE version = 1), "
      "(SELECT name FROM shardline.schema_migrations WHERE version = 1)",
      {text});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.value(0, 0), "t");
  EXPECT_EQ(r.value(0, 1), "catalog");

  catalog.migrate();  // nothing to do
  EXPECT_EQ(c.value("SELECT count(*) FROM shardline.schema_migrations"), n);
  EXPECT_EQ(c.value("SELECT max(applied_at)::text FROM shardline.schema_migrations"), applied_at);

  // The SQL itself may run again over existing objects without touching the directory.
  catalog.load_or_seed(cluster_config());
  exec(c, "DELETE FROM shardline.schema_migrations");
  catalog.migrate();
  EXPECT_EQ(c.value("SELECT count(*) FROM shardline.schema_migrations"), n);
  EXPECT_EQ(c.value("SELECT count(*) FROM shardline.directory"), "1024");
  EXPECT_EQ(c.value("SELECT epoch FROM shardline.directory_epoch"), "1");
}

TEST(CatalogMigrate, ProxiesStartingTogetherApplyEachMigrationOnce) {
  fresh_catalog();
  const std::string conninfo = Catalog::default_conninfo(cluster_config());
  std::vector<std::thread> threads;
  std::vector<std::string> failures(6);
  for (std::size_t i = 0; i < failures.size(); ++i)
    threads.emplace_back([&, i] { failures[i] = message_of([&] { Catalog(conninfo).migrate(); }); });
  for (auto& t : threads) t.join();
  for (const auto& f : failures) EXPECT_EQ(f, "(no CatalogError)");
  EXPECT_EQ(sql().value("SELECT count(*) FROM shardline.schema_migrations"),
            std::to_string(catalog_migrations().size()));
}

TEST(CatalogMigrate, AChangedAppliedMigrationIsAnErrorNamingTheFile) {
  auto catalog = fresh_catalog();
  catalog.migrate();
  exec(sql(), "UPDATE shardline.schema_migrations SET checksum = repeat('0', 64) WHERE version = 1");
  const auto e = message_of([&] { catalog.migrate(); });
  EXPECT_NE(e.find("migrations/0001_catalog.sql was changed after it was applied"), std::string::npos) << e;
  EXPECT_NE(e.find(std::string(catalog_migrations().front().checksum)), std::string::npos) << e;
  EXPECT_NE(e.find(std::to_string(test_cluster().primary_port(0))), std::string::npos) << e;
}

// ---- directory -------------------------------------------------------------------------------

TEST(CatalogDirectory, SeedsFromTheConfigOnceThenReadsTheCatalog) {
  auto catalog = fresh_catalog();
  const auto cfg = cluster_config();
  EXPECT_NE(message_of([&] { catalog.load_or_seed(cfg); }).find("schema shardline is missing"), std::string::npos);
  catalog.migrate();

  const auto seeded = catalog.load_or_seed(cfg);
  const auto bootstrap = DirectorySnapshot::from_config(cfg);
  EXPECT_EQ(seeded->epoch(), 1u);
  EXPECT_EQ(seeded->shard_names(), bootstrap->shard_names());
  ASSERT_EQ(seeded->logical_shards(), bootstrap->logical_shards());
  for (int l = 0; l < seeded->logical_shards(); ++l) ASSERT_EQ(seeded->physical(l), bootstrap->physical(l)) << l;
  const auto c = sql();
  EXPECT_EQ(c.value("SELECT count(*) FROM shardline.directory"), "1024");
  EXPECT_EQ(c.value("SELECT shard FROM shardline.directory WHERE logical = 1023"), "s1");

  // A second start reads what is stored (here: moved by hand) and does not reseed.
  exec(c, "UPDATE shardline.directory SET shard = 's1' WHERE logical = 3");
  const auto again = catalog.load_or_seed(cfg);
  EXPECT_EQ(again->epoch(), 2u);
  EXPECT_EQ(again->shard_name(again->physical(3)), "s1");
  EXPECT_EQ(again->shard_name(again->physical(4)), "s0");
  EXPECT_EQ(c.value("SELECT epoch FROM shardline.directory_epoch"), "2");
  EXPECT_EQ(catalog.load(cfg)->shard_name(catalog.load(cfg)->physical(3)), "s1");
}

TEST(CatalogDirectory, ProxiesStartingTogetherSeedOnce) {
  auto catalog = fresh_catalog();
  catalog.migrate();
  const auto cfg = cluster_config();
  std::vector<std::thread> threads;
  std::vector<std::uint64_t> epochs(6, 0);
  for (std::size_t i = 0; i < epochs.size(); ++i)
    threads.emplace_back([&, i] { epochs[i] = Catalog(catalog.conninfo()).load_or_seed(cfg)->epoch(); });
  for (auto& t : threads) t.join();
  for (const auto e : epochs) EXPECT_EQ(e, 1u);
  EXPECT_EQ(sql().value("SELECT count(*) FROM shardline.directory"), "1024");
}

TEST(CatalogDirectory, AStoredDirectoryThatDoesNotFitTheConfigIsRefused) {
  auto catalog = fresh_catalog();
  catalog.migrate();
  const auto cfg = cluster_config();
  catalog.load_or_seed(cfg);
  const auto c = sql();
  exec(c, "UPDATE shardline.directory SET shard = 'ghost' WHERE logical = 77");
  auto e = message_of([&] { catalog.load_or_seed(cfg); });
  EXPECT_NE(e.find("logical shard 77 belongs to shard 'ghost', which is not configured (shards: s0, s1)"),
            std::string::npos)
      << e;
  exec(c, "UPDATE shardline.directory SET shard = 's0' WHERE logical = 77");
  exec(c, "DELETE FROM shardline.directory WHERE logical IN (5, 900)");
  e = message_of([&] { catalog.load(cfg); });
  EXPECT_NE(e.find("logical shard 5 has no owner"), std::string::npos) << e;
  auto smaller = cfg;
  smaller.sharding.logical_shards = 4;
  exec(c, "INSERT INTO shardline.directory VALUES (5, 's0'), (900, 's1')");
  e = message_of([&] { catalog.load(smaller); });
  EXPECT_NE(e.find("logical shard 4 is out of range"), std::string::npos) << e;
}

TEST(CatalogDirectory, OneEpochPerChangingTransaction) {
  auto catalog = fresh_catalog();
  catalog.migrate();
  catalog.load_or_seed(cluster_config());
  const auto c = sql();
  auto epoch = [&] { return std::stoi(c.value("SELECT epoch FROM shardline.directory_epoch")); };
  ASSERT_EQ(epoch(), 1);
  exec(c, "BEGIN; UPDATE shardline.directory SET shard = 's1' WHERE logical < 10; "
          "UPDATE shardline.directory SET shard = 's0' WHERE logical = 1000; COMMIT");
  EXPECT_EQ(epoch(), 2);
  exec(c, "UPDATE shardline.directory SET shard = shard WHERE logical < 100");  // no change
  EXPECT_EQ(epoch(), 2);
  exec(c, "BEGIN; UPDATE shardline.directory SET shard = 's0' WHERE logical = 1; ROLLBACK");
  EXPECT_EQ(epoch(), 2);
  exec(c, "TRUNCATE shardline.directory");
  EXPECT_EQ(epoch(), 3);
  EXPECT_EQ(catalog.load_or_seed(cluster_config())->epoch(), 4u);  // reseeded: one more step
}

// ---- watcher ---------------------------------------------------------------------------------

TEST(DirectoryWatcher, AnUpdateByPlainSqlReachesTheCallbackThroughListen) {
  auto catalog = fresh_catalog();
  catalog.migrate();
  const auto cfg = cluster_config();
  const auto start = catalog.load_or_seed(cfg);
  Inbox inbox;
  DirectoryWatcherOptions options;
  options.poll_interval = 60s;  // only a notification can arrive within the test's 2 s
  DirectoryWatcher watcher(catalog.conninfo(), cfg, start->epoch(), inbox.callback(), options);
  ASSERT_TRUE(wait_until([&] { return watcher.connected(); }, 5s));
  ASSERT_EQ(start->shard_name(start->physical(3)), "s0");

  const auto c = sql();
  const auto t0 = Clock::now();
  exec(c, "UPDATE shardline.directory SET shard = 's1' WHERE logical = 3");
  const auto got = inbox.wait_epoch(start->epoch() + 1, 2s);
  ASSERT_NE(got, nullptr) << "no callback within 2 s";
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
  std::cout << "[ info ] UPDATE + commit -> watcher callback: " << us / 1000.0 << " ms\n";
  EXPECT_EQ(got->epoch(), start->epoch() + 1);
  EXPECT_EQ(got->shard_name(got->physical(3)), "s1");
  EXPECT_EQ(got->shard_name(got->physical(2)), "s0");
  EXPECT_EQ(inbox.count(), 1u);
  EXPECT_EQ(watcher.epoch(), start->epoch() + 1);

  const auto s0 = Clock::now();
  watcher.stop();
  EXPECT_LT(Clock::now() - s0, 1s);
  EXPECT_FALSE(watcher.connected());
}

TEST(DirectoryWatcher, PollingFindsAnEpochChangeWithoutNotification) {
  auto catalog = fresh_catalog();
  catalog.migrate();
  const auto cfg = cluster_config();
  const auto start = catalog.load_or_seed(cfg);
  Inbox inbox;
  DirectoryWatcherOptions options;
  options.poll_interval = 200ms;
  DirectoryWatcher watcher(catalog.conninfo(), cfg, start->epoch(), inbox.callback(), options);
  ASSERT_TRUE(wait_until([&] { return watcher.connected(); }, 5s));
  // Writing the epoch row directly bypasses the directory trigger, so nothing is notified.
  exec(sql(), "UPDATE shardline.directory_epoch SET epoch = epoch + 10");
  const auto got = inbox.wait_epoch(start->epoch() + 10, 2s);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->epoch(), start->epoch() + 10);
}

TEST(DirectoryWatcher, AnInvalidDirectoryIsReportedAndTheOldOneKept) {
  auto catalog = fresh_catalog();
  catalog.migrate();
  const auto cfg = cluster_config();
  const auto start = catalog.load_or_seed(cfg);
  Inbox inbox;
  DirectoryWatcherOptions options;
  options.on_error = inbox.error_callback();
  DirectoryWatcher watcher(catalog.conninfo(), cfg, start->epoch(), inbox.callback(), options);
  ASSERT_TRUE(wait_until([&] { return watcher.connected(); }, 5s));
  const auto c = sql();
  exec(c, "UPDATE shardline.directory SET shard = 'ghost' WHERE logical = 12");
  EXPECT_TRUE(inbox.wait_error("logical shard 12 belongs to shard 'ghost'", 2s));
  EXPECT_EQ(inbox.count(), 0u);
  EXPECT_EQ(watcher.epoch(), start->epoch());
  exec(c, "UPDATE shardline.directory SET shard = 's1' WHERE logical = 12");
  const auto got = inbox.wait_epoch(start->epoch() + 2, 2s);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->shard_name(got->physical(12)), "s1");
}

TEST(DirectoryWatcher, ReconnectsAfterItsSessionIsKilledAndCatchesUp) {
  auto catalog = fresh_catalog();
  catalog.migrate();
  const auto cfg = cluster_config();
  const auto start = catalog.load_or_seed(cfg);
  Inbox inbox;
  DirectoryWatcherOptions options;
  options.poll_interval = 60s;
  options.min_backoff = 300ms;  // the change below lands while the watcher is not listening
  options.on_error = inbox.error_callback();
  DirectoryWatcher watcher(catalog.conninfo(), cfg, start->epoch(), inbox.callback(), options);
  ASSERT_TRUE(wait_until([&] { return watcher.connected(); }, 5s));
  const int pid = watcher.backend_pid();
  const auto c = sql();
  EXPECT_EQ(c.value("SELECT pg_terminate_backend(" + std::to_string(pid) + ")"), "t");
  ASSERT_TRUE(inbox.wait_error("retrying in 300 ms", 2s));
  exec(c, "UPDATE shardline.directory SET shard = 's0' WHERE logical = 1000");
  const auto got = inbox.wait_epoch(start->epoch() + 1, 3s);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->shard_name(got->physical(1000)), "s0");
  EXPECT_TRUE(watcher.connected());
  EXPECT_NE(watcher.backend_pid(), pid);
}

TEST(DirectoryWatcher, SurvivesACatalogServerRestart) {
  auto catalog = fresh_catalog();
  catalog.migrate();
  const auto cfg = cluster_config();
  const auto start = catalog.load_or_seed(cfg);
  Inbox inbox;
  DirectoryWatcherOptions options;
  options.poll_interval = 60s;
  options.max_backoff = 400ms;
  options.on_error = inbox.error_callback();
  DirectoryWatcher watcher(catalog.conninfo(), cfg, start->epoch(), inbox.callback(), options);
  ASSERT_TRUE(wait_until([&] { return watcher.connected(); }, 5s));

  auto& cluster = test_cluster();
  const auto& primary = *std::find_if(cluster.servers().begin(), cluster.servers().end(),
                                      [](const auto& s) { return s.shard == "s0" && s.is_primary(); });
  cluster.stop_server(primary);
  EXPECT_TRUE(wait_until([&] { return !watcher.connected(); }, 5s));
  EXPECT_TRUE(inbox.wait_error("cannot connect", 5s));  // retries while the server is down
  cluster.start_server(primary);
  ASSERT_TRUE(wait_until([&] { return watcher.connected(); }, 5s));
  exec(sql(), "UPDATE shardline.directory SET shard = 's1' WHERE logical = 0");
  const auto got = inbox.wait_epoch(start->epoch() + 1, 2s);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->shard_name(got->physical(0)), "s1");

  // stop() is prompt even while the watcher waits to reconnect.
  cluster.stop_server(primary);
  EXPECT_TRUE(wait_until([&] { return !watcher.connected(); }, 5s));
  const auto s0 = Clock::now();
  watcher.stop();
  EXPECT_LT(Clock::now() - s0, 1s);
  cluster.start_server(primary);
}

// ---- key types -------------------------------------------------------------------------------

shardline::config::ShardedTable table(std::string name, std::string key = "tenant_id",
                                      std::optional<std::string> type = std::nullopt) {
  return {std::move(name), std::move(key), std::move(type)};
}

TEST(CatalogKeyTypes, LearnedFromTheHomeShardForEveryKeyType) {
  const auto c = sql(1);
  exec(c, "DROP SCHEMA IF EXISTS kt CASCADE; CREATE SCHEMA kt;"
          "CREATE TABLE kt_small (tenant_id smallint, v int);"
          "CREATE TABLE kt_int (tenant_id integer);"
          "CREATE TABLE kt_big (tenant_id bigint);"
          "CREATE TABLE kt_text (tenant_id text);"
          "CREATE TABLE kt_varchar (tenant_id varchar(20));"
          "CREATE TABLE kt_uuid (tenant_id uuid);"
          "CREATE TABLE kt.events (account_id bigint, tenant_id text)");
  exec(sql(0), "DROP TABLE IF EXISTS kt_only_on_s0; CREATE TABLE kt_only_on_s0 (tenant_id int)");
  auto cfg = cluster_config();
  cfg.sharding.home_shard = "s1";
  cfg.sharding.tables = {table("kt_small"), table("kt_int"), table("kt_big"), table("kt_text"),
                         table("kt_varchar"), table("kt_uuid"), table("kt.events", "account_id", "integer"),
                         table("kt_missing"), table("kt_only_on_s0")};
  const auto types = Catalog::load_key_types(cfg);
  const std::map<std::string, std::string> expected{
      {"kt_small", "smallint"}, {"kt_int", "integer"}, {"kt_big", "bigint"},     {"kt_text", "text"},
      {"kt_varchar", "text"},   {"kt_uuid", "uuid"},   {"kt.events", "bigint"}};
  EXPECT_EQ(types, expected);
}

TEST(CatalogKeyTypes, EveryProblemIsReportedWithTableColumnAndType) {
  const auto c = sql(0);
  exec(c, "DROP TABLE IF EXISTS kt_num, kt_char, kt_nokey, kt_mismatch;"
          "CREATE TABLE kt_num (tenant_id numeric);"
          "CREATE TABLE kt_char (tenant_id char(4));"
          "CREATE TABLE kt_nokey (id int);"
          "CREATE TABLE kt_mismatch (tenant_id uuid)");
  auto cfg = cluster_config();
  cfg.sharding.tables = {table("kt_num"), table("kt_char"), table("kt_nokey"), table("kt_mismatch", "tenant_id", "text")};
  const auto e = message_of([&] { Catalog::load_key_types(cfg); });
  EXPECT_NE(e.find("shard s0"), std::string::npos) << e;
  EXPECT_NE(e.find("sharded table public.kt_num: key column tenant_id has type numeric"), std::string::npos) << e;
  EXPECT_NE(e.find("sharded table public.kt_char: key column tenant_id has type character (bpchar)"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("sharded table public.kt_nokey has no key column tenant_id"), std::string::npos) << e;
  EXPECT_NE(e.find("sharded table public.kt_mismatch: the config says key type text but column tenant_id is uuid"),
            std::string::npos)
      << e;
}

}  // namespace
