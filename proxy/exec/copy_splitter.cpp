#include "proxy/exec/copy_splitter.hpp"

namespace shardline::proxy::exec {

void CopySplitter::feed(std::string_view data, const RowSink& sink) {
  if (ended_) return;
  std::size_t start = 0;
  // Fast path: no partial row pending, emit rows straight from `data`.
  auto scan_from = [&](std::string_view buf, std::size_t from, bool& in_q) -> std::size_t {
    for (std::size_t i = from; i < buf.size(); ++i) {
      char c = buf[i];
      if (format_.csv && c == format_.quote) {
        in_q = !in_q;  // doubled quotes toggle twice; an escape char equal to quote is the same
      } else if (format_.csv && in_q && c == format_.escape && format_.escape != format_.quote && i + 1 < buf.size()) {
        ++i;
      } else if (c == '\n' && !in_q) {
        return i;
      } else if (!format_.csv && c == '\\' && i + 1 < buf.size()) {
        ++i;  // an escaped character (including an escaped newline) is data
      }
    }
    return std::string_view::npos;
  };
  if (!partial_.empty()) {
    partial_.append(data);
    std::size_t pos = 0;
    while (!ended_) {
      std::size_t nl = scan_from(partial_, scanned_, in_quotes_);
      if (nl == std::string_view::npos) {
        scanned_ = partial_.size();
        // A trailing backslash may escape the next chunk's first byte: rescan it next time.
        if (!format_.csv && scanned_ > pos && partial_.back() == '\\') --scanned_;
        break;
      }
      emit(std::string_view(partial_).substr(pos, nl + 1 - pos), sink);
      pos = nl + 1;
      scanned_ = pos;
    }
    partial_.erase(0, pos);
    scanned_ -= std::min(scanned_, pos);
    return;
  }
  while (!ended_) {
    bool q = in_quotes_;
    std::size_t nl = scan_from(data, start, q);
    if (nl == std::string_view::npos) {
      partial_.assign(data.substr(start));
      in_quotes_ = false;  // rescanned from the row start next time
      scanned_ = 0;
      return;
    }
    in_quotes_ = false;
    emit(data.substr(start, nl + 1 - start), sink);
    start = nl + 1;
  }
}

void CopySplitter::finish(const RowSink& sink) {
  if (!ended_ && !partial_.empty()) emit(partial_, sink);
  partial_.clear();
}

void CopySplitter::emit(std::string_view row, const RowSink& sink) {
  std::string_view line = row;
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (!format_.csv && line == "\\.") {
    ended_ = true;
    return;
  }
  if (header_pending_) {
    header_pending_ = false;
    if (format_.header) {
      sink(row, std::nullopt, true);
      return;
    }
  }
  bool found = false;
  auto key = key_of(line, found);
  sink(row, key, false);
}

std::optional<std::string> CopySplitter::key_of(std::string_view line, bool& found) const {
  found = false;
  int field = 0;
  std::size_t i = 0;
  while (field < key_index_ && i <= line.size()) {
    // Skip one field.
    bool q = false;
    for (; i < line.size(); ++i) {
      char c = line[i];
      if (format_.csv && c == format_.quote) q = !q;
      else if (!format_.csv && c == '\\') ++i;
      else if (c == format_.delimiter && !q) break;
    }
    if (i >= line.size()) return std::nullopt;  // too few fields: the shard reports it
    ++i;
    ++field;
  }
  // Read the key field.
  std::string value;
  bool quoted = false;
  if (format_.csv) {
    bool q = false;
    for (; i < line.size(); ++i) {
      char c = line[i];
      if (q) {
        if (c == format_.escape && i + 1 < line.size() && line[i + 1] == format_.quote && format_.escape != format_.quote) {
          value += format_.quote;
          ++i;
        } else if (c == format_.quote) {
          if (i + 1 < line.size() && line[i + 1] == format_.quote) {
            value += format_.quote;
            ++i;
          } else {
            q = false;
          }
        } else {
          value += c;
        }
      } else if (c == format_.quote) {
        q = quoted = true;
      } else if (c == format_.delimiter) {
        break;
      } else {
        value += c;
      }
    }
    found = true;
    if (!quoted && value == format_.null_marker) return std::nullopt;
    return value;
  }
  std::size_t end = i;
  while (end < line.size() && line[end] != format_.delimiter) {
    if (line[end] == '\\') ++end;
    ++end;
  }
  std::string_view raw = line.substr(i, std::min(end, line.size()) - i);
  found = true;
  if (raw == format_.null_marker) return std::nullopt;
  for (std::size_t k = 0; k < raw.size(); ++k) {
    char c = raw[k];
    if (c != '\\' || k + 1 >= raw.size()) {
      value += c;
      continue;
    }
    char n = raw[++k];
    auto octal = [](char ch) { return ch >= '0' && ch <= '7'; };
    auto hex = [](char ch) {
      return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
    };
    if (octal(n)) {  // \NNN: one to three octal digits (CopyReadAttributesText)
      int v = n - '0';
      for (int d = 0; d < 2 && k + 1 < raw.size() && octal(raw[k + 1]); ++d) v = v * 8 + (raw[++k] - '0');
      value += char(v & 0xFF);
      continue;
    }
    if (n == 'x' && k + 1 < raw.size() && hex(raw[k + 1]) >= 0) {  // \xHH: one or two hex digits
      int v = hex(raw[++k]);
      if (k + 1 < raw.size() && hex(raw[k + 1]) >= 0) v = v * 16 + hex(raw[++k]);
      value += char(v);
      continue;
    }
    switch (n) {
      case 'b': value += '\b'; break;
      case 'f': value += '\f'; break;
      case 'n': value += '\n'; break;
      case 'r': value += '\r'; break;
      case 't': value += '\t'; break;
      case 'v': value += '\v'; break;
      default: value += n; break;
    }
  }
  return value;
}

}  // namespace shardline::proxy::exec
