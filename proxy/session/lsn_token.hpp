#pragma once
// The version cookie: an opaque, versioned token naming the shards a session wrote to and an
// LSN at or after each commit ("1:s0@0/16B3748,s1@0/3000060"). A client that sends it back in
// SET shardline.read_after reads only from replicas that have replayed those LSNs.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardline::proxy::session {

struct ShardLsn {
  int shard;
  std::uint64_t lsn;
};

std::string format_lsn_token(const std::vector<ShardLsn>& lsns, const std::vector<std::string>& shard_names);
/// nullopt with `error` naming the problem (the caller answers 22023).
std::optional<std::vector<ShardLsn>> parse_lsn_token(std::string_view token, const std::vector<std::string>& shard_names,
                                                     std::string* error);

}  // namespace shardline::proxy::session
