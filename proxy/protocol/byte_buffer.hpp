#pragma once
// A growable byte buffer with a read cursor, used for socket input. Data is appended at the
// tail by reads and consumed from the head by the frame decoder; the unread part is moved to
// the front only when room is needed, so steady-state traffic copies nothing.

#include <cstddef>
#include <cstring>
#include <memory>
#include <span>

namespace shardline::proxy::protocol {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  ByteBuffer(const ByteBuffer&) = delete;
  ByteBuffer& operator=(const ByteBuffer&) = delete;
  ByteBuffer(ByteBuffer&&) noexcept = default;
  ByteBuffer& operator=(ByteBuffer&&) noexcept = default;

  /// Unread bytes.
  std::span<const char> readable() const { return {data_.get() + head_, tail_ - head_}; }
  std::size_t size() const { return tail_ - head_; }
  bool empty() const { return head_ == tail_; }
  void consume(std::size_t n) {
    head_ += n;
    if (head_ == tail_) head_ = tail_ = 0;
  }

  /// Room for at least `min_free` more bytes at the tail; returns the writable span.
  std::span<char> prepare(std::size_t min_free) {
    if (cap_ - tail_ < min_free) {
      const std::size_t used = tail_ - head_;
      if (head_ > 0 && cap_ - used >= min_free && used <= cap_ / 2) {
        std::memmove(data_.get(), data_.get() + head_, used);
      } else {
        std::size_t cap = cap_ ? cap_ : kInitial;
        while (cap - used < min_free) cap *= 2;
        auto fresh = std::make_unique_for_overwrite<char[]>(cap);
        if (used) std::memcpy(fresh.get(), data_.get() + head_, used);
        data_ = std::move(fresh);
        cap_ = cap;
      }
      head_ = 0;
      tail_ = used;
    }
    return {data_.get() + tail_, cap_ - tail_};
  }
  void commit(std::size_t n) { tail_ += n; }

  /// Drops the storage when nothing is buffered (idle clients hold no buffer memory).
  void release_if_empty() {
    if (empty()) {
      data_.reset();
      cap_ = head_ = tail_ = 0;
    }
  }
  std::size_t capacity() const { return cap_; }

  static constexpr std::size_t kInitial = 16 * 1024;

 private:
  std::unique_ptr<char[]> data_;
  std::size_t cap_ = 0, head_ = 0, tail_ = 0;
};

}  // namespace shardline::proxy::protocol
