#pragma once
// The one query the lag monitor sends every server, and its answer: role, WAL insert and replay
// positions, replay pause and timestamp, WAL geometry.

#include <libpq-fe.h>

#include <chrono>
#include <optional>

#include "proxy/control/lsn.hpp"
#include "proxy/control/wal_geometry.hpp"

namespace shardline::control {

/// One statement for primaries and replicas alike, so a configured primary that is in recovery
/// and a replica that was promoted are both noticed. The CASEs keep the functions that raise an
/// error in the wrong role (pg_current_wal_insert_lsn on a standby, pg_is_wal_replay_paused on a
/// primary) from running there. The insert position, not pg_current_wal_lsn() (the write
/// position), is the one every commit acknowledged before the probe lies at or below, whatever
/// synchronous_commit says. The WAL page and segment sizes place page headers (WalGeometry).
inline constexpr const char* kProbeSql =
    "SELECT pg_is_in_recovery(), "
    "CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_insert_lsn() END, "
    "pg_last_wal_replay_lsn(), "
    "CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END, "
    "extract(epoch FROM pg_last_xact_replay_timestamp()), "
    "current_setting('wal_block_size')::bigint, "
    "pg_size_bytes(current_setting('wal_segment_size'))";
inline constexpr int kProbeColumns = 7;

/// What one server answered to kProbeSql.
struct Probe {
  bool in_recovery = false;
  std::optional<Lsn> insert_lsn;  ///< primaries only
  std::optional<Lsn> replay_lsn;   ///< NULL on a server that never was in recovery
  bool replay_paused = false;
  std::optional<std::chrono::system_clock::time_point> last_xact_replay;
  WalGeometry wal;
  std::chrono::steady_clock::time_point sent_at;  ///< when the query left: no later than when the server evaluated it
  std::chrono::system_clock::time_point received_at;
};

/// Parses the probe's single row; throws std::runtime_error naming what is wrong.
Probe parse_probe(const PGresult* r);

}  // namespace shardline::control
