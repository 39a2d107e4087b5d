#pragma once
// The two-phase-commit resolver (control plane; the pure decisions are twopc_resolution.hpp):
// a thread that, at start and every kResolverPeriodMs, renews this instance's heartbeat in
// shardline.twopc_owners, reads the decisions in shardline.twopc_log, finds the shardline gids
// prepared on every shard's primary (pg_prepared_xacts), commits or rolls them back from the
// log (aborting, through the log, the undecided ones of dead owners), and trims the log rows
// no shard holds any more. Blocking libpqxx work, never on the data-plane thread.

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "proxy/control/twopc_resolution.hpp"

namespace shardline::control {

/// This process's owner name for gids: host:port:pid:start-time.
std::string twopc_instance_name(const config::Config& cfg);

class TwopcResolver {
 public:
  /// `on_round` gets what each round saw prepared (on the resolver thread: publish only).
  using Callback = std::function<void(std::shared_ptr<const std::vector<InDoubt>>)>;
  TwopcResolver(config::Config cfg, std::string owner, Callback on_round);
  ~TwopcResolver();
  TwopcResolver(const TwopcResolver&) = delete;
  TwopcResolver& operator=(const TwopcResolver&) = delete;

  /// One round now, on the caller's thread (startup: the heartbeat exists before the first
  /// commit, and what a crash left is resolved before clients come). Logs its failures.
  void round();
  /// Runs round() every kResolverPeriodMs on a thread until stop().
  void start();
  void stop();

 private:
  struct Connections;  ///< one libpqxx connection per shard's primary, kept between rounds
  std::unique_ptr<Connections> conns_;
  void heartbeat_and_read(ResolverInput& in);
  void scan_shards(ResolverInput& in);
  void apply(const ResolverPlan& plan, const ResolverInput& in);

  config::Config cfg_;
  std::string owner_;
  std::string host_;
  Callback on_round_;
  std::vector<bool> warned_disabled_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace shardline::control
