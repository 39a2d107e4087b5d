#pragma once
// Cuts a COPY FROM STDIN (FORMAT binary) data stream into its header and tuples and finds each
// tuple's key field, so tuples can be sent to the shard that owns them: every shard gets the
// header, its own tuples and the trailer. CopyData messages may cut the stream anywhere. Pure:
// bytes in, parts out; malformed data gets the error PostgreSQL raises for it (copyfromparse.c).
// https://www.postgresql.org/docs/current/sql-copy.html (Binary Format)

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace shardline::proxy::exec {

/// An error in COPY data, worded as PostgreSQL words it.
struct CopyDataError {
  std::string sqlstate;
  std::string message;
  /// PostgreSQL's line number of a binary COPY: the tuple being read (1-based; the trailer
  /// counts as the tuple after the last one); 0 for the header, which has no context line.
  std::int64_t line = 0;
  int field = -1;  ///< the field being read (0-based), -1 if none
};

class BinaryCopySplitter {
 public:
  /// The file signature every binary COPY stream starts with ("PGCOPY\n\377\r\n\0").
  static constexpr std::string_view kSignature{"PGCOPY\n\377\r\n\0", 11};
  /// The end-of-data marker: a field count of -1.
  static constexpr std::string_view kTrailer{"\xff\xff", 2};

  /// Where a key field sends its tuple, or the error PostgreSQL's receive function of the key
  /// type raises for it (`sqlstate` set).
  struct KeyRoute {
    int target = 0;
    std::string sqlstate;
    std::string message;
  };
  /// Reads one key field's bytes (nullopt for NULL). It is called as soon as the key field is
  /// complete, because PostgreSQL converts each field as it reads it: an error in the key wins
  /// over a malformed field after it, not over one before it.
  using KeyReader = std::function<KeyRoute(std::optional<std::string_view> key)>;

  /// `field_count`: the columns COPY loads (each tuple must have exactly that many fields);
  /// `key_index`: the key's position among them.
  BinaryCopySplitter(int field_count, int key_index, KeyReader read_key)
      : field_count_(field_count), key_index_(key_index), read_key_(std::move(read_key)) {}

  /// Called with the header (signature, flags, extension: `header` true, target -1) once, then
  /// with each complete tuple and the target its key gave. Views are valid only during the call.
  using Sink = std::function<void(std::string_view bytes, int target, bool header)>;

  /// Feeds the bytes of one CopyData message. Once an error is found the rest is ignored and
  /// the same error is returned again.
  [[nodiscard]] const std::optional<CopyDataError>& feed(std::string_view data, const Sink& sink);
  /// The end of the data (CopyDone): the error PostgreSQL raises for a stream cut short here.
  [[nodiscard]] const std::optional<CopyDataError>& finish();

  /// Tuples emitted so far.
  std::int64_t tuples() const { return tuples_; }
  /// The trailer was seen.
  bool ended() const { return state_ == State::Ended; }

 private:
  enum class State { Header, Tuples, Ended };
  /// Consumes what it can from the front of `buf`; returns the bytes used.
  std::size_t parse(std::string_view buf, const Sink& sink);
  /// Header: bytes used, 0 if incomplete (or on error).
  std::size_t parse_header(std::string_view buf, const Sink& sink);
  /// One tuple: bytes used, 0 if incomplete (or on error, or at the trailer).
  std::size_t parse_tuple(std::string_view buf, const Sink& sink);
  void fail(const char* sqlstate, std::string message, std::int64_t line, int field = -1);

  int field_count_;
  int key_index_;
  KeyReader read_key_;
  State state_ = State::Header;
  std::string partial_;  ///< the start of a header or tuple cut by a CopyData boundary
  std::int64_t tuples_ = 0;
  std::optional<CopyDataError> error_;
};

}  // namespace shardline::proxy::exec
