#include "proxy/control/twopc_resolver.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <pqxx/pqxx>

#include "proxy/control/conninfo.hpp"

namespace shardline::control {

namespace {

std::string hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

/// A process on this host that is gone (its pid no longer exists).
bool process_gone(int pid) { return pid > 0 && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH; }

}  // namespace

struct TwopcResolver::Connections {
  const config::Config& cfg;
  std::vector<std::unique_ptr<pqxx::connection>> c;
  /// Shard `i`'s primary (the catalog is shard 0's), connected on first use or after a failure.
  pqxx::connection& at(std::size_t i) {
    if (!c[i] || !c[i]->is_open())
      c[i] = std::make_unique<pqxx::connection>(libpq_conninfo(cfg.backend, cfg.shards[i].primary, "shardline 2pc resolver"));
    return *c[i];
  }
  void reset(std::size_t i) { c[i].reset(); }
};

std::string twopc_instance_name(const config::Config& cfg) {
  const auto start = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  return fmt::format("{}:{}:{}:{}", hostname(), cfg.listen.port, ::getpid(), start.count());
}

TwopcResolver::TwopcResolver(config::Config cfg, std::string owner, Callback on_round)
    : cfg_(std::move(cfg)), owner_(std::move(owner)), host_(hostname()), on_round_(std::move(on_round)) {
  conns_ = std::make_unique<Connections>(Connections{cfg_, {}});
  conns_->c.resize(cfg_.shards.size());
  warned_disabled_.assign(cfg_.shards.size(), false);
}

TwopcResolver::~TwopcResolver() { stop(); }

void TwopcResolver::start() {
  thread_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      lock.unlock();
      round();
      lock.lock();
      cv_.wait_for(lock, std::chrono::milliseconds(kResolverPeriodMs), [this] { return stopping_; });
    }
  });
}

void TwopcResolver::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void TwopcResolver::heartbeat_and_read(ResolverInput& in) {
  pqxx::connection& c = conns_->at(0);
  pqxx::nontransaction tx(c);
  tx.exec_params(
      "INSERT INTO shardline.twopc_owners (owner, host, pid) VALUES ($1, $2, $3) "
      "ON CONFLICT (owner) DO UPDATE SET heartbeat = now()",
      owner_, host_, int(::getpid()));
  for (const auto& row : tx.exec_params(
           "SELECT owner, host, pid FROM shardline.twopc_owners WHERE heartbeat > now() - make_interval(secs => $1)",
           kOwnerLeaseSeconds)) {
    const auto owner = row[0].as<std::string>();
    if (owner != owner_ && row[1].as<std::string>() == host_ && process_gone(row[2].as<int>())) continue;
    in.live_owners.insert(owner);
  }
  for (const auto& row : tx.exec("SELECT gid, state FROM shardline.twopc_log WHERE state IN ('committing', 'aborting')"))
    in.decisions[row[0].as<std::string>()] = row[1].as<std::string>() == "committing" ? Decision::Commit : Decision::Abort;
}

void TwopcResolver::scan_shards(ResolverInput& in) {
  for (std::size_t i = 0; i < cfg_.shards.size(); ++i) {
    try {
      pqxx::nontransaction tx(conns_->at(i));
      if (!warned_disabled_[i]) {
        warned_disabled_[i] = true;
        if (tx.exec("SHOW max_prepared_transactions")[0][0].as<int>() == 0)
          spdlog::warn("shard {} has max_prepared_transactions = 0: transactions spanning it cannot commit "
                       "(cross_shard_transactions: 2pc needs max_prepared_transactions > 0 on every shard)",
                       cfg_.shards[i].name);
      }
      for (const auto& row : tx.exec(
               "SELECT gid, extract(epoch FROM now() - prepared)::float8 FROM pg_prepared_xacts "
               "WHERE gid LIKE 'shardline:%' AND database = current_database()"))
        in.prepared.push_back(PreparedXact{row[0].as<std::string>(), int(i), row[1].as<double>()});
    } catch (const std::exception& e) {
      conns_->reset(i);
      spdlog::warn("2pc resolver: shard {}: {}", cfg_.shards[i].name, e.what());
    }
  }
}

void TwopcResolver::apply(const ResolverPlan& plan, const ResolverInput& in) {
  std::vector<ResolverAction> actions = plan.actions;
  if (!plan.to_abort.empty()) {
    pqxx::nontransaction tx(conns_->at(0));
    for (const auto& gid : plan.to_abort) {
      std::string shards = "{";
      for (const auto& x : in.prepared)
        if (x.gid == gid) shards += (shards.size() > 1 ? "," : "") + cfg_.shards[std::size_t(x.shard)].name;
      shards += "}";
      // A commit decision written meanwhile wins over this abort.
      tx.exec_params(
          "INSERT INTO shardline.twopc_log (gid, shards, state, owner) VALUES ($1, $2::text[], 'aborting', $3) "
          "ON CONFLICT (gid) DO NOTHING",
          gid, shards, gid_owner(gid).value_or(""));
      const auto r = tx.exec_params("SELECT state FROM shardline.twopc_log WHERE gid = $1", gid);
      const Decision d = !r.empty() && r[0][0].as<std::string>() == "committing" ? Decision::Commit : Decision::Abort;
      for (const auto& x : in.prepared)
        if (x.gid == gid) actions.push_back(ResolverAction{gid, x.shard, d});
    }
  }
  for (const auto& a : actions) {
    const char* verb = a.decision == Decision::Commit ? "COMMIT PREPARED" : "ROLLBACK PREPARED";
    try {
      pqxx::nontransaction tx(conns_->at(std::size_t(a.shard)));
      tx.exec(fmt::format("{} {}", verb, tx.quote(a.gid)));
      spdlog::info("2pc resolver: {} {} on shard {}", verb, a.gid, cfg_.shards[std::size_t(a.shard)].name);
    } catch (const std::exception& e) {  // e.g. its coordinator finished it meanwhile
      spdlog::info("2pc resolver: {} {} on shard {}: {}", verb, a.gid, cfg_.shards[std::size_t(a.shard)].name, e.what());
    }
  }
  if (!plan.trim.empty()) {
    pqxx::nontransaction tx(conns_->at(0));
    std::string list = "{";
    for (const auto& g : plan.trim) list += (list.size() > 1 ? "," : "") + tx.quote_name(g);
    list += "}";
    // Abort rows stay a while: a PREPARE still in flight when the abort was decided must find it.
    tx.exec_params(
        "DELETE FROM shardline.twopc_log WHERE gid = ANY($1::text[]) AND (state = 'committing' OR updated_at < now() - "
        "make_interval(secs => $2))",
        list, 2 * kOwnerLeaseSeconds);
  }
}

void TwopcResolver::round() {
  ResolverInput in;
  try {
    heartbeat_and_read(in);
  } catch (const std::exception& e) {
    conns_->reset(0);
    spdlog::warn("2pc resolver: catalog: {}", e.what());
    return;  // without the log nothing can be decided
  }
  scan_shards(in);
  const ResolverPlan plan = plan_resolution(in);
  try {
    apply(plan, in);
  } catch (const std::exception& e) {
    conns_->reset(0);
    spdlog::warn("2pc resolver: {}", e.what());
  }
  if (on_round_) on_round_(std::make_shared<const std::vector<InDoubt>>(plan.in_doubt));
}

}  // namespace shardline::control
