#include "proxy/protocol/error_fields.hpp"

#include "proxy/protocol/message_writer.hpp"

namespace shardline::proxy::protocol {

std::string_view error_sqlstate(std::string_view body) {
  std::size_t i = 0;
  while (i < body.size() && body[i] != '\0') {
    const char field = body[i++];
    const std::size_t end = body.find('\0', i);
    if (end == std::string_view::npos) break;
    if (field == 'C') return body.substr(i, end - i);
    i = end + 1;
  }
  return {};
}

std::string error_with_sqlstate(std::string_view body, std::string_view sqlstate) {
  // The fields as they came (up to the terminating NUL, or all of a truncated body), C first.
  const std::size_t last = body.find(std::string_view("\0\0", 2));
  std::string_view fields = last == std::string_view::npos ? body : body.substr(0, last + 1);
  if (fields == std::string_view("\0", 1)) fields = {};
  std::string out;
  MessageWriter w(out);
  w.begin('E').byte('C').cstr(sqlstate).raw(fields);
  if (!fields.empty() && fields.back() != '\0') w.byte('\0');
  w.byte('\0').end();
  return out;
}

}  // namespace shardline::proxy::protocol
