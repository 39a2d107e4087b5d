#pragma once
// Zero-copy decoding of PostgreSQL protocol v3 messages.
// https://www.postgresql.org/docs/current/protocol-message-formats.html
// Three outcomes, like Envoy's decoder: a frame, need more data, or malformed input. Never throws.

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>

namespace shardline::proxy::protocol {

/// A complete message: its type byte and a view of its body (without tag and length).
struct Frame {
  char tag = 0;
  std::span<const char> body;
  std::size_t total_size = 0;  ///< tag + length word + body
  std::string_view bytes_with_header(const char* start) const { return {start, total_size}; }
};

enum class DecodeStatus { Ok, NeedMoreData, Malformed };

/// Largest regular message we accept from a client or server (PostgreSQL allows up to 1 GB for
/// data messages; we follow that so big COPY rows and bytea values pass).
inline constexpr std::uint32_t kMaxMessageSize = 1u << 30;
inline constexpr std::uint32_t kMaxStartupPacket = 10000;

inline std::uint32_t read_u32(const char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return __builtin_bswap32(v);
}
inline std::uint16_t read_u16(const char* p) {
  std::uint16_t v;
  std::memcpy(&v, p, 2);
  return __builtin_bswap16(v);
}

/// Decodes one tagged message from the head of `in`.
inline DecodeStatus decode_frame(std::span<const char> in, Frame& out) {
  if (in.size() < 5) return DecodeStatus::NeedMoreData;
  const std::uint32_t len = read_u32(in.data() + 1);
  if (len < 4 || len > kMaxMessageSize) return DecodeStatus::Malformed;
  if (in.size() < std::size_t(len) + 1) return DecodeStatus::NeedMoreData;
  out.tag = in[0];
  out.body = in.subspan(5, len - 4);
  out.total_size = std::size_t(len) + 1;
  return DecodeStatus::Ok;
}

/// PostgreSQL's limit for messages that carry no data (Sync, Describe, Close...), and for the
/// rest: PQ_SMALL_MESSAGE_LIMIT and PQ_LARGE_MESSAGE_LIMIT of src/include/libpq/libpq.h.
inline constexpr std::uint32_t kSmallMessageLimit = 10000;
inline constexpr std::uint32_t kLargeMessageLimit = 0x3fffffffu - 1;

/// The body limit of a frontend message type after startup, or 0 for a type no frontend sends
/// (PostgreSQL's SocketBackend: it closes the connection on those).
constexpr std::uint32_t frontend_message_limit(char tag) {
  switch (tag) {
    case 'Q': case 'P': case 'B': case 'F': case 'd': case 'p':
      return kLargeMessageLimit;
    case 'C': case 'D': case 'E': case 'H': case 'S': case 'X': case 'c': case 'f':
      return kSmallMessageLimit;
    default:
      return 0;
  }
}

/// Decodes one frontend message, checking its type and length on the header alone, so a bad
/// header is refused at once instead of after its declared body arrived. `why` (if given) says
/// what was wrong, in PostgreSQL's words.
inline DecodeStatus decode_client_frame(std::span<const char> in, Frame& out, const char** why = nullptr) {
  if (in.empty()) return DecodeStatus::NeedMoreData;
  const std::uint32_t limit = frontend_message_limit(in[0]);
  if (limit == 0) {
    if (why) *why = "invalid frontend message type";
    return DecodeStatus::Malformed;
  }
  if (in.size() < 5) return DecodeStatus::NeedMoreData;
  const std::uint32_t len = read_u32(in.data() + 1);
  if (len < 4 || len > limit) {  // pq_getmessage: the length word counts itself
    if (why) *why = "invalid message length";
    return DecodeStatus::Malformed;
  }
  return decode_frame(in, out);
}

/// Whether a backend (PostgreSQL server) sends messages of this type.
constexpr bool is_backend_message_type(char tag) {
  switch (tag) {
    case 'R': case 'K': case '1': case '2': case '3': case 'C': case 'd': case 'c': case 'G': case 'H':
    case 'W': case 'D': case 'I': case 'E': case 'V': case 'v': case 'n': case 'N': case 'A': case 't':
    case 'S': case 's': case 'Z': case 'T':
      return true;
    default:
      return false;
  }
}

/// Decodes one backend message; an unknown type is malformed on its first byte (a server, or
/// whatever poses as one, sending garbage is noticed at once, not after 1 GB arrived).
inline DecodeStatus decode_backend_frame(std::span<const char> in, Frame& out) {
  if (!in.empty() && !is_backend_message_type(in[0])) return DecodeStatus::Malformed;
  return decode_frame(in, out);
}

/// Decodes the untagged startup-phase packet (StartupMessage, SSLRequest, CancelRequest...).
inline DecodeStatus decode_startup(std::span<const char> in, Frame& out) {
  if (in.size() < 4) return DecodeStatus::NeedMoreData;
  const std::uint32_t len = read_u32(in.data());
  if (len < 8 || len > kMaxStartupPacket) return DecodeStatus::Malformed;
  if (in.size() < len) return DecodeStatus::NeedMoreData;
  out.tag = 0;
  out.body = in.subspan(4, len - 4);
  out.total_size = len;
  return DecodeStatus::Ok;
}

/// Bounds-checked cursor over a message body; every getter fails softly on truncated input.
class BodyReader {
 public:
  explicit BodyReader(std::span<const char> body) : p_(body.data()), end_(body.data() + body.size()) {}
  bool ok() const { return ok_; }
  bool at_end() const { return p_ == end_; }
  std::size_t remaining() const { return std::size_t(end_ - p_); }
  const char* pos() const { return p_; }

  std::optional<std::string_view> cstr() {
    const void* z = p_ < end_ ? std::memchr(p_, 0, std::size_t(end_ - p_)) : nullptr;
    if (!z) return fail<std::string_view>();
    std::string_view s(p_, std::size_t(static_cast<const char*>(z) - p_));
    p_ = static_cast<const char*>(z) + 1;
    return s;
  }
  std::optional<std::int32_t> i32() {
    if (remaining() < 4) return fail<std::int32_t>();
    auto v = std::int32_t(read_u32(p_));
    p_ += 4;
    return v;
  }
  std::optional<std::int16_t> i16() {
    if (remaining() < 2) return fail<std::int16_t>();
    auto v = std::int16_t(read_u16(p_));
    p_ += 2;
    return v;
  }
  std::optional<char> byte() {
    if (remaining() < 1) return fail<char>();
    return *p_++;
  }
  std::optional<std::string_view> bytes(std::size_t n) {
    if (remaining() < n) return fail<std::string_view>();
    std::string_view s(p_, n);
    p_ += n;
    return s;
  }

 private:
  template <class T>
  std::optional<T> fail() {
    ok_ = false;
    return std::nullopt;
  }
  const char* p_;
  const char* end_;
  bool ok_ = true;
};

}  // namespace shardline::proxy::protocol
