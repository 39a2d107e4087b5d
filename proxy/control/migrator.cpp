#include "proxy/control/migrator.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <pqxx/pqxx>
#include <regex>
#include <sstream>

#include "proxy/control/conninfo.hpp"

namespace shardline::control {

namespace {

/// pg_advisory_lock key held by a `shardline migrate` run on each shard ("appmigr8").
constexpr std::int64_t kAppMigrateLockKey = 0x6170706d69677238;

constexpr std::string_view kCreateTable = R"sql(
CREATE SCHEMA IF NOT EXISTS shardline;
CREATE TABLE IF NOT EXISTS shardline.app_migrations (
    version    int PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
))sql";

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

struct Applied {
  std::string name, checksum;
};

struct ShardRun {
  const config::Shard* shard;
  std::unique_ptr<pqxx::connection> conn;
  std::map<int, Applied> applied;
};

}  // namespace

std::string sha256_hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

std::vector<AppMigration> read_app_migrations(const std::filesystem::path& dir, MigrateError& error) {
  std::vector<AppMigration> out;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    error = {1, fmt::format("{}: not a directory of migrations", dir.string())};
    return {};
  }
  static const std::regex kName("^([0-9]+)_([A-Za-z0-9_]+)\\.sql$");
  std::map<int, std::string> seen;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string fname = entry.path().filename().string();
    if (entry.path().extension() != ".sql") continue;
    std::smatch m;
    if (!std::regex_match(fname, m, kName) || m[1].length() > 9) {
      error = {1, fmt::format("{}: a migration must be named NNNN_name.sql (digits, '_', letters, digits or '_')",
                              entry.path().string())};
      return {};
    }
    const int version = std::stoi(m[1].str());
    if (auto it = seen.find(version); it != seen.end()) {
      error = {1, fmt::format("{}: version {} is already used by {}", entry.path().string(), version, it->second)};
      return {};
    }
    seen.emplace(version, fname);
    std::ifstream f(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    if (!f) {
      error = {1, fmt::format("{}: cannot be read", entry.path().string())};
      return {};
    }
    AppMigration mig{version, m[2].str(), fname, {}, ss.str()};
    mig.checksum = sha256_hex(mig.sql);
    out.push_back(std::move(mig));
  }
  if (ec) error = {1, fmt::format("{}: {}", dir.string(), ec.message())};
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.version < b.version; });
  return out;
}

MigrateError apply_app_migrations(const config::Config& cfg, const std::vector<AppMigration>& files, bool dry_run,
                                  std::ostream& out) {
  std::vector<ShardRun> runs;
  // 1. Connect and lock every shard, in config order.
  for (const auto& sh : cfg.shards) {
    ShardRun run{&sh, nullptr, {}};
    const std::string where = fmt::format("shard {} ({}:{})", sh.name, sh.primary.host, sh.primary.port);
    try {
      run.conn = std::make_unique<pqxx::connection>(libpq_conninfo(cfg.backend, sh.primary, "shardline migrate"));
      {
        pqxx::nontransaction nt(*run.conn);
        if (!nt.exec_params1("SELECT pg_try_advisory_lock($1)", kAppMigrateLockKey)[0].as<bool>()) {
          out << fmt::format("{}: another shardline migrate is running; waiting for it\n", where) << std::flush;
          nt.exec_params("SELECT pg_advisory_lock($1)", kAppMigrateLockKey);
        }
        if (!dry_run) {
          nt.exec("SET client_min_messages = warning");  // IF NOT EXISTS notices are expected
          nt.exec(std::string(kCreateTable));
        }
        if (nt.exec1("SELECT to_regclass('shardline.app_migrations') IS NOT NULL")[0].as<bool>()) {
          for (const auto& row : nt.exec("SELECT version, name, checksum FROM shardline.app_migrations"))
            run.applied[row.at(0).as<int>()] = Applied{row.at(1).as<std::string>(), row.at(2).as<std::string>()};
        }
      }
    } catch (const std::exception& e) {
      return {2, fmt::format("{}: {}", where, trimmed(e.what()))};
    }
    runs.push_back(std::move(run));
  }
  // 2. Refuse edited files before anything runs anywhere.
  for (const auto& run : runs) {
    for (const auto& f : files) {
      auto it = run.applied.find(f.version);
      if (it != run.applied.end() && it->second.checksum != f.checksum)
        return {1, fmt::format("{}: already applied on shard {} with checksum {}, but the file now has checksum {}; "
                               "an applied migration must not change (add a new migration instead)",
                               f.file, run.shard->name, it->second.checksum, f.checksum)};
    }
  }
  // 3. Apply what each shard lacks, in version order, each file in its own transaction.
  int applied = 0;
  for (auto& run : runs) {
    for (const auto& f : files) {
      if (run.applied.contains(f.version)) continue;
      if (dry_run) {
        out << fmt::format("shard {}: would apply {}\n", run.shard->name, f.file);
        ++applied;
        continue;
      }
      const auto started = std::chrono::steady_clock::now();
      try {
        pqxx::work tx(*run.conn);
        tx.exec(f.sql);
        tx.exec_params("INSERT INTO shardline.app_migrations (version, name, checksum) VALUES ($1, $2, $3)", f.version,
                       f.name, f.checksum);
        tx.commit();
      } catch (const std::exception& e) {
        return {2, fmt::format("shard {}: {} failed, nothing of it was applied there; later migrations and shards "
                               "were not migrated; rerun after fixing it: {}",
                               run.shard->name, f.file, trimmed(e.what()))};
      }
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
      out << fmt::format("shard {}: applied {} ({} ms)\n", run.shard->name, f.file, ms.count()) << std::flush;
      run.applied[f.version] = Applied{f.name, f.checksum};
      ++applied;
    }
  }
  if (applied == 0)
    out << fmt::format("every shard is up to date ({} migration(s))\n", files.size());
  else if (dry_run)
    out << fmt::format("dry run: {} migration(s) would be applied; nothing was changed\n", applied);
  else
    out << fmt::format("applied {} migration(s) on {} shard(s)\n", applied, runs.size());
  return {};
}

}  // namespace shardline::control
