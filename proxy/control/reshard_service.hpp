#pragma once
// Runs reshard jobs inside the proxy (SPEC.md section 8). A worker thread takes admin requests
// (RESHARD MOVE / ABORT), checks them, records the job in the catalog and drives it
// (reshard_job.hpp) while holding an advisory lock of the catalog, so one job runs at a time
// across every proxy sharing it. When no job runs here it tries that lock every second: a job
// left unfinished by a proxy that died (the lock went with its session) is then rolled back if
// it had not flipped the directory yet, or its cleanup is finished. A monitor thread publishes
// the jobs' rows (SHOW RESHARDS, /api/reshards) from the catalog, so every proxy shows them.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "proxy/control/reshard_job.hpp"
#include "proxy/control/reshard_status.hpp"

namespace shardline::control {

struct ReshardRequest {
  enum class Kind { Move, Isolate, Abort } kind = Kind::Move;
  int logical = -1;
  std::string tenant;
  std::string target;
};

/// The answer to a request: sqlstate empty on success (then `job` is the job's id).
struct ReshardReply {
  std::string sqlstate;
  std::string message;
  std::int64_t job = 0;
};

class ReshardService {
 public:
  using Publish = std::function<void(std::vector<ReshardStatus>)>;
  ReshardService(std::shared_ptr<const config::Config> cfg, std::string catalog_conninfo, Publish publish,
                 ReshardOptions options = {});
  ~ReshardService();
  ReshardService(const ReshardService&) = delete;
  ReshardService& operator=(const ReshardService&) = delete;

  /// Blocking (libpq): runs on a control-plane thread. MOVE returns once the job is recorded
  /// (or refused); the job runs on in the background. ABORT asks the running job to roll back.
  ReshardReply submit(const ReshardRequest& request);

 private:
  struct Pending {
    ReshardRequest request;
    std::promise<ReshardReply> reply;
  };
  void work();
  void monitor();
  /// With the job lock held: checks `p`, records the job, answers, runs it.
  void start_job(Pending& p);
  /// With the job lock held: finishes or rolls back an unfinished job, if any.
  void recover();
  ReshardReply abort();

  std::shared_ptr<const config::Config> cfg_;
  std::string catalog_;
  Publish publish_;
  ReshardOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Pending>> queue_;
  bool stopping_ = false;
  std::atomic<bool> busy_{false};  ///< the worker is inside a job (then it is not waited for)
  std::thread worker_;
  std::thread monitor_;
};

}  // namespace shardline::control
