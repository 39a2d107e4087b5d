#include "proxy/exec/binary_copy_splitter.hpp"

#include <fmt/format.h>

namespace shardline::proxy::exec {

namespace {

constexpr const char* kBadCopyFileFormat = "22P04";  // ERRCODE_BAD_COPY_FILE_FORMAT

std::uint32_t be32(std::string_view b, std::size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(b.data() + at);
  return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | std::uint32_t(p[3]);
}

std::int16_t be16(std::string_view b, std::size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(b.data() + at);
  return static_cast<std::int16_t>(std::uint16_t(p[0]) << 8 | std::uint16_t(p[1]));
}

}  // namespace

void BinaryCopySplitter::fail(const char* sqlstate, std::string message, std::int64_t line, int field) {
  if (!error_) error_ = CopyDataError{sqlstate, std::move(message), line, field};
}

const std::optional<CopyDataError>& BinaryCopySplitter::feed(std::string_view data, const Sink& sink) {
  if (error_ || data.empty()) return error_;
  if (partial_.empty()) {
    const std::size_t used = parse(data, sink);
    if (!error_) partial_.assign(data.substr(used));
  } else {
    partial_.append(data);
    const std::size_t used = parse(partial_, sink);
    partial_.erase(0, used);
  }
  return error_;
}

std::size_t BinaryCopySplitter::parse(std::string_view buf, const Sink& sink) {
  std::size_t used = 0;
  while (!error_) {
    if (state_ == State::Ended) {
      // ReceiveCopyBinaryHeader's counterpart at the end: the trailer must end the data.
      if (used < buf.size()) fail(kBadCopyFileFormat, "received copy data after EOF marker", tuples_ + 1);
      return used;
    }
    const std::string_view rest = buf.substr(used);
    const std::size_t n = state_ == State::Header ? parse_header(rest, sink) : parse_tuple(rest, sink);
    if (n == 0) return used;
    used += n;
  }
  return used;
}

std::size_t BinaryCopySplitter::parse_header(std::string_view buf, const Sink& sink) {
  if (buf.size() < kSignature.size()) return 0;
  if (buf.substr(0, kSignature.size()) != kSignature) {
    fail(kBadCopyFileFormat, "COPY file signature not recognized", 0);
    return 0;
  }
  if (buf.size() < 15) return 0;
  std::uint32_t flags = be32(buf, 11);
  if ((flags & (1u << 16)) != 0) {
    fail(kBadCopyFileFormat, "invalid COPY file header (WITH OIDS)", 0);
    return 0;
  }
  if ((flags >> 16) != 0) {  // bits 17-31 are critical: a reader that does not know one must stop
    fail(kBadCopyFileFormat, "unrecognized critical flags in COPY file header", 0);
    return 0;
  }
  if (buf.size() < 19) return 0;
  const auto extension = static_cast<std::int32_t>(be32(buf, 15));
  if (extension < 0) {
    fail(kBadCopyFileFormat, "invalid COPY file header (missing length)", 0);
    return 0;
  }
  const std::size_t size = 19 + std::size_t(extension);
  if (buf.size() < size) return 0;
  sink(buf.substr(0, size), -1, true);
  state_ = State::Tuples;
  return size;
}

std::size_t BinaryCopySplitter::parse_tuple(std::string_view buf, const Sink& sink) {
  if (buf.size() < 2) return 0;
  const std::int16_t count = be16(buf, 0);
  if (count == -1) {
    state_ = State::Ended;
    return 2;
  }
  const std::int64_t line = tuples_ + 1;
  if (count != field_count_) {
    fail(kBadCopyFileFormat, fmt::format("row field count is {}, expected {}", count, field_count_), line);
    return 0;
  }
  std::size_t pos = 2;
  int target = 0;
  for (int f = 0; f < count; ++f) {
    if (buf.size() - pos < 4) return 0;
    const auto len = static_cast<std::int32_t>(be32(buf, pos));
    pos += 4;
    if (len < -1) {
      fail(kBadCopyFileFormat, "invalid field size", line, f);
      return 0;
    }
    const std::size_t size = len < 0 ? 0 : std::size_t(len);
    if (buf.size() - pos < size) return 0;
    if (f == key_index_) {
      KeyRoute route = read_key_(len < 0 ? std::nullopt : std::optional(buf.substr(pos, size)));
      if (!route.sqlstate.empty()) {
        error_ = CopyDataError{std::move(route.sqlstate), std::move(route.message), line, f};
        return 0;
      }
      target = route.target;
    }
    pos += size;
  }
  ++tuples_;
  sink(buf.substr(0, pos), target, false);
  return pos;
}

const std::optional<CopyDataError>& BinaryCopySplitter::finish() {
  if (error_) return error_;
  const std::string_view rest = partial_;
  if (state_ == State::Header) {
    // What ReceiveCopyBinaryHeader says when the data ends inside the header.
    if (rest.size() < kSignature.size()) fail(kBadCopyFileFormat, "COPY file signature not recognized", 0);
    else if (rest.size() < 15) fail(kBadCopyFileFormat, "invalid COPY file header (missing flags)", 0);
    else if (rest.size() < 19) fail(kBadCopyFileFormat, "invalid COPY file header (missing length)", 0);
    else fail(kBadCopyFileFormat, "invalid COPY file header (wrong length)", 0);
    return error_;
  }
  // Less than a field count left: PostgreSQL takes it for the end of the data (CopyGetInt16
  // fails and NextCopyFrom reports EOF), with or without a trailer.
  if (state_ != State::Tuples || rest.size() < 2) return error_;
  // Inside a tuple: the field whose length or bytes are missing (CopyReadBinaryAttribute).
  std::size_t pos = 2;
  int field = 0;
  for (; field < field_count_; ++field) {
    if (rest.size() - pos < 4) break;
    const auto len = static_cast<std::int32_t>(be32(rest, pos));
    pos += 4;
    if (len == -1) continue;
    if (rest.size() - pos < std::size_t(len)) break;
    pos += std::size_t(len);
  }
  fail(kBadCopyFileFormat, "unexpected EOF in COPY data", tuples_ + 1, field);
  return error_;
}

}  // namespace shardline::proxy::exec
