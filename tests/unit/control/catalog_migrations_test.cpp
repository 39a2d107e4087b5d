// The migrations compiled into the binary: in version order, each with its file's SHA-256, and
// the first one creating what the catalog code relies on.

#include "proxy/control/catalog_migrations.hpp"

#include <gtest/gtest.h>

#include <string>

#include <fmt/format.h>

namespace {

using shardline::control::catalog_migrations;

TEST(CatalogMigrations, SortedUniqueAndWellFormed) {
  const auto& ms = catalog_migrations();
  ASSERT_FALSE(ms.empty());
  EXPECT_EQ(ms.front().version, 1);
  for (std::size_t i = 0; i < ms.size(); ++i) {
    const auto& m = ms[i];
    if (i > 0) {
      EXPECT_LT(ms[i - 1].version, m.version);
    }
    EXPECT_EQ(m.checksum.size(), 64u) << m.file;
    EXPECT_EQ(m.checksum.find_first_not_of("0123456789abcdef"), std::string::npos) << m.file;
    EXPECT_EQ(std::string(m.file), fmt::format("{:04}_{}.sql", m.version, m.name));
    EXPECT_FALSE(m.sql.empty()) << m.file;
  }
}

TEST(CatalogMigrations, TheFirstCreatesTheCatalogTheCodeReads) {
  const std::string sql(catalog_migrations().front().sql);
  for (const char* needle :
       {"CREATE SCHEMA IF NOT EXISTS shardline", "shardline.schema_migrations", "shardline.directory (",
        "shardline.directory_epoch", "pg_notify('shardline_directory'", "shardline.reshard_jobs",
        "shardline.twopc_log"})
    EXPECT_NE(sql.find(needle), std::string::npos) << needle;
}

}  // namespace
