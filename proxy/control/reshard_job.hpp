#pragma once
// One reshard job driven through its phases (SPEC.md section 8): copy (a publication on the
// source whose row filter selects the moved rows, a subscription with initial copy on the
// target), catchup, verify (the logical shard held and fenced just long enough to take a snapshot
// on each side at one WAL position; counts and checksums are computed in those snapshots with
// writes flowing again), cutover (held and fenced again until the target has caught up, then the
// directory flip), cleanup (replication objects dropped, moved rows
// deleted from the source in throttled batches), done. Before the flip every failure and every
// RESHARD ABORT rolls everything back; after it, cleanup is resumed until it completes.
//
// Blocking libpqxx work: runs on the reshard service's worker thread only. The job's state is
// its row in shardline.reshard_jobs; this object keeps nothing the catalog does not.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <pqxx/connection>
#include <vector>

#include "config/config.hpp"
#include "proxy/control/reshard_sql.hpp"

namespace shardline::control {

/// A job's row in shardline.reshard_jobs (the columns the runner needs).
struct ReshardJobRow {
  std::int64_t id = 0;
  std::string kind = "move";  ///< move | isolate
  int logical = 0;
  std::optional<std::string> tenant;
  std::string source, target, phase;
  /// Tenants pinned when the job started (a move leaves their rows where their pins say).
  std::vector<std::string> pinned;
};

struct ReshardOptions {
  /// How long a cutover waits for in-flight transactions on the logical shard to finish before
  /// it is abandoned (released, retried later).
  std::chrono::milliseconds drain_timeout{2000};
  /// Abandoned cutovers before the job fails.
  int cutover_attempts = 5;
  /// How long the target may take to apply the source's position once writes are fenced.
  std::chrono::milliseconds catchup_timeout{10000};
  /// Catch-up is done when the slot's unconfirmed WAL is below this (then the cutover starts).
  std::int64_t catchup_lag_bytes = 1 << 20;
  /// Rows deleted from the source per cleanup batch, and the pause between batches.
  int delete_batch = 2000;
  std::chrono::milliseconds delete_pause{5};
  /// Test hook (SHARDLINE_TEST_RESHARD_PHASE_DELAY_MS): a pause at the start of every phase so
  /// a test can kill the proxy in it.
  std::chrono::milliseconds phase_delay{0};
};

/// A job that stopped before the flip (RESHARD ABORT, a failed check): rolled back.
struct ReshardAborted : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class ReshardJob {
 public:
  ReshardJob(const config::Config& cfg, std::string catalog_conninfo, ReshardJobRow row, ReshardOptions options,
             std::vector<ReshardTable> tables);

  /// Drives the job to done, aborted or failed. `recovering`: the runner that started it stopped
  /// (a proxy crash): a job before its flip is rolled back (aborted), one after it resumes
  /// cleanup. Throws only when cleanup cannot complete now (the caller retries later).
  void run(bool recovering);

  /// The predicate selecting the job's rows of `t` (logical shard or tenant).
  std::string filter(const ReshardTable& t) const;

 private:
  bool isolating() const { return row_.tenant.has_value(); }
  /// "logical shard 7" or "tenant '42'", for messages.
  std::string what() const;
  /// SQL run in the catalog: the hold of a cutover (directory_holds or tenant_holds).
  std::string hold_sql() const;
  /// SQL run on the source: the exclusive fence lock that drains the moved rows' writers.
  std::string fence_lock_sql() const;
  /// The flip's SQL: on the source (refuse the moved rows), on the target (accept them), in
  /// the catalog (the directory row or the pin; the hold goes in the same transaction).
  std::string flip_source_sql() const;
  std::string flip_target_sql() const;
  std::string flip_catalog_sql() const;
  std::string shard_conninfo(const std::string& shard) const;
  void set_phase(const std::string& phase);
  bool abort_requested();
  void setup();
  void wait_copy();
  void wait_catchup();
  /// One attempt: verify, then hold, fence, drain, catch up, flip. False when abandoned (retry).
  bool try_cutover();
  /// Holds the rows in every proxy (phase `phase`), fences them on the source (`fence` keeps the
  /// lock) and waits until the target has applied every change before the fence. How long the
  /// hold has lasted, or nothing when abandoned (hold released, attempt counted).
  std::optional<std::chrono::milliseconds> barrier(pqxx::connection& cat, pqxx::connection& fence,
                                                   pqxx::connection& dst, const std::string& phase);
  void unfence(pqxx::connection& fence);
  void release_hold(pqxx::connection& cat, bool abandoned);
  /// Counts and checksums of the rows match on both sides at one position (taken under a
  /// barrier, computed after it). False when the barrier was abandoned; throws on a mismatch.
  bool verify(pqxx::connection& cat);
  void cleanup();
  /// Undoes everything before the flip; the job ends `state` with `error`.
  void roll_back(const std::string& state, const std::string& error);
  void drop_replication();
  void delete_rows(const std::string& shard);
  void update_progress();
  void pause_for_tests();

  const config::Config& cfg_;
  std::string catalog_;
  ReshardJobRow row_;
  ReshardOptions options_;
  std::vector<ReshardTable> tables_;
  std::string name_;  ///< publication, subscription and slot name
};

}  // namespace shardline::control
