#pragma once
// Cuts a COPY FROM STDIN data stream (text or CSV format) into rows and reads each row's key
// field, so rows can be sent to the shard that owns them. CopyData messages may cut rows
// anywhere; CSV rows may span lines inside quotes. Pure: bytes in, rows out.
// https://www.postgresql.org/docs/current/sql-copy.html (File Formats)

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace shardline::proxy::exec {

struct CopyFormat {
  bool csv = false;
  char delimiter = '\t';
  char quote = '"';
  char escape = '"';
  std::string null_marker = "\\N";
  bool header = false;
};

class CopySplitter {
 public:
  /// `key_index`: position of the key among the row's fields.
  CopySplitter(CopyFormat format, int key_index) : format_(std::move(format)), key_index_(key_index) {}

  /// Called with each complete row (including its line end), and its key: nullopt for NULL.
  /// `header` is true for a CSV header line (to be given to every shard).
  using RowSink = std::function<void(std::string_view row, const std::optional<std::string>& key, bool header)>;

  void feed(std::string_view data, const RowSink& sink);
  /// The last row when the data did not end with a newline.
  void finish(const RowSink& sink);
  /// True once the text-format end marker "\." was seen (the rest is ignored).
  bool ended() const { return ended_; }

  /// The key field of one complete row (exposed for tests).
  std::optional<std::string> key_of(std::string_view row, bool& found) const;

 private:
  void emit(std::string_view row, const RowSink& sink);
  CopyFormat format_;
  int key_index_;
  std::string partial_;
  bool in_quotes_ = false;
  std::size_t scanned_ = 0;  ///< bytes of partial_ already scanned for the line end
  bool header_pending_ = true;
  bool ended_ = false;
};

}  // namespace shardline::proxy::exec
