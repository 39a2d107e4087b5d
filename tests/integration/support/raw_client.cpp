#include "tests/integration/support/raw_client.hpp"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace shardline::testing {

namespace {

std::uint32_t get_u32(const char* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return ntohl(v);
}

std::uint16_t get_u16(const char* p) {
  std::uint16_t v;
  std::memcpy(&v, p, 2);
  return ntohs(v);
}

/// Appends one message: tag, length, body.
std::string frame(char tag, std::string_view body) {
  std::string out(1, tag);
  std::uint32_t len = htonl(std::uint32_t(body.size() + 4));
  out.append(reinterpret_cast<const char*>(&len), 4);
  out.append(body);
  return out;
}

void put_u32(std::string& s, std::uint32_t v) {
  v = htonl(v);
  s.append(reinterpret_cast<const char*>(&v), 4);
}

void put_u16(std::string& s, std::uint16_t v) {
  v = htons(v);
  s.append(reinterpret_cast<const char*>(&v), 2);
}

void put_cstr(std::string& s, std::string_view v) {
  s.append(v);
  s.push_back('\0');
}

std::string error_field(const std::string& body, char code) {
  std::size_t pos = 0;
  while (pos < body.size() && body[pos] != '\0') {
    char c = body[pos++];
    auto end = body.find('\0', pos);
    if (end == std::string::npos) break;
    if (c == code) return body.substr(pos, end - pos);
    pos = end + 1;
  }
  return "";
}

}  // namespace

std::string RawMessage::sqlstate() const { return error_field(body, 'C'); }
std::string RawMessage::message() const { return error_field(body, 'M'); }
std::string RawMessage::command_tag() const { return body.substr(0, body.find('\0')); }
char RawMessage::status() const { return body.empty() ? '?' : body[0]; }

std::vector<std::optional<std::string>> RawMessage::row() const {
  std::vector<std::optional<std::string>> out;
  if (body.size() < 2) return out;
  const int n = get_u16(body.data());
  std::size_t pos = 2;
  for (int i = 0; i < n && pos + 4 <= body.size(); ++i) {
    const std::uint32_t len = get_u32(body.data() + pos);
    pos += 4;
    if (len == 0xffffffffu) {
      out.emplace_back(std::nullopt);
    } else {
      out.emplace_back(body.substr(pos, len));
      pos += len;
    }
  }
  return out;
}

std::pair<std::string, std::string> RawMessage::parameter() const {
  auto z = body.find('\0');
  if (z == std::string::npos) return {body, ""};
  auto rest = body.substr(z + 1);
  return {body.substr(0, z), rest.substr(0, rest.find('\0'))};
}

std::string RawMessage::summary() const {
  switch (tag) {
    case 'C': return "C:" + command_tag();
    case 'E': return "E:" + sqlstate();
    case 'N': return "N:" + sqlstate();
    case 'Z': return std::string("Z:") + status();
    case 'S': {
      auto [name, value] = parameter();
      return "S:" + name + "=" + value;
    }
    case 'D': {
      std::string s = "D:[";
      bool first = true;
      for (const auto& v : row()) {
        if (!first) s += ",";
        first = false;
        s += v ? *v : "NULL";
      }
      return s + "]";
    }
    default: return std::string(1, tag);
  }
}

namespace raw {

std::string query(std::string_view sql) {
  std::string b;
  put_cstr(b, sql);
  return frame('Q', b);
}

std::string parse(std::string_view name, std::string_view sql, const std::vector<std::uint32_t>& param_oids) {
  std::string b;
  put_cstr(b, name);
  put_cstr(b, sql);
  put_u16(b, std::uint16_t(param_oids.size()));
  for (auto oid : param_oids) put_u32(b, oid);
  return frame('P', b);
}

std::string bind(std::string_view portal, std::string_view statement,
                 const std::vector<std::optional<std::string>>& params,
                 const std::vector<std::int16_t>& result_formats) {
  std::string b;
  put_cstr(b, portal);
  put_cstr(b, statement);
  put_u16(b, 0);  // every parameter in text format
  put_u16(b, std::uint16_t(params.size()));
  for (const auto& p : params) {
    if (!p) {
      put_u32(b, 0xffffffffu);
    } else {
      put_u32(b, std::uint32_t(p->size()));
      b.append(*p);
    }
  }
  put_u16(b, std::uint16_t(result_formats.size()));
  for (auto f : result_formats) put_u16(b, std::uint16_t(f));
  return frame('B', b);
}

std::string describe(char kind, std::string_view name) {
  std::string b(1, kind);
  put_cstr(b, name);
  return frame('D', b);
}

std::string execute(std::string_view portal, std::int32_t max_rows) {
  std::string b;
  put_cstr(b, portal);
  put_u32(b, std::uint32_t(max_rows));
  return frame('E', b);
}

std::string close(char kind, std::string_view name) {
  std::string b(1, kind);
  put_cstr(b, name);
  return frame('C', b);
}

std::string flush() { return frame('H', {}); }
std::string sync() { return frame('S', {}); }
std::string message(char tag, std::string_view body) { return frame(tag, body); }
std::string be32(std::uint32_t v) {
  std::string s;
  put_u32(s, v);
  return s;
}

}  // namespace raw

RawClient::RawClient(const std::string& conninfo, std::chrono::milliseconds timeout) : timeout_(timeout) {
  conn_.reset(PQconnectdb((conninfo + " sslmode=disable gssencmode=disable").c_str()));
  if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK)
    throw std::runtime_error("raw client cannot connect: " + std::string(conn_ ? PQerrorMessage(conn_.get()) : "out of memory"));
  // libpq has read everything up to the first ReadyForQuery; from here on the socket is ours
  // (libpq is only asked to close it, in PQfinish).
  fd_ = PQsocket(conn_.get());
}

std::string RawClient::startup_parameter(const std::string& name) const {
  const char* v = PQparameterStatus(conn_.get(), name.c_str());
  return v ? v : "";
}

void RawClient::send(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {  // libpq's socket is non-blocking
      pollfd pfd{fd_, POLLOUT, 0};
      if (::poll(&pfd, 1, int(timeout_.count())) <= 0)
        throw std::runtime_error(fmt::format("raw client: cannot send within {} ms", timeout_.count()));
      continue;
    }
    if (n <= 0) throw std::runtime_error(fmt::format("raw client: send failed: {}", std::strerror(errno)));
    bytes.remove_prefix(std::size_t(n));
  }
}

RawMessage RawClient::read() {
  for (;;) {
    if (in_.size() >= 5) {
      const std::uint32_t len = get_u32(in_.data() + 1);
      if (len < 4) throw std::runtime_error("raw client: malformed message length");
      if (in_.size() >= 1 + std::size_t(len)) {
        RawMessage m{in_[0], in_.substr(5, len - 4)};
        in_.erase(0, 1 + std::size_t(len));
        return m;
      }
    }
    pollfd pfd{fd_, POLLIN, 0};
    int r = ::poll(&pfd, 1, int(timeout_.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0)
      throw std::runtime_error(fmt::format("raw client: no reply within {} ms (have {} bytes)", timeout_.count(), in_.size()));
    char buf[8192];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;  // libpq's socket is non-blocking
    if (n < 0) throw std::runtime_error(fmt::format("raw client: recv failed: {}", std::strerror(errno)));
    if (n == 0) throw std::runtime_error(fmt::format("raw client: the server closed the connection (unread: {} bytes)", in_.size()));
    in_.append(buf, std::size_t(n));
  }
}

bool peer_closed_within(int fd, std::chrono::milliseconds limit, std::string* got) {
  const auto until = std::chrono::steady_clock::now() + limit;
  char buf[65536];
  while (std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (::poll(&p, 1, std::max(1, int(left.count()))) <= 0) continue;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return true;
    if (got) got->append(buf, std::size_t(n));
  }
  return false;
}

void RawClient::vanish() {
  ::shutdown(fd_, SHUT_RDWR);
  // PQfinish would try to send Terminate on the shut socket: let it fail quietly.
}

std::vector<RawMessage> RawClient::read_until(char tag) {
  std::vector<RawMessage> out;
  do out.push_back(read());
  while (out.back().tag != tag);
  return out;
}

std::vector<RawMessage> RawClient::round_trip(std::string_view bytes) {
  send(bytes);
  return read_until_ready();
}

std::vector<std::optional<std::string>> RawClient::query_values(std::string_view sql) {
  std::vector<std::optional<std::string>> out;
  for (const auto& m : round_trip(raw::query(sql))) {
    if (m.tag == 'E') throw std::runtime_error(fmt::format("`{}` failed: {} {}", sql, m.sqlstate(), m.message()));
    if (m.tag == 'D') {
      auto row = m.row();
      out.push_back(row.empty() ? std::nullopt : row[0]);
    }
  }
  return out;
}

std::string RawClient::summary(const std::vector<RawMessage>& messages) {
  std::string s;
  for (const auto& m : messages) {
    if (m.tag == 'S' && m.parameter().first.rfind("shardline.", 0) == 0) continue;
    if (!s.empty()) s += ' ';
    s += m.summary();
  }
  return s;
}

}  // namespace shardline::testing
