// `shardline migrate --config FILE DIR [--dry-run]` against a real 2-shard cluster, run as a
// user runs it (the binary, its exit code and output): apply, rerun, dry run, an edited file,
// a failure on one shard then resume, and two runs serialised by the advisory lock. What
// landed where is checked on each shard directly.

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "proxy/control/migrator.hpp"
#include "tests/integration/support/cluster_fixture.hpp"
#include "tests/integration/support/pg_connection.hpp"
#include "tests/integration/support/proxy_config.hpp"

namespace {

using namespace std::chrono_literals;
using shardline::control::LocalCluster;
using shardline::testing::free_port;
using shardline::testing::PgConnection;
using shardline::testing::ProxyConfig;
namespace fs = std::filesystem;

LocalCluster& cluster() { return shardline::testing::test_cluster({.shards = 2, .replicas = 0}); }

struct CliRun {
  int exit_code = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class Migrate : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / fmt::format("shardline-migrate-{}-{}", getpid(), ++counter_);
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "sql");
    std::ofstream(dir_ / "shardline.yaml") << ProxyConfig(cluster(), free_port()).yaml();
    for (int s = 0; s < 2; ++s)
      sql(s, "DROP TABLE IF EXISTS shardline.app_migrations, widgets, gadgets, must_exist, part_a");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& name, const std::string& text) { std::ofstream(dir_ / "sql" / name) << text; }

  CliRun migrate(bool dry_run = false) {
    const int n = ++runs_;
    const fs::path out = dir_ / fmt::format("out{}", n), err = dir_ / fmt::format("err{}", n);
    const std::string cmd = fmt::format("'{}' migrate --config '{}' '{}'{} >'{}' 2>'{}'",
                                        shardline::testing::shardline_binary().string(), (dir_ / "shardline.yaml").string(),
                                        (dir_ / "sql").string(), dry_run ? " --dry-run" : "", out.string(), err.string());
    const int status = std::system(cmd.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
  }

  static PgConnection& conn(int shard) {
    static std::unique_ptr<PgConnection> c[2];
    if (!c[shard]) c[shard] = std::make_unique<PgConnection>(cluster().conninfo(shard));  // the app user, as migrate
    return *c[shard];
  }
  static void sql(int shard, const std::string& q) {
    auto r = conn(shard).exec(q);
    ASSERT_TRUE(r.ok()) << "shard " << shard << ": " << q << ": " << r.message();
  }
  static std::string value(int shard, const std::string& q) { return conn(shard).value(q); }
  /// "version:checksum,..." recorded on a shard.
  static std::string recorded(int shard) {
    if (value(shard, "SELECT to_regclass('shardline.app_migrations') IS NOT NULL") != "t") return "(no table)";
    return value(shard,
                 "SELECT coalesce(string_agg(version || ':' || checksum, ',' ORDER BY version), '') "
                 "FROM shardline.app_migrations");
  }
  std::string sha(const std::string& name) { return shardline::control::sha256_hex(slurp(dir_ / "sql" / name)); }

  fs::path dir_;
  int runs_ = 0;
  static inline int counter_ = 0;
};

TEST_F(Migrate, AppliesInOrderOnEveryShardAndASecondRunAppliesNothing) {
  write("0002_add_price.sql", "ALTER TABLE widgets ADD COLUMN price int NOT NULL DEFAULT 0;\n"
                              "INSERT INTO widgets (id, price) VALUES (1, 10);\n");
  write("0001_widgets.sql", "CREATE TABLE widgets (id int PRIMARY KEY);\n");
  write("README.txt", "not a migration: ignored\n");
  auto r = migrate();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (int s = 0; s < 2; ++s) {
    EXPECT_EQ(recorded(s), fmt::format("1:{},2:{}", sha("0001_widgets.sql"), sha("0002_add_price.sql"))) << s;
    EXPECT_EQ(value(s, "SELECT string_agg(id || '=' || price, ',') FROM widgets"), "1=10") << s;
  }
  EXPECT_NE(r.out.find("shard s0: applied 0001_widgets.sql"), std::string::npos) << r.out;
  EXPECT_LT(r.out.find("shard s1: applied 0001_widgets.sql"), r.out.find("shard s1: applied 0002_add_price.sql"));
  const std::string applied_at = value(1, "SELECT string_agg(applied_at::text, ',') FROM shardline.app_migrations");

  auto again = migrate();
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_EQ(again.out.find("applied 0"), std::string::npos) << again.out;
  EXPECT_NE(again.out.find("up to date"), std::string::npos) << again.out;
  EXPECT_EQ(value(1, "SELECT string_agg(applied_at::text, ',') FROM shardline.app_migrations"), applied_at);
  EXPECT_EQ(value(0, "SELECT count(*) FROM widgets"), "1");  // the INSERT did not run twice
}

TEST_F(Migrate, DryRunListsWhatWouldRunAndChangesNothing) {
  write("0001_widgets.sql", "CREATE TABLE widgets (id int PRIMARY KEY);\n");
  ASSERT_EQ(migrate().exit_code, 0);
  write("0002_gadgets.sql", "CREATE TABLE gadgets (id int);\n");
  auto r = migrate(/*dry_run=*/true);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("shard s0: would apply 0002_gadgets.sql"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("shard s1: would apply 0002_gadgets.sql"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("0001_widgets.sql"), std::string::npos) << r.out;
  for (int s = 0; s < 2; ++s) {
    EXPECT_EQ(value(s, "SELECT to_regclass('gadgets') IS NULL"), "t") << s;
    EXPECT_EQ(recorded(s), fmt::format("1:{}", sha("0001_widgets.sql"))) << s;
  }
  // A dry run on shards that never ran migrate creates nothing either.
  for (int s = 0; s < 2; ++s) sql(s, "DROP TABLE shardline.app_migrations, widgets");
  auto fresh = migrate(true);
  ASSERT_EQ(fresh.exit_code, 0) << fresh.err;
  EXPECT_NE(fresh.out.find("shard s1: would apply 0001_widgets.sql"), std::string::npos) << fresh.out;
  for (int s = 0; s < 2; ++s) EXPECT_EQ(recorded(s), "(no table)") << s;
}

TEST_F(Migrate, AnEditedAppliedFileIsRefusedBeforeAnythingRuns) {
  write("0001_widgets.sql", "CREATE TABLE widgets (id int PRIMARY KEY);\n");
  ASSERT_EQ(migrate().exit_code, 0);
  const std::string original = sha("0001_widgets.sql");
  write("0001_widgets.sql", "CREATE TABLE widgets (id bigint PRIMARY KEY);\n");
  write("0002_gadgets.sql", "CREATE TABLE gadgets (id int);\n");
  auto r = migrate();
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("0001_widgets.sql"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("shard s0"), std::string::npos) << r.err;
  for (int s = 0; s < 2; ++s) {
    EXPECT_EQ(recorded(s), "1:" + original) << s;
    EXPECT_EQ(value(s, "SELECT to_regclass('gadgets') IS NULL"), "t") << s;  // 0002 did not run
  }
}

TEST_F(Migrate, AFailureOnOneShardStopsThereAndARerunResumes) {
  write("0001_widgets.sql", "CREATE TABLE widgets (id int PRIMARY KEY);\n");
  // Fails where must_exist is missing (s1), after creating part_a: nothing of it may stay.
  write("0002_fill.sql", "CREATE TABLE part_a (id int);\nINSERT INTO must_exist VALUES (1);\n");
  write("0003_gadgets.sql", "CREATE TABLE gadgets (id int);\n");
  sql(0, "CREATE TABLE must_exist (id int)");
  auto r = migrate();
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("shard s1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("0002_fill.sql"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("must_exist"), std::string::npos) << r.err;  // PostgreSQL's own message
  EXPECT_EQ(recorded(0), fmt::format("1:{},2:{},3:{}", sha("0001_widgets.sql"), sha("0002_fill.sql"),
                                     sha("0003_gadgets.sql")));
  EXPECT_EQ(recorded(1), fmt::format("1:{}", sha("0001_widgets.sql")));
  EXPECT_EQ(value(1, "SELECT to_regclass('part_a') IS NULL"), "t");   // rolled back whole
  EXPECT_EQ(value(1, "SELECT to_regclass('gadgets') IS NULL"), "t");  // stopped there

  sql(1, "CREATE TABLE must_exist (id int)");  // the fix
  auto resumed = migrate();
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
  EXPECT_EQ(resumed.out.find("shard s0: applied"), std::string::npos) << resumed.out;
  EXPECT_NE(resumed.out.find("shard s1: applied 0002_fill.sql"), std::string::npos) << resumed.out;
  EXPECT_NE(resumed.out.find("shard s1: applied 0003_gadgets.sql"), std::string::npos) << resumed.out;
  EXPECT_EQ(resumed.out.find("0001_widgets.sql"), std::string::npos) << resumed.out;
  for (int s = 0; s < 2; ++s) {
    EXPECT_EQ(recorded(s), recorded(0)) << s;
    EXPECT_EQ(value(s, "SELECT count(*) FROM must_exist"), "1") << s;  // nothing ran twice
  }
}

TEST_F(Migrate, TwoRunsDoNotInterleave) {
  write("0001_widgets.sql", "CREATE TABLE widgets (id int PRIMARY KEY);\n");
  // Another run holds the lock on s0 (as a run does from start to end).
  PgConnection holder(cluster().superuser_conninfo(0));
  ASSERT_EQ(holder.value("SELECT pg_advisory_lock(x'6170706d69677238'::bigint)"), "");
  auto fut = std::async(std::launch::async, [this] { return migrate(); });
  const fs::path out = dir_ / "out1";
  for (int i = 0; i < 400 && slurp(out).find("waiting") == std::string::npos; ++i) std::this_thread::sleep_for(25ms);
  EXPECT_NE(slurp(out).find("another shardline migrate is running"), std::string::npos) << slurp(out);
  EXPECT_EQ(fut.wait_for(0s), std::future_status::timeout);
  for (int s = 0; s < 2; ++s) EXPECT_EQ(value(s, "SELECT to_regclass('widgets') IS NULL"), "t") << s;
  ASSERT_EQ(holder.value("SELECT pg_advisory_unlock(x'6170706d69677238'::bigint)"), "t");
  auto r = fut.get();
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  for (int s = 0; s < 2; ++s) EXPECT_EQ(recorded(s), "1:" + sha("0001_widgets.sql")) << s;
}

TEST_F(Migrate, BadFileNamesAndDirectoriesAreUserErrors) {
  write("1_ok.sql", "SELECT 1;\n");
  write("2-bad name.sql", "SELECT 1;\n");
  auto r = migrate();
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("2-bad name.sql"), std::string::npos) << r.err;
  fs::remove(dir_ / "sql" / "2-bad name.sql");
  write("01_dup.sql", "SELECT 1;\n");
  auto dup = migrate();
  EXPECT_EQ(dup.exit_code, 1);
  EXPECT_NE(dup.err.find("version 1"), std::string::npos) << dup.err;
  fs::remove_all(dir_ / "sql");
  auto missing = migrate();
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("not a directory"), std::string::npos) << missing.err;
  for (int s = 0; s < 2; ++s) EXPECT_EQ(recorded(s), "(no table)") << s;
}

}  // namespace
