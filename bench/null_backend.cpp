// null_backend: a PostgreSQL server that does nothing, so that a benchmark through a proxy
// measures the proxy alone (bench/run.sh, "proxy ceiling"). It speaks protocol 3.0 with trust
// authentication and answers every statement at once: a query that returns rows (SELECT, WITH,
// VALUES, SHOW, TABLE) gets one row of one int4 column whose value is 1, anything else its
// command tag. BEGIN/COMMIT/ROLLBACK move the transaction status that ReadyForQuery reports.
// Extended protocol: Parse, Bind, Describe (statement or portal), Execute, Close, Flush, Sync.
// SSLRequest and GSSENCRequest are answered 'N'; CancelRequest closes the connection.
//
//   null_backend --port P [--host 127.0.0.1] [--threads N]
//
// It prints "null_backend listening on HOST:PORT" once it accepts connections.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "proxy/protocol/byte_buffer.hpp"
#include "proxy/protocol/frame_reader.hpp"
#include "proxy/protocol/message_writer.hpp"
#include "proxy/protocol/sql_error.hpp"

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using shardline::proxy::protocol::BodyReader;
using shardline::proxy::protocol::ByteBuffer;
using shardline::proxy::protocol::DecodeStatus;
using shardline::proxy::protocol::Frame;
using shardline::proxy::protocol::MessageWriter;
using shardline::proxy::protocol::SqlError;

constexpr std::int32_t kSslRequest = 80877103;
constexpr std::int32_t kGssEncRequest = 80877104;
constexpr std::int32_t kCancelRequest = 80877102;
constexpr std::int32_t kInt4Oid = 23;

/// What a statement does, decided by its first keyword.
struct Statement {
  bool rows = false;     ///< returns the one-row result
  char tx = 0;           ///< 'T' opens a transaction, 'I' ends one, 0 leaves it
  bool empty = false;    ///< no statement at all: EmptyQueryResponse
  std::string tag;       ///< the CommandComplete tag
  std::int16_t params = 0;  ///< the highest $n in the text
};

std::string upper_word(std::string_view s, std::size_t& i) {
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  std::string w;
  while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i])))
    w.push_back(char(std::toupper(static_cast<unsigned char>(s[i++]))));
  return w;
}

Statement classify(std::string_view sql) {
  Statement st;
  std::size_t i = 0;
  const std::string first = upper_word(sql, i);
  for (std::size_t k = 0; k + 1 < sql.size(); ++k)
    if (sql[k] == '$' && std::isdigit(static_cast<unsigned char>(sql[k + 1])))
      st.params = std::max<std::int16_t>(st.params, std::int16_t(std::atoi(sql.data() + k + 1)));
  if (first.empty()) {
    st.empty = true;
  } else if (first == "SELECT" || first == "WITH" || first == "VALUES" || first == "SHOW" || first == "TABLE") {
    st.rows = true;
    st.tag = first == "SHOW" ? "SHOW" : "SELECT 1";
  } else if (first == "BEGIN" || first == "START") {
    st.tx = 'T', st.tag = "BEGIN";
  } else if (first == "COMMIT" || first == "END") {
    st.tx = 'I', st.tag = "COMMIT";
  } else if (first == "ROLLBACK" || first == "ABORT") {
    st.tx = 'I', st.tag = "ROLLBACK";
  } else if (first == "INSERT") {
    st.tag = "INSERT 0 1";
  } else if (first == "UPDATE" || first == "DELETE") {
    st.tag = first + " 1";
  } else if (first == "DISCARD" || first == "DEALLOCATE" || first == "CREATE" || first == "DROP" ||
             first == "ALTER") {
    const std::string second = upper_word(sql, i);
    st.tag = first == "DEALLOCATE" && second != "ALL" ? first : first + " " + second;
  } else {
    st.tag = first;
  }
  return st;
}

/// The statements of a simple Query, split at semicolons outside quotes.
std::vector<std::string_view> split_statements(std::string_view sql) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  char quote = 0;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == ';') {
      out.push_back(sql.substr(start, i - start));
      start = i + 1;
    }
  }
  std::string_view rest = sql.substr(start);
  if (out.empty() || rest.find_first_not_of(" \t\r\n") != std::string_view::npos) out.push_back(rest);
  return out;
}

class Connection {
 public:
  explicit Connection(tcp::socket s) : socket_(std::move(s)) { socket_.set_option(tcp::no_delay(true)); }

  asio::awaitable<void> run() {
    if (!co_await startup()) co_return;
    for (;;) {
      Frame f;
      for (;;) {
        auto st = shardline::proxy::protocol::decode_frame(in_.readable(), f);
        if (st == DecodeStatus::Malformed) co_return;
        if (st == DecodeStatus::Ok) break;
        if (!out_.empty() && !co_await flush()) co_return;
        if (!co_await read_more()) co_return;
      }
      const bool keep = handle(f);
      in_.consume(f.total_size);
      if (!keep) co_return;
    }
  }

 private:
  asio::awaitable<bool> read_more() {
    auto buf = in_.prepare(16384);
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(buf.data(), buf.size()),
                                                    asio::as_tuple(asio::use_awaitable));
    if (ec || n == 0) co_return false;
    in_.commit(n);
    co_return true;
  }
  asio::awaitable<bool> flush() {
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out_), asio::as_tuple(asio::use_awaitable));
    out_.clear();
    co_return !ec;
  }

  asio::awaitable<bool> startup() {
    for (;;) {
      Frame f;
      for (;;) {
        auto st = shardline::proxy::protocol::decode_startup(in_.readable(), f);
        if (st == DecodeStatus::Malformed) co_return false;
        if (st == DecodeStatus::Ok) break;
        if (!co_await read_more()) co_return false;
      }
      BodyReader r(f.body);
      const std::int32_t code = r.i32().value_or(0);
      in_.consume(f.total_size);
      if (code == kSslRequest || code == kGssEncRequest) {
        out_ = "N";
        if (!co_await flush()) co_return false;
        continue;
      }
      if ((code >> 16) != 3) co_return false;  // CancelRequest or an unknown protocol
      MessageWriter w(out_);
      w.auth_request(0);
      const std::pair<const char*, const char*> params[] = {
          {"server_version", "15.0 (null_backend)"}, {"server_encoding", "UTF8"}, {"client_encoding", "UTF8"},
          {"DateStyle", "ISO, MDY"}, {"integer_datetimes", "on"}, {"IntervalStyle", "postgres"},
          {"standard_conforming_strings", "on"}, {"TimeZone", "UTC"}, {"is_superuser", "off"},
          {"application_name", ""}};
      for (const auto& [n, v] : params) w.parameter_status(n, v);
      w.backend_key_data(std::int32_t(::getpid()), 0);
      w.ready_for_query('I');
      co_return co_await flush();
    }
  }

  void row_description(MessageWriter& w) {
    w.begin('T').i16(1).cstr("?column?").i32(0).i16(0).i32(kInt4Oid).i16(4).i32(-1).i16(binary_ ? 1 : 0).end();
  }
  void data_row(MessageWriter& w) {
    if (binary_) w.begin('D').i16(1).i32(4).i32(1).end();
    else w.begin('D').i16(1).i32(1).byte('1').end();
  }
  void execute(MessageWriter& w, const Statement& st) {
    if (st.empty) {
      w.empty_query();
      return;
    }
    if (st.rows) data_row(w);
    w.command_complete(st.tag);
    if (st.tx) status_ = st.tx;
  }

  /// The statement `name` refers to; an unknown named one is an error (26000, as in PostgreSQL),
  /// after which messages are skipped up to Sync.
  const Statement* statement(MessageWriter& w, const std::string& name) {
    auto it = statements_.find(name);
    if (it != statements_.end()) return &it->second;
    if (name.empty()) return &unnamed_default_;
    w.error(SqlError::error("26000", "prepared statement \"" + name + "\" does not exist"));
    skipping_ = true;
    return nullptr;
  }

  /// One message; false ends the connection.
  bool handle(const Frame& f) {
    MessageWriter w(out_);
    BodyReader r(f.body);
    if (skipping_ && f.tag != 'S' && f.tag != 'X') return true;
    switch (f.tag) {
      case 'Q': {
        const std::string_view sql = r.cstr().value_or("");
        binary_ = false;
        for (auto part : split_statements(sql)) {
          const Statement st = classify(part);
          if (st.rows) row_description(w);
          execute(w, st);
        }
        w.ready_for_query(status_);
        return true;
      }
      case 'P': {
        const std::string name(r.cstr().value_or(""));
        statements_[name] = classify(r.cstr().value_or(""));
        w.parse_complete();
        return true;
      }
      case 'B': return bind(w, r);
      case 'D': {
        const char kind = r.byte().value_or('S');
        const std::string name(r.cstr().value_or(""));
        const Statement* found = kind == 'P' ? &portal_ : statement(w, name);
        if (!found) return true;
        const Statement& st = *found;
        if (kind == 'S') {
          w.begin('t').i16(st.params);
          for (int i = 0; i < st.params; ++i) w.i32(kInt4Oid);
          w.end();
          binary_ = false;
        }
        if (st.rows) row_description(w);
        else w.begin('n').end();
        return true;
      }
      case 'E': execute(w, portal_); return true;
      case 'C':
        if (r.byte().value_or('S') == 'S') statements_.erase(std::string(r.cstr().value_or("")));
        w.close_complete();
        return true;
      case 'H': return true;  // output goes out before the next read anyway
      case 'S':
        skipping_ = false;
        w.ready_for_query(status_);
        return true;
      case 'X': return false;
      default:
        w.error(SqlError::error("08P01", std::string("null_backend: unsupported message type '") + f.tag + "'"));
        w.ready_for_query(status_);
        return true;
    }
  }

  bool bind(MessageWriter& w, BodyReader& r) {
    r.cstr();  // portal
    const std::string name(r.cstr().value_or(""));
    const int nfmt = r.i16().value_or(0);
    for (int i = 0; i < nfmt; ++i) r.i16();
    const int nval = r.i16().value_or(0);
    for (int i = 0; i < nval; ++i) {
      const std::int32_t len = r.i32().value_or(-1);
      if (len > 0) r.bytes(std::size_t(len));
    }
    const int nres = r.i16().value_or(0);
    binary_ = nres > 0 && r.i16().value_or(0) == 1;
    const Statement* st = statement(w, name);
    if (!st) return true;
    portal_ = *st;
    w.begin('2').end();
    return true;
  }

  tcp::socket socket_;
  ByteBuffer in_;
  std::string out_;
  char status_ = 'I';
  bool binary_ = false;  ///< the current portal returns binary results
  bool skipping_ = false;  ///< after an error in an extended unit: messages dropped up to Sync
  Statement unnamed_default_;  ///< Bind of the unnamed statement before any Parse
  Statement portal_;
  std::unordered_map<std::string, Statement> statements_;
};

asio::awaitable<void> serve(tcp::socket s) {
  Connection c(std::move(s));
  co_await c.run();
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor) {
  for (;;) {
    auto [ec, s] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    auto ex = s.get_executor();
    asio::co_spawn(ex, serve(std::move(s)), asio::detached);
  }
}

int usage() {
  std::fprintf(stderr, "usage: null_backend --port P [--host 127.0.0.1] [--threads N]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 0, threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view opt = argv[i];
    if (opt == "--port") port = std::atoi(argv[i + 1]);
    else if (opt == "--host") host = argv[i + 1];
    else if (opt == "--threads") threads = std::atoi(argv[i + 1]);
    else return usage();
  }
  if (argc % 2 == 0 || port <= 0 || port > 65535 || threads < 1) return usage();
  asio::io_context io(threads);
  tcp::acceptor acceptor(io);
  try {
    tcp::endpoint ep(asio::ip::make_address(host), std::uint16_t(port));
    acceptor.open(ep.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(ep);
    acceptor.listen(asio::socket_base::max_listen_connections);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "null_backend: cannot listen on %s:%d: %s\n", host.c_str(), port, e.what());
    return 1;
  }
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](auto, int) { io.stop(); });
  asio::co_spawn(io, accept_loop(acceptor), asio::detached);
  std::printf("null_backend listening on %s:%d\n", host.c_str(), port);
  std::fflush(stdout);
  std::vector<std::thread> extra;
  for (int i = 1; i < threads; ++i) extra.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : extra) t.join();
  return 0;
}
