#include "proxy/control/lag_probe.hpp"

#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace shardline::control {

Probe parse_probe(const PGresult* r) {
  if (PQntuples(r) != 1 || PQnfields(r) != kProbeColumns)
    throw std::runtime_error(fmt::format("the probe returned {} rows of {} columns, expected 1 of {}", PQntuples(r),
                                         PQnfields(r), kProbeColumns));
  const auto text = [&](int col) -> std::optional<std::string> {
    if (PQgetisnull(r, 0, col)) return std::nullopt;
    return std::string(PQgetvalue(r, 0, col));
  };
  const auto boolean = [&](int col) {
    const auto v = text(col);
    if (v == "t") return true;
    if (v == "f") return false;
    throw std::runtime_error(fmt::format("column {} of the probe is `{}`, not a boolean", col + 1, v.value_or("NULL")));
  };
  const auto lsn = [&](int col) -> std::optional<Lsn> {
    const auto v = text(col);
    if (!v) return std::nullopt;
    auto parsed = Lsn::parse(*v);
    if (!parsed) throw std::runtime_error(fmt::format("column {} of the probe is `{}`, not an LSN", col + 1, *v));
    return parsed;
  };
  const auto size = [&](int col) -> std::uint64_t {
    const auto v = text(col);
    char* end = nullptr;
    const unsigned long long n = v ? std::strtoull(v->c_str(), &end, 10) : 0;
    if (!v || end == v->c_str() || *end != '\0')
      throw std::runtime_error(fmt::format("column {} of the probe is `{}`, not a size", col + 1, v.value_or("NULL")));
    return n;
  };
  Probe p;
  p.in_recovery = boolean(0);
  p.insert_lsn = lsn(1);
  p.replay_lsn = lsn(2);
  p.replay_paused = boolean(3);
  if (const auto v = text(4)) {
    char* end = nullptr;
    const double seconds = std::strtod(v->c_str(), &end);
    if (end == v->c_str() || *end != '\0' || !std::isfinite(seconds))
      throw std::runtime_error(fmt::format("column 5 of the probe is `{}`, not an epoch", *v));
    p.last_xact_replay = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(seconds)));
  }
  p.wal.page_size = size(5);
  p.wal.segment_size = size(6);
  if (!p.wal.valid())
    throw std::runtime_error(fmt::format("the server reports WAL pages of {} bytes in segments of {} bytes",
                                         p.wal.page_size, p.wal.segment_size));
  return p;
}

}  // namespace shardline::control
