#pragma once
// The pure core of the two-phase-commit resolver: given what one round saw (the decisions in
// shardline.twopc_log, the shardline gids prepared on each shard, which owners are alive), what
// to do with each prepared transaction and which log rows are done. No I/O: unit-tested.
//
// Rules: a logged decision is final (commit or roll back on every shard that still holds the
// gid). An undecided gid of a live owner is left alone (its coordinator is between PREPARE and
// its decision), unless it has been prepared longer than a coordinator ever takes
// (kStaleSeconds); an undecided gid of a dead owner is aborted: the resolver writes 'aborting'
// first (ON CONFLICT DO NOTHING, so a commit decision written meanwhile wins) and then acts on
// whichever decision is in the log. A log row whose gid no shard holds any more is trimmed.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace shardline::control {

/// How long an owner's heartbeat stays valid. A coordinator writes a commit decision only
/// while its own heartbeat is fresher than this; a resolver aborts only when it is older.
inline constexpr int kOwnerLeaseSeconds = 10;
/// An undecided prepared transaction this old is abandoned even if its owner lives.
inline constexpr int kStaleSeconds = 60;
/// How often the resolver runs a round (and renews this instance's heartbeat).
inline constexpr int kResolverPeriodMs = 1000;

/// "shardline:<owner>:<n>" -> owner; nullopt for a gid that is not shardline's.
std::optional<std::string> gid_owner(std::string_view gid);

enum class Decision { Commit, Abort };

struct PreparedXact {
  std::string gid;
  int shard = -1;
  double age_seconds = 0;  ///< now() - prepared, on its shard
};

struct ResolverInput {
  std::map<std::string, Decision> decisions;  ///< twopc_log, read before the shards were scanned
  std::vector<PreparedXact> prepared;         ///< every shardline gid prepared on any shard
  std::set<std::string> live_owners;          ///< owners whose heartbeat is fresh and process alive
};

struct ResolverAction {
  std::string gid;
  int shard = -1;
  Decision decision = Decision::Abort;
};

struct InDoubt {
  std::string gid;
  std::string owner;
  int shard = -1;
  double age_seconds = 0;
  std::optional<Decision> decision;  ///< logged but not yet applied on this shard
};

struct ResolverPlan {
  std::vector<ResolverAction> actions;  ///< COMMIT / ROLLBACK PREPARED now
  std::vector<std::string> to_abort;    ///< undecided gids of dead owners: log 'aborting' first
  std::vector<std::string> trim;        ///< log rows no shard holds prepared any more
  std::vector<InDoubt> in_doubt;        ///< every prepared shardline gid seen (SHOW TRANSACTIONS)
};

ResolverPlan plan_resolution(const ResolverInput& in);

}  // namespace shardline::control
