#pragma once
// Bytes to send in one gathered write: pass-through messages are referenced where they lie in
// the input buffer (no copy), rewritten or proxy-made messages are appended to a scratch string.

#include <boost/asio/buffer.hpp>
#include <string>
#include <vector>

#include "proxy/protocol/message_writer.hpp"

namespace shardline::proxy::session {

class OutBatch {
 public:
  /// Passes `n` bytes at `p` through; they must stay valid until the write completes.
  void ref(const char* p, std::size_t n) {
    if (!segs_.empty() && !segs_.back().owned && segs_.back().ptr + segs_.back().len == p) {
      segs_.back().len += n;  // adjacent messages become one buffer
    } else {
      segs_.push_back({false, p, 0, n});
    }
    bytes_ += n;
  }
  /// A writer for a proxy-made message; call `sealed()` after writing it.
  protocol::MessageWriter writer() {
    mark_ = scratch_.size();
    return protocol::MessageWriter(scratch_);
  }
  void sealed() { own(mark_, scratch_.size() - mark_); }
  void own_bytes(std::string_view bytes) {
    std::size_t off = scratch_.size();
    scratch_.append(bytes);
    own(off, bytes.size());
  }

  bool empty() const { return segs_.empty(); }
  std::size_t bytes() const { return bytes_; }
  /// The buffers, valid until the next change.
  const std::vector<boost::asio::const_buffer>& buffers() {
    bufs_.clear();
    for (const auto& s : segs_)
      bufs_.emplace_back(s.owned ? scratch_.data() + s.off : s.ptr, s.len);
    return bufs_;
  }
  void clear() {
    segs_.clear();
    scratch_.clear();
    bytes_ = 0;
  }

 private:
  void own(std::size_t off, std::size_t n) {
    if (n == 0) return;
    segs_.push_back({true, nullptr, off, n});
    bytes_ += n;
  }
  struct Seg {
    bool owned;
    const char* ptr;
    std::size_t off;
    std::size_t len;
  };
  std::vector<Seg> segs_;
  std::string scratch_;
  std::vector<boost::asio::const_buffer> bufs_;
  std::size_t mark_ = 0;
  std::size_t bytes_ = 0;
};

}  // namespace shardline::proxy::session
