#include "proxy/control/reshard_job.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <future>
#include <optional>
#include <pqxx/pqxx>
#include <thread>

#include "proxy/control/conninfo.hpp"

namespace shardline::control {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kApplicationName = "shardline-reshard";

void sleep_for(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

pqxx::result exec_sql(pqxx::connection& c, const std::string& sql) {
  pqxx::nontransaction n(c);
  return n.exec(sql);
}

/// Runs `sql` in one transaction (for statements that need SET LOCAL or must apply together).
void run_in_transaction(pqxx::connection& c, const std::string& sql) {
  pqxx::work w(c);
  w.exec(sql);
  w.commit();
}

std::string text(const pqxx::result& r) { return r.empty() || r[0][0].is_null() ? "" : r[0][0].c_str(); }

/// `DROP SUBSCRIPTION` etc. while the target is busy: retried on lock timeouts.
template <class F>
void with_lock_retries(F&& f) {
  for (int attempt = 0;; ++attempt) {
    try {
      f();
      return;
    } catch (const pqxx::sql_error& e) {
      if (e.sqlstate() != "55P03" || attempt >= 20) throw;
      sleep_for(std::chrono::milliseconds(100));
    }
  }
}

/// Waits (at most `timeout`) until every proxy seen in the last 10 s routes with epoch >= `epoch`;
/// a proxy whose watcher is slow to check (a loaded machine: seen taking seconds) still counts,
/// so cleanup does not delete rows it may still read from the source;
/// returns how many still lag behind.
int wait_for_proxies(pqxx::connection& cat, std::int64_t epoch, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const int behind = std::stoi(text(exec_sql(cat, fmt::format("SELECT count(*) FROM shardline.proxy_epochs WHERE "
                                                                "seen_at > now() - interval '10 s' AND epoch < {}",
                                                                epoch))));
    if (behind == 0 || Clock::now() > deadline) return behind;
    sleep_for(std::chrono::milliseconds(2));
  }
}

std::int64_t current_epoch(pqxx::connection& cat) {
  return std::stoll(text(exec_sql(cat, "SELECT epoch FROM shardline.directory_epoch")));
}

}  // namespace

ReshardJob::ReshardJob(const config::Config& cfg, std::string catalog_conninfo, ReshardJobRow row,
                       ReshardOptions options, std::vector<ReshardTable> tables)
    : cfg_(cfg),
      catalog_(std::move(catalog_conninfo)),
      row_(std::move(row)),
      options_(options),
      tables_(std::move(tables)),
      name_(job_object_name(row_.id)) {
  // A table whose key type cannot hold the tenant has none of its rows: it stays out of the job.
  if (isolating())
    std::erase_if(tables_, [&](const ReshardTable& t) { return tenants_of_type(t, {*row_.tenant}).empty(); });
}

std::string ReshardJob::shard_conninfo(const std::string& shard) const {
  const config::Shard* s = cfg_.find_shard(shard);
  if (s == nullptr) throw ReshardAborted(fmt::format("shard '{}' is not configured", shard));
  return libpq_conninfo(cfg_.control_role(), s->primary, kApplicationName);
}

std::string ReshardJob::filter(const ReshardTable& t) const {
  return row_.tenant ? tenant_filter_sql(t, *row_.tenant)
                     : move_filter_sql(t, cfg_.sharding.logical_shards, row_.logical, row_.pinned);
}

std::string ReshardJob::what() const {
  return isolating() ? "tenant " + sql_literal(*row_.tenant) : "logical shard " + std::to_string(row_.logical);
}

std::string ReshardJob::hold_sql() const {
  if (isolating())
    return fmt::format("INSERT INTO shardline.tenant_holds (tenant, shard, job) VALUES ({}, {}, {}) ON CONFLICT "
                       "(tenant) DO NOTHING",
                       sql_literal(*row_.tenant), sql_literal(row_.source), row_.id);
  return fmt::format("INSERT INTO shardline.directory_holds (logical, job) VALUES ({0}, {1}) ON CONFLICT (logical) DO "
                     "NOTHING",
                     row_.logical, row_.id);
}

std::string ReshardJob::fence_lock_sql() const {
  if (isolating())
    return fmt::format("SELECT pg_advisory_lock({}, hashtext({}))", kTenantFenceLockClass, sql_literal(*row_.tenant));
  return fmt::format("SELECT pg_advisory_lock({}, {})", kFenceLockClass, row_.logical);
}

std::string ReshardJob::flip_source_sql() const {
  if (isolating())
    return fmt::format("INSERT INTO shardline.tenant_fence (tenant, fenced, job) VALUES ({0}, true, {1}) ON CONFLICT "
                       "(tenant) DO UPDATE SET fenced = true, job = EXCLUDED.job",
                       sql_literal(*row_.tenant), row_.id);
  return fmt::format("INSERT INTO shardline.fence (logical, job) VALUES ({0}, {1}) ON CONFLICT (logical) DO UPDATE SET "
                     "job = EXCLUDED.job",
                     row_.logical, row_.id);
}

std::string ReshardJob::flip_target_sql() const {
  // A tenant pinned here is exempt from the fence of its hash's logical shard (if that moved away).
  if (isolating())
    return fmt::format("INSERT INTO shardline.tenant_fence (tenant, fenced, job) VALUES ({0}, false, {1}) ON CONFLICT "
                       "(tenant) DO UPDATE SET fenced = false, job = EXCLUDED.job",
                       sql_literal(*row_.tenant), row_.id);
  return fmt::format("DELETE FROM shardline.fence WHERE logical = {}", row_.logical);
}

std::string ReshardJob::flip_catalog_sql() const {
  const std::string done = fmt::format("DELETE FROM shardline.directory_holds WHERE job = {0}; DELETE FROM "
                                       "shardline.tenant_holds WHERE job = {0}; UPDATE shardline.reshard_jobs SET "
                                       "state = 'cleanup', updated_at = now() WHERE id = {0}",
                                       row_.id);
  if (isolating())
    return fmt::format("INSERT INTO shardline.pins (tenant, shard) VALUES ({}, {}) ON CONFLICT (tenant) DO UPDATE SET "
                       "shard = EXCLUDED.shard; {}",
                       sql_literal(*row_.tenant), sql_literal(row_.target), done);
  return fmt::format("UPDATE shardline.directory SET shard = {} WHERE logical = {}; {}", sql_literal(row_.target),
                     row_.logical, done);
}

void ReshardJob::pause_for_tests() {
  if (options_.phase_delay.count() > 0) sleep_for(options_.phase_delay);
}

void ReshardJob::set_phase(const std::string& phase) {
  pqxx::connection c(catalog_);
  exec_sql(c, fmt::format("UPDATE shardline.reshard_jobs SET state = {}, updated_at = now() WHERE id = {}",
                     sql_literal(phase), row_.id));
  row_.phase = phase;
  spdlog::info("reshard job {}: phase {}", row_.id, phase);
  pause_for_tests();
}

bool ReshardJob::abort_requested() {
  pqxx::connection c(catalog_);
  return text(exec_sql(c, fmt::format("SELECT abort_requested FROM shardline.reshard_jobs WHERE id = {}", row_.id))) == "t";
}

void ReshardJob::run(bool recovering) {
  if (recovering && row_.phase != "cleanup") {
    roll_back("aborted", fmt::format("the proxy running this job stopped during phase {}; rolled back on restart",
                                     row_.phase));
    return;
  }
  try {
    if (row_.phase == "copy") {
      setup();
      wait_copy();
      set_phase("catchup");
    }
    for (int attempt = 1; row_.phase != "cleanup"; ++attempt) {
      wait_catchup();
      if (try_cutover()) break;
      if (attempt >= options_.cutover_attempts)
        throw ReshardAborted(fmt::format("the cutover was abandoned {} times: transactions on the moved rows did "
                                         "not finish within {} ms each time",
                                         attempt, options_.drain_timeout.count()));
      set_phase("catchup");
      sleep_for(std::chrono::milliseconds(500));
    }
  } catch (const std::exception& e) {
    if (row_.phase == "cleanup") throw;  // past the flip: cleanup is retried
    const bool aborted = abort_requested();
    roll_back(aborted ? "aborted" : "failed", aborted ? "aborted by RESHARD ABORT" : e.what());
    return;
  }
  cleanup();
}

void ReshardJob::setup() {
  pause_for_tests();
  pqxx::connection src(shard_conninfo(row_.source));
  pqxx::connection dst(shard_conninfo(row_.target));
  run_in_transaction(src, fence_schema_sql());
  run_in_transaction(dst, fence_schema_sql());
  if (isolating()) exec_sql(src, fence_check_sql({}, {*row_.tenant}));
  else exec_sql(src, fence_check_sql({row_.logical}));
  for (const auto& t : tables_) {
    exec_sql(src, fence_function_sql(t, cfg_.sharding.logical_shards));
    const bool has = text(exec_sql(src, fmt::format("SELECT count(*) FROM pg_trigger WHERE tgrelid = {}::regclass AND "
                                               "tgname = 'shardline_fence'",
                                               sql_literal(t.qualified())))) != "0";
    if (has) continue;
    // CREATE TRIGGER waits for the table's running writers: bounded, retried.
    with_lock_retries([&] { run_in_transaction(src, "SET LOCAL lock_timeout = '500ms';" + fence_trigger_sql(t)); });
  }
  exec_sql(src, fmt::format("INSERT INTO shardline.reshard_marker (job, token) VALUES ({}, 0) ON CONFLICT (job) DO NOTHING",
                       row_.id));
  std::int64_t total = 0;
  std::string tables;
  for (const auto& t : tables_) {
    total += std::stoll(text(exec_sql(src, fmt::format("SELECT count(*) FROM {} WHERE {}", t.qualified(), filter(t)))));
    tables += fmt::format("{} WHERE {}, ", t.qualified(), filter(t));
  }
  {
    pqxx::connection c(catalog_);
    exec_sql(c, fmt::format("UPDATE shardline.reshard_jobs SET rows_total = {} WHERE id = {}", total, row_.id));
  }
  exec_sql(src, fmt::format("DROP PUBLICATION IF EXISTS {0}; CREATE PUBLICATION {0} FOR TABLE {1}shardline.reshard_marker "
                       "WHERE (job = {2})",
                       name_, tables, row_.id));
  exec_sql(dst, fmt::format("CREATE SUBSCRIPTION {0} CONNECTION {1} PUBLICATION {0} WITH (copy_data = true, "
                       "slot_name = '{0}')",
                       name_, sql_literal(shard_conninfo(row_.source))));
  spdlog::info("reshard job {}: copying {} rows of {} from {} to {}", row_.id, total, what(), row_.source, row_.target);
}

void ReshardJob::update_progress() {
  pqxx::connection src(shard_conninfo(row_.source));
  pqxx::connection dst(shard_conninfo(row_.target));
  const std::string lag = text(exec_sql(src, fmt::format("SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), "
                                                    "confirmed_flush_lsn), 0)::bigint FROM pg_replication_slots "
                                                    "WHERE slot_name = '{}'",
                                                    name_)));
  // Rows copied: the copy's own counter while a table copies, the table's rows once it is ready
  // (a ready table's count is exact: it includes what catch-up applied).
  std::int64_t copied = 0;
  const auto states = exec_sql(dst, fmt::format("SELECT n.nspname, c.relname, r.srsubstate, coalesce(p.tuples_processed, 0) "
                                           "FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid "
                                           "JOIN pg_class c ON c.oid = r.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                                           "LEFT JOIN pg_stat_progress_copy p ON p.relid = r.srrelid "
                                           "WHERE s.subname = '{}'",
                                           name_));
  for (const auto& st : states) {
    for (const auto& t : tables_) {
      if (t.schema != st[0].c_str() || t.table != st[1].c_str()) continue;
      const std::string state = st[2].c_str();
      copied += state == "r" || state == "s"
                    ? std::stoll(text(exec_sql(dst, fmt::format("SELECT count(*) FROM {} WHERE {}", t.qualified(), filter(t)))))
                    : st[3].as<std::int64_t>();
    }
  }
  pqxx::connection c(catalog_);
  exec_sql(c, fmt::format("UPDATE shardline.reshard_jobs SET rows_copied = {}, lag_bytes = {}, updated_at = now() WHERE id = {}",
                     copied, lag.empty() ? "0" : lag, row_.id));
}

void ReshardJob::wait_copy() {
  pqxx::connection dst(shard_conninfo(row_.target));
  const std::string sub = sql_literal(name_);
  for (;;) {
    if (abort_requested()) throw ReshardAborted("aborted by RESHARD ABORT");
    const auto r = exec_sql(dst, fmt::format("SELECT count(*), count(*) FILTER (WHERE srsubstate IN ('r', 's')), "
                                        "(SELECT coalesce(sum(sync_error_count + apply_error_count), 0) FROM "
                                        "pg_stat_subscription_stats st WHERE st.subname = {0}) "
                                        "FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid "
                                        "WHERE s.subname = {0}",
                                        sub));
    update_progress();
    if (r[0][2].as<std::int64_t>() > 0)
      throw ReshardAborted(fmt::format("the subscription on {} reported errors while copying (see its server log)",
                                       row_.target));
    const auto n = r[0][0].as<std::size_t>();
    if (n == tables_.size() + 1 && r[0][1].as<std::size_t>() == n) return;
    sleep_for(std::chrono::milliseconds(200));
  }
}

void ReshardJob::wait_catchup() {
  pqxx::connection src(shard_conninfo(row_.source));
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  for (;;) {
    if (abort_requested()) throw ReshardAborted("aborted by RESHARD ABORT");
    update_progress();
    const std::string lag = text(exec_sql(src, fmt::format("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint "
                                                      "FROM pg_replication_slots WHERE slot_name = '{}'",
                                                      name_)));
    if (lag.empty()) throw ReshardAborted(fmt::format("replication slot {} is missing on {}", name_, row_.source));
    // The marker in try_cutover is the exact check; this only keeps the pause short.
    if (std::stoll(lag) < options_.catchup_lag_bytes || Clock::now() > deadline) return;
    sleep_for(std::chrono::milliseconds(100));
  }
}

std::optional<std::chrono::milliseconds> ReshardJob::barrier(pqxx::connection& cat, pqxx::connection& fence,
                                                            pqxx::connection& dst, const std::string& phase) {
  // 1. Every proxy holds new transactions on the logical shard or tenant (the hold is part of
  // the directory: a new epoch, notified).
  run_in_transaction(cat, fmt::format("{}; UPDATE shardline.reshard_jobs SET state = {}, updated_at = now() WHERE id = {}",
                                      hold_sql(), sql_literal(phase), row_.id));
  const auto held_from = Clock::now();
  row_.phase = phase;
  spdlog::info("reshard job {}: phase {} ({} held)", row_.id, phase, what());
  pause_for_tests();
  // Proxies that have not seen the hold yet would send writes the fence refuses: wait for them
  // (bounded: a proxy that lags longer still cannot write on the wrong side).
  if (int behind = wait_for_proxies(cat, current_epoch(cat), std::chrono::seconds(2)))
    spdlog::warn("reshard job {}: {} proxy(ies) did not confirm the hold within 2 s; fencing anyway", row_.id, behind);
  const auto proxies_seen = Clock::now();
  // 2. Fence the source: the exclusive advisory lock waits for transactions that wrote the moved
  // rows (they hold it shared, taken by the fence trigger) and then refuses new such writes.
  try {
    exec_sql(fence, fmt::format("SET lock_timeout = {}; {}", options_.drain_timeout.count(), fence_lock_sql()));
  } catch (const pqxx::sql_error& e) {
    if (e.sqlstate() != "55P03") throw;
    spdlog::warn("reshard job {}: in-flight transactions on {} did not finish within {} ms; {} abandoned, retrying",
                 row_.id, what(), options_.drain_timeout.count(), phase);
    release_hold(cat, true);
    return std::nullopt;
  }
  const auto drained = Clock::now();
  // 3. The target applies everything up to here: a marker written after the fence arrives after
  // every change before it (changes apply in commit order).
  const auto token = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch()).count();
  exec_sql(fence, fmt::format("INSERT INTO shardline.reshard_marker (job, token) VALUES ({0}, {1}) ON CONFLICT (job) "
                              "DO UPDATE SET token = EXCLUDED.token",
                              row_.id, token));
  for (const auto deadline = Clock::now() + options_.catchup_timeout;;) {
    if (text(exec_sql(dst, fmt::format("SELECT token FROM shardline.reshard_marker WHERE job = {}", row_.id))) ==
        std::to_string(token))
      break;
    if (Clock::now() > deadline) {
      spdlog::warn("reshard job {}: the target did not catch up within {} ms; {} abandoned, retrying", row_.id,
                   options_.catchup_timeout.count(), phase);
      unfence(fence);
      release_hold(cat, true);
      return std::nullopt;
    }
    sleep_for(std::chrono::milliseconds(2));
  }
  const auto ms = [](auto from, auto to) { return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count(); };
  const auto now = Clock::now();
  spdlog::info("reshard job {}: {} barrier after {} ms: proxies saw the hold in {} ms, in-flight writes drained in {} "
               "ms, the target caught up in {} ms",
               row_.id, phase, ms(held_from, now), ms(held_from, proxies_seen), ms(proxies_seen, drained), ms(drained, now));
  return std::chrono::duration_cast<std::chrono::milliseconds>(now - held_from);
}

void ReshardJob::unfence(pqxx::connection& fence) {
  if (isolating())
    exec_sql(fence, fmt::format("SELECT pg_advisory_unlock({}, hashtext({}))", kTenantFenceLockClass,
                                sql_literal(*row_.tenant)));
  else
    exec_sql(fence, fmt::format("SELECT pg_advisory_unlock({}, {})", kFenceLockClass, row_.logical));
}

void ReshardJob::release_hold(pqxx::connection& cat, bool abandoned) {
  exec_sql(cat, fmt::format("DELETE FROM shardline.directory_holds WHERE job = {0}; DELETE FROM shardline.tenant_holds "
                            "WHERE job = {0}{1}",
                            row_.id,
                            abandoned ? fmt::format("; UPDATE shardline.reshard_jobs SET cutover_attempts = "
                                                    "cutover_attempts + 1 WHERE id = {}",
                                                    row_.id)
                                      : std::string()));
}

bool ReshardJob::verify(pqxx::connection& cat) {
  // The rows are still on the source only (the hold and fence just give one position): a
  // snapshot on each side at that position, then the hold goes and the checksums run while
  // writes flow. Logical replication applies every later change on the target exactly, so
  // equal rows here mean equal rows at the flip.
  pqxx::connection fence(shard_conninfo(row_.source));
  pqxx::connection dst(shard_conninfo(row_.target));
  pqxx::connection src_view(shard_conninfo(row_.source));
  pqxx::connection dst_view(shard_conninfo(row_.target));
  if (!barrier(cat, fence, dst, "verify")) return false;
  pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> at_src(src_view);
  pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> at_dst(dst_view);
  at_src.exec("SELECT 1");  // the snapshot is taken by a transaction's first statement
  at_dst.exec("SELECT 1");
  unfence(fence);
  release_hold(cat, false);
  for (const auto& t : tables_) {
    auto theirs = std::async(std::launch::async, [&] { return at_dst.exec(checksum_sql(t, filter(t))); });
    const auto a = at_src.exec(checksum_sql(t, filter(t)));
    const auto b = theirs.get();
    if (a[0][0].as<std::string>() != b[0][0].as<std::string>() || a[0][1].as<std::string>() != b[0][1].as<std::string>())
      throw ReshardAborted(fmt::format("verify failed for table {}: the source has {} rows (checksum {}), the target "
                                       "{} rows (checksum {})",
                                       t.qualified(), a[0][0].c_str(), a[0][1].c_str(), b[0][0].c_str(),
                                       b[0][1].c_str()));
  }
  spdlog::info("reshard job {}: verified: counts and checksums of every table match on {} and {}", row_.id,
               row_.source, row_.target);
  return true;
}

bool ReshardJob::try_cutover() {
  if (abort_requested()) throw ReshardAborted("aborted by RESHARD ABORT");
  pqxx::connection cat(catalog_);
  if (!verify(cat)) return false;
  pqxx::connection fence(shard_conninfo(row_.source));
  pqxx::connection dst(shard_conninfo(row_.target));
  const auto held = barrier(cat, fence, dst, "cutover");
  if (!held) return false;
  const auto flip_from = Clock::now();
  // The flip: the source refuses the moved rows for good (stale routers, direct writers), the
  // target accepts them, the directory names the target (one epoch: the hold goes too).
  exec_sql(fence, flip_source_sql());
  exec_sql(dst, flip_target_sql());
  run_in_transaction(cat, flip_catalog_sql());
  row_.phase = "cleanup";
  spdlog::info("reshard job {}: {} now on {} (directory flipped{}); its writes were held {} ms", row_.id, what(),
               row_.target, isolating() ? ", tenant pinned" : "",
               (*held + std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - flip_from)).count());
  return true;  // closing `fence` releases the advisory lock
}

void ReshardJob::drop_replication() {
  pqxx::connection dst(shard_conninfo(row_.target));
  const bool exists = text(exec_sql(dst, fmt::format("SELECT count(*) FROM pg_subscription WHERE subname = '{}'", name_))) != "0";
  if (exists) {
    try {
      exec_sql(dst, fmt::format("DROP SUBSCRIPTION IF EXISTS {}", name_));  // drops the slot on the source too
    } catch (const pqxx::sql_error& e) {
      // The source cannot be reached to drop the slot: detach it, drop it below.
      spdlog::warn("reshard job {}: DROP SUBSCRIPTION: {}; detaching the slot", row_.id, e.what());
      exec_sql(dst, fmt::format("ALTER SUBSCRIPTION {0} DISABLE; ALTER SUBSCRIPTION {0} SET (slot_name = NONE); "
                           "DROP SUBSCRIPTION {0}",
                           name_));
    }
  }
  pqxx::connection src(shard_conninfo(row_.source));
  exec_sql(src, fmt::format("DROP PUBLICATION IF EXISTS {}", name_));
  for (int i = 0; i < 50; ++i) {  // an active slot is being released by its walsender
    const auto r = exec_sql(src, fmt::format("SELECT active FROM pg_replication_slots WHERE slot_name = '{}'", name_));
    if (r.empty()) return;
    if (!r[0][0].as<bool>()) {
      exec_sql(src, fmt::format("SELECT pg_drop_replication_slot('{}')", name_));
      return;
    }
    sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error(fmt::format("replication slot {} on {} stays active", name_, row_.source));
}

void ReshardJob::delete_rows(const std::string& shard) {
  pqxx::connection c(shard_conninfo(shard));
  // Replica role: the fence trigger (and user triggers) stay out of it, as for a subscription.
  exec_sql(c, "SET session_replication_role = replica");
  for (const auto& t : tables_) {
    const std::string sql = fmt::format("DELETE FROM {0} WHERE ctid = ANY (ARRAY(SELECT ctid FROM {0} WHERE {1} LIMIT {2}))",
                                        t.qualified(), filter(t), options_.delete_batch);
    while (exec_sql(c, sql).affected_rows() > 0) sleep_for(options_.delete_pause);
  }
}

void ReshardJob::cleanup() {
  pause_for_tests();
  {
    // Readers through a proxy that still routes by the old directory would miss deleted rows.
    pqxx::connection cat(catalog_);
    if (int behind = wait_for_proxies(cat, current_epoch(cat), std::chrono::seconds(10)))
      spdlog::warn("reshard job {}: {} proxy(ies) did not confirm the flip within 10 s; cleaning up anyway", row_.id,
                   behind);
  }
  drop_replication();
  {
    pqxx::connection src(shard_conninfo(row_.source));
    exec_sql(src, fence_check_sql({}));
  }
  delete_rows(row_.source);
  for (const auto* shard : {&row_.source, &row_.target}) {
    pqxx::connection c(shard_conninfo(*shard));
    exec_sql(c, fmt::format("DELETE FROM shardline.reshard_marker WHERE job = {}", row_.id));
  }
  pqxx::connection cat(catalog_);
  exec_sql(cat, fmt::format("UPDATE shardline.reshard_jobs SET state = 'done', lag_bytes = 0, finished_at = now(), "
                       "updated_at = now() WHERE id = {}",
                       row_.id));
  row_.phase = "done";
  spdlog::info("reshard job {}: done", row_.id);
}

void ReshardJob::roll_back(const std::string& state, const std::string& error) {
  pqxx::connection cat(catalog_);
  // A flip whose commit reply was lost did happen: then the job goes on with cleanup.
  if (text(exec_sql(cat, fmt::format("SELECT state FROM shardline.reshard_jobs WHERE id = {}", row_.id))) == "cleanup") {
    row_.phase = "cleanup";
    cleanup();
    return;
  }
  spdlog::warn("reshard job {}: rolling back ({}): {}", row_.id, state, error);
  exec_sql(cat, fmt::format("DELETE FROM shardline.directory_holds WHERE job = {0}; DELETE FROM shardline.tenant_holds "
                            "WHERE job = {0}",
                            row_.id));
  drop_replication();
  // The fence rows of this job (a flip that wrote them but not the catalog) go too.
  const std::string tenant_fence =
      isolating() ? fmt::format("DELETE FROM shardline.tenant_fence WHERE tenant = {} AND job = {};",
                                sql_literal(*row_.tenant), row_.id)
                  : "";
  {
    pqxx::connection src(shard_conninfo(row_.source));
    if (text(exec_sql(src, "SELECT to_regclass('shardline.fence') IS NOT NULL")) == "t") {
      exec_sql(src, fence_check_sql({}));
      exec_sql(src, fmt::format("{2} DELETE FROM shardline.fence WHERE logical = {0} AND job = {1}; DELETE FROM "
                           "shardline.reshard_marker WHERE job = {1}",
                           row_.logical, row_.id, tenant_fence));
    }
  }
  {
    pqxx::connection dst(shard_conninfo(row_.target));
    if (text(exec_sql(dst, "SELECT to_regclass('shardline.reshard_marker') IS NOT NULL")) == "t")
      exec_sql(dst, fmt::format("{} DELETE FROM shardline.reshard_marker WHERE job = {}", tenant_fence, row_.id));
  }
  delete_rows(row_.target);  // the target had none of these rows when the job started
  exec_sql(cat, fmt::format("UPDATE shardline.reshard_jobs SET state = {}, error = {}, finished_at = now(), updated_at = "
                       "now() WHERE id = {}",
                       sql_literal(state), sql_literal(error), row_.id));
  row_.phase = state;
}

}  // namespace shardline::control
