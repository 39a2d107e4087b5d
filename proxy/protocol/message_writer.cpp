#include "proxy/protocol/message_writer.hpp"

#include "proxy/protocol/frame_reader.hpp"

namespace shardline::proxy::protocol {

SqlError parse_error_fields(std::string_view body) {
  SqlError e;
  BodyReader r({body.data(), body.size()});
  while (r.ok() && !r.at_end()) {
    auto code = r.byte();
    if (!code || *code == '\0') break;
    auto value = r.cstr();
    if (!value) break;
    switch (*code) {
      case 'S': e.severity = std::string(*value); break;
      case 'C': e.sqlstate = std::string(*value); break;
      case 'M': e.message = std::string(*value); break;
      case 'D': e.detail = std::string(*value); break;
      case 'H': e.hint = std::string(*value); break;
      default: break;
    }
  }
  return e;
}

}  // namespace shardline::proxy::protocol
