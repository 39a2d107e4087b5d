#include "proxy/exec/ops/shard_descriptions.hpp"

#include "proxy/exec/ops/column_value.hpp"

namespace shardline::proxy::exec::ops {

protocol::SqlError unknown_shard(int shard, int shards) {
  return protocol::SqlError::error(protocol::sqlstate::kInternalError, "merge got input for shard stream " +
                                                                           std::to_string(shard) + " of " +
                                                                           std::to_string(shards));
}

protocol::SqlError malformed_row(int shard) {
  return protocol::SqlError::error(protocol::sqlstate::kProtocolViolation,
                                   "shard stream " + std::to_string(shard) + " sent a malformed DataRow");
}

bool ShardDescriptions::may_send_rows(int shard, protocol::SqlError& error) const {
  if (described(shard)) return true;
  error = valid(shard) ? protocol::SqlError::error(protocol::sqlstate::kProtocolViolation,
                                                   "shard stream " + std::to_string(shard) +
                                                       " sent a DataRow before its RowDescription")
                       : unknown_shard(shard, shards());
  return false;
}

ShardDescriptions::Outcome ShardDescriptions::add(int shard, std::string_view rd, protocol::SqlError& error) {
  if (!valid(shard)) {
    error = unknown_shard(shard, shards());
    return Outcome::Failed;
  }
  auto cols = parse_row_description(rd);
  if (!cols) {
    error = protocol::SqlError::error(protocol::sqlstate::kProtocolViolation,
                                      "shard stream " + std::to_string(shard) + " sent a malformed RowDescription");
    return Outcome::Failed;
  }
  described_[std::size_t(shard)] = true;
  if (!any_) {
    any_ = true;
    columns_ = std::move(*cols);
    return Outcome::First;
  }
  if (cols->size() != columns_.size()) {
    error = protocol::SqlError::error(
        protocol::sqlstate::kInternalError,
        "shards disagree on the result's columns: " + std::to_string(columns_.size()) + " on one, " +
            std::to_string(cols->size()) + " on shard stream " + std::to_string(shard));
    return Outcome::Failed;
  }
  for (std::size_t i = 0; i < cols->size(); ++i) {
    const auto &a = columns_[i], &b = (*cols)[i];
    if (a.type_oid != b.type_oid || a.format != b.format) {
      error = protocol::SqlError::error(
          protocol::sqlstate::kInternalError,
          "shards disagree on column #" + std::to_string(i) + " (\"" + a.name + "\"): " + type_name(a.type_oid) +
              (a.format ? " binary" : " text") + " on one, " + type_name(b.type_oid) + (b.format ? " binary" : " text") +
              " on shard stream " + std::to_string(shard));
      return Outcome::Failed;
    }
  }
  return Outcome::Agrees;
}

}  // namespace shardline::proxy::exec::ops
