#pragma once
// One reshard job as SHOW RESHARDS lists it and /metrics and /api/reshards publish it: written by
// the job runner (control/reshard_service), read by the metrics registry.

#include <cstdint>
#include <string>

namespace shardline::control {

struct ReshardStatus {
  std::int64_t id = 0;
  std::string kind, tenant, source, target, phase, started_at, finished_at, error;
  int logical = -1;
  std::int64_t rows_copied = 0, rows_total = 0, lag_bytes = 0;
};

}  // namespace shardline::control
