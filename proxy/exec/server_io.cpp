#include "proxy/exec/server_io.hpp"

#include "proxy/protocol/frame_reader.hpp"
#include "proxy/protocol/message_writer.hpp"

namespace shardline::proxy::exec {

std::string query_message(std::string_view sql) {
  std::string out;
  protocol::MessageWriter(out).begin('Q').cstr(sql).end();
  return out;
}

boost::asio::awaitable<std::optional<std::string>> next_message(backend::ServerConnection& server) {
  auto& in = server.input();
  for (;;) {
    protocol::Frame f;
    auto st = protocol::decode_backend_frame(in.readable(), f);
    if (st == protocol::DecodeStatus::Malformed) co_return std::nullopt;
    if (st == protocol::DecodeStatus::Ok) {
      std::string msg(in.readable().data(), f.total_size);
      in.consume(f.total_size);
      co_return msg;
    }
    boost::system::error_code ec;
    auto n = co_await server.stream().read_some(in.prepare(8192), ec);
    if (ec) co_return std::nullopt;
    in.commit(n);
  }
}

boost::asio::awaitable<std::vector<std::optional<std::string>>> query_column(
    backend::ServerConnection& server, std::string_view sql, std::optional<protocol::SqlError>& error) {
  std::vector<std::optional<std::string>> values;
  boost::system::error_code ec;
  co_await server.stream().write_all(query_message(sql), ec);
  if (ec) {
    error = protocol::SqlError::error(protocol::sqlstate::kConnectionFailure, "lost the shard connection");
    co_return values;
  }
  for (;;) {
    auto m = co_await next_message(server);
    if (!m) {
      error = protocol::SqlError::error(protocol::sqlstate::kConnectionFailure, "lost the shard connection");
      co_return values;
    }
    const char tag = (*m)[0];
    if (tag == 'D') {
      protocol::BodyReader r({m->data() + 5, m->size() - 5});
      r.i16();
      auto len = r.i32();
      if (len && *len >= 0) values.emplace_back(std::string(r.bytes(std::size_t(*len)).value_or("")));
      else values.emplace_back(std::nullopt);
    } else if (tag == 'E' && !error) {
      error = protocol::parse_error_fields(std::string_view(*m).substr(5));
      error->severity = "ERROR";
    } else if (tag == 'Z') {
      co_return values;
    }
  }
}

std::string quote_literal(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

}  // namespace shardline::proxy::exec
