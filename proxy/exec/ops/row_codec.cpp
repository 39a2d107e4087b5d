#include "proxy/exec/ops/row_codec.hpp"

#include "proxy/protocol/frame_reader.hpp"
#include "proxy/protocol/message_writer.hpp"

namespace shardline::proxy::exec::ops {

namespace {

/// The body of a message of type `tag` whose length word agrees with its size.
std::optional<std::string_view> body_of(std::string_view msg, char tag) {
  if (msg.size() < 5 || msg[0] != tag) return std::nullopt;
  if (protocol::read_u32(msg.data() + 1) != msg.size() - 1) return std::nullopt;
  return msg.substr(5);
}

}  // namespace

std::optional<std::vector<ColumnDesc>> parse_row_description(std::string_view msg) {
  auto body = body_of(msg, 'T');
  if (!body) return std::nullopt;
  protocol::BodyReader r({body->data(), body->size()});
  auto n = r.i16();
  if (!n || *n < 0) return std::nullopt;
  std::vector<ColumnDesc> out(static_cast<std::size_t>(*n));
  for (auto& c : out) {
    auto name = r.cstr();
    auto table = r.i32();
    auto attnum = r.i16();
    auto type = r.i32();
    auto typlen = r.i16();
    auto typmod = r.i32();
    auto format = r.i16();
    if (!format) return std::nullopt;
    c = ColumnDesc{std::string(*name), std::uint32_t(*table), *attnum, std::uint32_t(*type), *typlen, *typmod, *format};
  }
  if (!r.at_end()) return std::nullopt;
  return out;
}

std::string build_row_description(const std::vector<ColumnDesc>& columns) {
  std::string out;
  protocol::MessageWriter w(out);
  w.begin('T').i16(std::int16_t(columns.size()));
  for (const auto& c : columns)
    w.cstr(c.name).i32(std::int32_t(c.table_oid)).i16(c.attnum).i32(std::int32_t(c.type_oid)).i16(c.typlen)
        .i32(c.typmod).i16(c.format);
  w.end();
  return out;
}

bool parse_data_row(std::string_view msg, Cells& cells) {
  cells.clear();
  auto body = body_of(msg, 'D');
  if (!body) return false;
  protocol::BodyReader r({body->data(), body->size()});
  auto n = r.i16();
  if (!n || *n < 0) return false;
  for (int i = 0; i < *n; ++i) {
    auto len = r.i32();
    if (!len) return false;
    if (*len < 0) {
      cells.emplace_back(std::nullopt);
      continue;
    }
    auto v = r.bytes(std::size_t(*len));
    if (!v) return false;
    cells.emplace_back(*v);
  }
  return r.at_end();
}

void append_data_row(std::string& out, const Cells& cells) {
  protocol::MessageWriter w(out);
  w.begin('D').i16(std::int16_t(cells.size()));
  for (const auto& c : cells) {
    if (c) w.i32(std::int32_t(c->size())).raw(*c);
    else w.i32(-1);
  }
  w.end();
}

protocol::SqlError malformed_message(char tag) {
  return protocol::SqlError::error(protocol::sqlstate::kProtocolViolation,
                                   std::string("malformed ") + (tag == 'T' ? "RowDescription" : "DataRow") +
                                       " in the merge");
}

std::optional<std::vector<ColumnDesc>> parse_row_description(std::string_view msg,
                                                             std::optional<protocol::SqlError>& error) {
  auto cols = parse_row_description(msg);
  if (!cols) error = malformed_message('T');
  return cols;
}

std::string build_data_row(const Cells& cells) {
  std::string out;
  append_data_row(out, cells);
  return out;
}

}  // namespace shardline::proxy::exec::ops
