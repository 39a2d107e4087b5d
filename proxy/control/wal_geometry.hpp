#pragma once
// The page layout of PostgreSQL's WAL, needed to compare a replica's replay position with the
// primary's insert position. pg_current_wal_insert_lsn() never points into a page header: when
// the last record ends exactly at a page boundary, it reports the byte after the next page's
// header (XLogBytePosToRecPtr), while the replica's pg_last_wal_replay_lsn() is the end of that
// last record, the boundary itself. On an idle shard the two then differ by a page header for as
// long as nothing is written, and a caught-up replica would look 24 (or 40) bytes behind forever.
// See src/backend/access/transam/xlog.c (XLogBytePosToRecPtr) and src/include/access/xlog_internal.h.

#include <cstdint>

#include "proxy/control/lsn.hpp"

namespace shardline::control {

struct WalGeometry {
  /// SizeOfXLogShortPHD: the header of every WAL page but a segment's first.
  static constexpr std::uint64_t kShortPageHeader = 24;
  /// SizeOfXLogLongPHD: the header of the first page of a WAL segment.
  static constexpr std::uint64_t kLongPageHeader = 40;

  /// wal_block_size (a compile-time constant of the server, 8 kB unless built otherwise).
  std::uint64_t page_size = 8192;
  /// wal_segment_size (chosen at initdb, 16 MB by default); a multiple of page_size.
  std::uint64_t segment_size = 16ull * 1024 * 1024;

  /// Both sizes powers of two, the segment no smaller than a page, a page larger than its header.
  bool valid() const {
    const auto pow2 = [](std::uint64_t v) { return v != 0 && (v & (v - 1)) == 0; };
    return pow2(page_size) && pow2(segment_size) && segment_size >= page_size && page_size > kLongPageHeader;
  }

  /// The position, comparable with insert positions, that a replica has replayed when its
  /// replay position (the end of its last replayed record) is `replay_end`: on a page boundary
  /// that is the first byte after the page's header, since no insert position lies inside a page
  /// header; anywhere else `replay_end` itself. Exact, not a tolerance: every insert position at
  /// or below the result has been replayed, and none above it.
  Lsn past_page_header(Lsn replay_end) const {
    const std::uint64_t v = replay_end.value();
    if (v % page_size != 0) return replay_end;
    return Lsn(v + (v % segment_size == 0 ? kLongPageHeader : kShortPageHeader));
  }
};

}  // namespace shardline::control
