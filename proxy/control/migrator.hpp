#pragma once
// `shardline migrate`: the application's own versioned migrations (DIR/NNNN_name.sql), applied
// in version order to the primary of every shard, each file in its own transaction, recorded
// per shard (version, name, SHA-256) in shardline.app_migrations. A run first takes an advisory
// lock on every shard (in config order, so two runs cannot interleave or deadlock), then checks
// every shard's record against the files (an edited, already-applied file is refused before
// anything runs), then applies what each shard lacks, shard by shard. A failure stops the run at
// that shard; nothing of the failed file stays, so a rerun after the fix resumes there.

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace shardline::control {

/// One migration file as read from DIR.
struct AppMigration {
  int version = 0;
  std::string name;      ///< the part after NNNN_
  std::string file;      ///< file name, for messages
  std::string checksum;  ///< hex SHA-256 of the file's bytes
  std::string sql;
};

/// What went wrong, and whose fault: a user error (bad files, an edited migration: exit 1) or a
/// runtime failure (a shard unreachable, a migration failing: exit 2).
struct MigrateError {
  int exit_code = 0;  ///< 0: no error
  std::string message;
};

/// Reads DIR's NNNN_name.sql files in version order. Other .sql names, duplicate versions and
/// unreadable files are user errors naming the file.
std::vector<AppMigration> read_app_migrations(const std::filesystem::path& dir, MigrateError& error);

/// Hex SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);

/// Applies (or with `dry_run` only reports) what every shard lacks; progress lines go to `out`.
MigrateError apply_app_migrations(const config::Config& cfg, const std::vector<AppMigration>& files, bool dry_run,
                                  std::ostream& out);

}  // namespace shardline::control
