#pragma once
// Builds backend and frontend protocol messages into a caller-owned string, so a whole batch
// of replies is written with one syscall.
// https://www.postgresql.org/docs/current/protocol-message-formats.html

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/protocol/sql_error.hpp"

namespace shardline::proxy::protocol {

class MessageWriter {
 public:
  explicit MessageWriter(std::string& out) : out_(out) {}

  /// Starts a tagged message (tag 0: untagged startup-style packet).
  MessageWriter& begin(char tag) {
    if (tag) out_.push_back(tag);
    start_ = out_.size();
    out_.append(4, '\0');
    return *this;
  }
  MessageWriter& i32(std::int32_t v) {
    std::uint32_t be = __builtin_bswap32(std::uint32_t(v));
    out_.append(reinterpret_cast<const char*>(&be), 4);
    return *this;
  }
  MessageWriter& i16(std::int16_t v) {
    std::uint16_t be = __builtin_bswap16(std::uint16_t(v));
    out_.append(reinterpret_cast<const char*>(&be), 2);
    return *this;
  }
  MessageWriter& byte(char c) {
    out_.push_back(c);
    return *this;
  }
  MessageWriter& cstr(std::string_view s) {
    out_.append(s);
    out_.push_back('\0');
    return *this;
  }
  MessageWriter& raw(std::string_view s) {
    out_.append(s);
    return *this;
  }
  /// Closes the message by patching its length word.
  void end() {
    std::uint32_t len = __builtin_bswap32(std::uint32_t(out_.size() - start_));
    std::memcpy(out_.data() + start_, &len, 4);
  }

  // ---- common backend messages -------------------------------------------------------------
  void ready_for_query(char status) { begin('Z').byte(status).end(); }
  void parameter_status(std::string_view name, std::string_view value) {
    begin('S').cstr(name).cstr(value).end();
  }
  void backend_key_data(std::int32_t pid, std::int32_t secret) {
    begin('K').i32(pid).i32(secret).end();
  }
  void auth_request(std::int32_t code, std::string_view extra = {}) {
    begin('R').i32(code).raw(extra).end();
  }
  void command_complete(std::string_view tag) { begin('C').cstr(tag).end(); }
  void empty_query() { begin('I').end(); }
  void parse_complete() { begin('1').end(); }
  void close_complete() { begin('3').end(); }
  void error(const SqlError& e) { notice_or_error('E', e); }
  void notice(const SqlError& e) { notice_or_error('N', e); }

  /// RowDescription with every column as text (what the admin console returns).
  void row_description_text(const std::vector<std::string>& names) {
    begin('T').i16(std::int16_t(names.size()));
    for (const auto& n : names) cstr(n).i32(0).i16(0).i32(25 /* text */).i16(-1).i32(-1).i16(0);
    end();
  }
  /// DataRow of text values; a null pointer is SQL NULL.
  void data_row(const std::vector<std::string>& values) {
    begin('D').i16(std::int16_t(values.size()));
    for (const auto& v : values) i32(std::int32_t(v.size())).raw(v);
    end();
  }

 private:
  void notice_or_error(char tag, const SqlError& e) {
    begin(tag);
    byte('S').cstr(e.severity);
    byte('V').cstr(e.severity);
    byte('C').cstr(e.sqlstate);
    byte('M').cstr(e.message);
    if (!e.detail.empty()) byte('D').cstr(e.detail);
    if (!e.hint.empty()) byte('H').cstr(e.hint);
    byte('\0');
    end();
  }

  std::string& out_;
  std::size_t start_ = 0;
};

/// Reads the fields of an ErrorResponse/NoticeResponse body (for logs and for rewriting).
SqlError parse_error_fields(std::string_view body);

}  // namespace shardline::proxy::protocol
