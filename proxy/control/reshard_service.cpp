#include "proxy/control/reshard_service.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <set>
#include <pqxx/pqxx>

#include "proxy/control/reshard_checks.hpp"
#include "router/sharding/key_type.hpp"
#include "router/sharding/shard_key.hpp"
#include "router/sharding/tenant_key.hpp"

namespace shardline::control {

namespace {

/// Session advisory lock of the catalog held by whichever proxy runs a job ("reshard!").
constexpr std::int64_t kJobLockKey = 0x7265736861726421;

constexpr std::string_view kRunning = "state NOT IN ('done', 'aborted', 'failed')";

pqxx::result query(pqxx::connection& c, const std::string& sql) {
  pqxx::nontransaction n(c);
  return n.exec(sql);
}

ReshardJobRow job_row(const pqxx::row& r) {
  ReshardJobRow j;
  j.id = r[0].as<std::int64_t>();
  j.kind = r[1].c_str();
  j.logical = r[2].as<int>();
  if (!r[3].is_null()) j.tenant = r[3].c_str();
  j.source = r[4].c_str();
  j.target = r[5].c_str();
  j.phase = r[6].c_str();
  return j;
}

constexpr std::string_view kJobColumns = "id, kind, logical, tenant, source, target, state";

std::vector<std::string> pinned_tenants(pqxx::connection& c) {
  std::vector<std::string> out;
  for (const auto& r : query(c, "SELECT tenant FROM shardline.pins ORDER BY tenant")) out.push_back(r[0].c_str());
  return out;
}

}  // namespace

ReshardService::ReshardService(std::shared_ptr<const config::Config> cfg, std::string catalog_conninfo, Publish publish,
                               ReshardOptions options)
    : cfg_(std::move(cfg)), catalog_(std::move(catalog_conninfo)), publish_(std::move(publish)), options_(options) {
  worker_ = std::thread([this] { work(); });
  monitor_ = std::thread([this] { monitor(); });
}

ReshardService::~ReshardService() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  // A job in progress is not waited for (a copy may take hours): the process exits under it and
  // the job resumes or rolls back at the next start, as after a crash.
  if (busy_.load()) worker_.detach();
  else worker_.join();
  monitor_.join();
}

ReshardReply ReshardService::submit(const ReshardRequest& request) {
  if (request.kind == ReshardRequest::Kind::Abort) {
    try {
      return abort();
    } catch (const std::exception& e) {
      return {"08006", fmt::format("RESHARD ABORT: catalog: {}", e.what())};
    }
  }
  auto p = std::make_shared<Pending>();
  p->request = request;
  auto answer = p->reply.get_future();
  {
    std::lock_guard lk(mu_);
    queue_.push_back(p);
  }
  cv_.notify_all();
  if (answer.wait_for(std::chrono::seconds(120)) != std::future_status::ready)
    return {"57014", "the reshard worker did not answer within 120 s (is another job's rollback stuck? see the log)"};
  return answer.get();
}

ReshardReply ReshardService::abort() {
  pqxx::connection c(catalog_);
  const auto r = query(c, fmt::format("SELECT id, state FROM shardline.reshard_jobs WHERE {}", kRunning));
  if (r.empty()) return {"55000", "RESHARD ABORT: no reshard job is running"};
  const std::string phase = r[0][1].c_str();
  if (phase == "cutover" || phase == "cleanup")
    return {"55000", fmt::format("RESHARD ABORT: job {} is in phase {}: the directory flip is done or under way, so "
                                 "the job finishes instead",
                                 r[0][0].c_str(), phase)};
  query(c, fmt::format("UPDATE shardline.reshard_jobs SET abort_requested = true WHERE id = {}", r[0][0].c_str()));
  return {"", fmt::format("job {} is rolling back", r[0][0].c_str()), r[0][0].as<std::int64_t>()};
}

void ReshardService::work() {
  std::unique_ptr<pqxx::connection> lock;
  for (;;) {
    std::shared_ptr<Pending> p;
    {
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, std::chrono::seconds(1), [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) break;
      if (!queue_.empty()) {
        p = queue_.front();
        queue_.pop_front();
      }
    }
    try {
      if (!lock || !lock->is_open()) lock = std::make_unique<pqxx::connection>(catalog_);
      // Another proxy holds the lock briefly every second to look for a job to recover: a
      // request waits that out (2 s) before it is refused.
      bool locked = false;
      for (int attempt = 0; !locked && attempt < (p ? 20 : 1); ++attempt) {
        if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
        locked = query(*lock, fmt::format("SELECT pg_try_advisory_lock({})", kJobLockKey))[0][0].as<bool>();
      }
      if (!locked) {
        if (p) p->reply.set_value({"55006", "another proxy is running a reshard job (see SHOW RESHARDS)"});
        continue;
      }
      busy_.store(true);
      if (p) start_job(*p);
      else recover();
      busy_.store(false);
      query(*lock, fmt::format("SELECT pg_advisory_unlock({})", kJobLockKey));
    } catch (const std::exception& e) {
      busy_.store(false);
      spdlog::warn("reshard: {}", e.what());
      lock.reset();  // a lock held on a broken connection went with it
      if (p) {
        try {
          p->reply.set_value({"08006", fmt::format("reshard: {}", e.what())});
        } catch (const std::future_error&) {  // answered before the failure
        }
      }
    }
  }
}

void ReshardService::recover() {
  pqxx::connection c(catalog_);
  const auto r = query(c, fmt::format("SELECT {} FROM shardline.reshard_jobs WHERE {}", kJobColumns, kRunning));
  if (r.empty()) return;
  ReshardJobRow row = job_row(r[0]);
  row.pinned = pinned_tenants(c);
  spdlog::warn("reshard job {} was left in phase {} by a proxy that stopped: {}", row.id, row.phase,
               row.phase == "cleanup" ? "finishing its cleanup" : "rolling it back");
  ReshardJob job(*cfg_, catalog_, row, options_, reshard_tables(*cfg_));
  job.run(/*recovering=*/true);
}

namespace {

/// The shard that owns logical shard `l` in the catalog's directory.
std::string owner_of(pqxx::connection& c, int l) {
  const auto owner = query(c, fmt::format("SELECT shard FROM shardline.directory WHERE logical = {}", l));
  if (owner.empty()) throw ReshardRefused("55000", fmt::format("logical shard {} has no owner in the directory", l));
  return owner[0][0].c_str();
}

/// RESHARD MOVE: the logical shard's source, and the checked tables.
std::vector<ReshardTable> plan_move(const config::Config& cfg, pqxx::connection& c, const ReshardRequest& q,
                                    ReshardJobRow& row) {
  const int modulus = cfg.sharding.logical_shards;
  if (q.logical < 0 || q.logical >= modulus)
    throw ReshardRefused("22023", fmt::format("logical shard {} does not exist: sharding.logical_shards is {}, so "
                                              "logical shards are 0..{}",
                                              q.logical, modulus, modulus - 1));
  row.kind = "move";
  row.logical = q.logical;
  row.source = owner_of(c, q.logical);
  if (row.source == row.target)
    throw ReshardRefused("22023", fmt::format("logical shard {} is already on shard {}", q.logical, q.target));
  return check_reshard(cfg, row.source, row.target, [&](const ReshardTable& t) {
    return move_filter_sql(t, modulus, q.logical, row.pinned);
  });
}

/// RESHARD ISOLATE TENANT: the tenant in its canonical text (the same for every key type that
/// can hold it), the one shard all its rows live on, and the checked tables.
std::vector<ReshardTable> plan_isolate(const config::Config& cfg, pqxx::connection& c, const ReshardRequest& q,
                                       ReshardJobRow& row) {
  const std::vector<ReshardTable> tables = reshard_tables(cfg);
  if (tables.empty()) throw ReshardRefused("55000", "no sharded table exists yet: there is nothing to move");
  std::optional<std::string> canonical;
  std::string sqlstate = "22P02", error;
  std::set<int> logicals;
  for (const auto& t : tables) {
    const auto type = router::key_type_from_name(t.key_type);
    std::string st, err;
    const auto k = type ? router::canonical_key_of_text(*type, q.tenant, &st, &err) : std::nullopt;
    if (!k) {
      if (error.empty()) {
        sqlstate = st.empty() ? std::string("22P02") : st;
        error = fmt::format("{} ({})", err, t.qualified());
      }
      continue;
    }
    if (canonical && *canonical != *k)
      throw ReshardRefused("22023", fmt::format("tenant '{}' reads as '{}' for one sharding key and '{}' for {}; "
                                                "give it in one canonical form",
                                                q.tenant, *canonical, *k, t.qualified()));
    canonical = *k;
    logicals.insert(*router::logical_shard_of_text(*type, *k, cfg.sharding.logical_shards, nullptr));
  }
  if (!canonical)
    throw ReshardRefused(sqlstate, fmt::format("tenant '{}' is not a key of any sharded table: {}", q.tenant, error));
  row.kind = "isolate";
  row.tenant = *canonical;
  row.logical = *logicals.begin();
  const auto pin = query(c, fmt::format("SELECT shard FROM shardline.pins WHERE tenant = {}", sql_literal(*canonical)));
  if (!pin.empty()) {
    row.source = pin[0][0].c_str();
  } else {
    for (int l : logicals) {
      const std::string owner = owner_of(c, l);
      if (!row.source.empty() && owner != row.source)
        throw ReshardRefused("55000", fmt::format("tenant '{}' has rows on shards {} and {} (its key types hash it to "
                                                  "different logical shards); it cannot be isolated in one job",
                                                  *canonical, row.source, owner));
      row.source = owner;
    }
  }
  if (row.source == row.target)
    throw ReshardRefused("22023", fmt::format("tenant '{}' is already on shard {}", *canonical, row.target));
  return check_reshard(cfg, row.source, row.target,
                       [&](const ReshardTable& t) { return tenant_filter_sql(t, *row.tenant); });
}

}  // namespace

void ReshardService::start_job(Pending& p) {
  const ReshardRequest& q = p.request;
  ReshardJobRow row;
  std::vector<ReshardTable> tables;
  try {
    if (cfg_->find_shard(q.target) == nullptr) {
      std::string names;
      for (const auto& s : cfg_->shards) names += (names.empty() ? "" : ", ") + s.name;
      throw ReshardRefused("22023", fmt::format("unknown target shard '{}' (shards: {})", q.target, names));
    }
    pqxx::connection c(catalog_);
    const auto running = query(c, fmt::format("SELECT id, state FROM shardline.reshard_jobs WHERE {}", kRunning));
    if (!running.empty())
      throw ReshardRefused("55006", fmt::format("reshard job {} is still running (phase {}); wait for it or RESHARD ABORT",
                                                running[0][0].c_str(), running[0][1].c_str()));
    row.target = q.target;
    row.pinned = pinned_tenants(c);
    tables = q.kind == ReshardRequest::Kind::Isolate ? plan_isolate(*cfg_, c, q, row) : plan_move(*cfg_, c, q, row);
    const auto id = query(c, fmt::format("INSERT INTO shardline.reshard_jobs (kind, logical, tenant, source, target, "
                                         "state) VALUES ({}, {}, {}, {}, {}, 'copy') RETURNING id",
                                         sql_literal(row.kind), row.logical,
                                         row.tenant ? sql_literal(*row.tenant) : "NULL", sql_literal(row.source),
                                         sql_literal(row.target)));
    row.id = id[0][0].as<std::int64_t>();
    row.phase = "copy";
  } catch (const ReshardRefused& e) {
    p.reply.set_value({e.sqlstate, e.what()});
    return;
  }
  const std::string what = row.tenant ? fmt::format("tenant '{}' (logical shard {})", *row.tenant, row.logical)
                                      : fmt::format("logical shard {}", row.logical);
  p.reply.set_value({"", fmt::format("job {}: moving {} from {} to {}", row.id, what, row.source, row.target), row.id});
  ReshardJob job(*cfg_, catalog_, row, options_, std::move(tables));
  job.run(/*recovering=*/false);
}

void ReshardService::monitor() {
  std::unique_ptr<pqxx::connection> c;
  for (;;) {
    {
      std::unique_lock lk(mu_);
      if (cv_.wait_for(lk, std::chrono::milliseconds(250), [&] { return stopping_; })) return;
    }
    try {
      if (!c || !c->is_open()) c = std::make_unique<pqxx::connection>(catalog_);
      const auto r = query(*c, "SELECT id, kind, logical, coalesce(tenant, ''), source, target, state, rows_copied, "
                               "rows_total, lag_bytes, to_char(created_at, 'YYYY-MM-DD HH24:MI:SS.MS TZ'), "
                               "coalesce(to_char(finished_at, 'YYYY-MM-DD HH24:MI:SS.MS TZ'), ''), coalesce(error, '') "
                               "FROM shardline.reshard_jobs ORDER BY id DESC LIMIT 100");
      std::vector<ReshardStatus> jobs;
      for (const auto& row : r) {
        ReshardStatus s;
        s.id = row[0].as<std::int64_t>();
        s.kind = row[1].c_str();
        s.logical = row[2].as<int>();
        s.tenant = row[3].c_str();
        s.source = row[4].c_str();
        s.target = row[5].c_str();
        s.phase = row[6].c_str();
        s.rows_copied = row[7].as<std::int64_t>();
        s.rows_total = row[8].as<std::int64_t>();
        s.lag_bytes = row[9].as<std::int64_t>();
        s.started_at = row[10].c_str();
        s.finished_at = row[11].c_str();
        s.error = row[12].c_str();
        jobs.push_back(std::move(s));
      }
      std::reverse(jobs.begin(), jobs.end());
      publish_(std::move(jobs));
    } catch (const std::exception& e) {
      c.reset();
      spdlog::debug("reshard monitor: {}", e.what());
    }
  }
}

}  // namespace shardline::control
