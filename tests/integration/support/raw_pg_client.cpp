#include "tests/integration/support/raw_pg_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "proxy/protocol/md5_auth.hpp"
#include "proxy/protocol/scram.hpp"

namespace shardline::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::int32_t kProtocolVersion = 3 << 16;
constexpr std::size_t kMaxMessage = 64 * 1024 * 1024;

void put32(std::string& out, std::uint32_t v) {
  const std::uint32_t n = htonl(v);
  out.append(reinterpret_cast<const char*>(&n), 4);
}

void put16(std::string& out, std::uint16_t v) {
  const std::uint16_t n = htons(v);
  out.append(reinterpret_cast<const char*>(&n), 2);
}

void put_cstring(std::string& out, std::string_view s) {
  out.append(s);
  out.push_back('\0');
}

std::uint32_t get32(std::string_view in, std::size_t at) {
  if (at + 4 > in.size()) throw std::runtime_error("RawPgClient: truncated message");
  std::uint32_t n;
  std::memcpy(&n, in.data() + at, 4);
  return ntohl(n);
}

std::uint16_t get16(std::string_view in, std::size_t at) {
  if (at + 2 > in.size()) throw std::runtime_error("RawPgClient: truncated message");
  std::uint16_t n;
  std::memcpy(&n, in.data() + at, 2);
  return ntohs(n);
}

std::string describe_error(const BackendMessage& m) {
  return fmt::format("{} {}", m.field('C'), m.field('M'));
}

}  // namespace

std::string BackendMessage::field(char code) const {
  std::size_t at = 0;
  while (at < body.size() && body[at] != '\0') {
    const char f = body[at];
    const std::size_t end = body.find('\0', at + 1);
    if (end == std::string::npos) break;
    if (f == code) return body.substr(at + 1, end - at - 1);
    at = end + 1;
  }
  return "";
}

std::optional<std::string> BackendMessage::column(int col) const {
  if (tag != 'D') throw std::runtime_error(fmt::format("RawPgClient: '{}' is not a DataRow", tag));
  const int n = get16(body, 0);
  if (col < 0 || col >= n) throw std::runtime_error(fmt::format("RawPgClient: no column {} in a row of {}", col, n));
  std::size_t at = 2;
  for (int i = 0;; ++i) {
    const auto len = static_cast<std::int32_t>(get32(body, at));
    at += 4;
    if (i == col) {
      if (len < 0) return std::nullopt;
      if (at + static_cast<std::size_t>(len) > body.size()) throw std::runtime_error("RawPgClient: truncated DataRow");
      return body.substr(at, static_cast<std::size_t>(len));
    }
    if (len > 0) at += static_cast<std::size_t>(len);
  }
}

RawPgClient::RawPgClient(std::uint16_t port, const std::string& user, const std::string& password,
                         const std::string& database, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error(fmt::format("RawPgClient: socket: {}", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd_);
    throw std::runtime_error(fmt::format("RawPgClient: cannot connect to 127.0.0.1:{}: {}", port, why));
  }
  try {
    std::string body;
    put32(body, kProtocolVersion);
    put_cstring(body, "user");
    put_cstring(body, user);
    put_cstring(body, "database");
    put_cstring(body, database);
    body.push_back('\0');
    put32(out_, static_cast<std::uint32_t>(body.size() + 4));
    out_ += body;
    send();
    authenticate(user, password, deadline);
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

RawPgClient::~RawPgClient() {
  if (fd_ < 0) return;
  std::string terminate = "X";
  put32(terminate, 4);
  [[maybe_unused]] const auto n = ::send(fd_, terminate.data(), terminate.size(), MSG_NOSIGNAL);
  ::close(fd_);
}

void RawPgClient::authenticate(const std::string& user, const std::string& password, Clock::time_point deadline) {
  std::optional<proxy::protocol::ScramClient> scram;
  for (;;) {
    const BackendMessage m = read_message(deadline);
    switch (m.tag) {
      case 'E': throw std::runtime_error("RawPgClient: the server refused the login: " + describe_error(m));
      case 'R': {
        const std::uint32_t code = get32(m.body, 0);
        if (code == 0) break;  // AuthenticationOk
        if (code == 3) {       // cleartext
          std::string p;
          put_cstring(p, password);
          message('p', p);
        } else if (code == 5) {  // MD5 with a 4-byte salt
          if (m.body.size() < 8) throw std::runtime_error("RawPgClient: truncated AuthenticationMD5Password");
          std::array<unsigned char, 4> salt{};
          std::memcpy(salt.data(), m.body.data() + 4, 4);
          std::string p;
          put_cstring(p, proxy::protocol::md5_password_response(user, password, salt));
          message('p', p);
        } else if (code == 10) {  // SASL: a list of mechanisms
          if (m.body.find(std::string("SCRAM-SHA-256") + '\0', 4) == std::string::npos)
            throw std::runtime_error("RawPgClient: the server offers no SCRAM-SHA-256");
          scram.emplace(password);
          const std::string first = scram->client_first();
          std::string p;
          put_cstring(p, "SCRAM-SHA-256");
          put32(p, static_cast<std::uint32_t>(first.size()));
          p += first;
          message('p', p);
        } else if (code == 11) {  // SASLContinue
          if (!scram) throw std::runtime_error("RawPgClient: SASLContinue without SASL");
          auto final_message = scram->on_server_first(std::string_view(m.body).substr(4));
          if (!final_message) throw std::runtime_error("RawPgClient: SCRAM: " + final_message.error());
          message('p', final_message.value());
        } else if (code == 12) {  // SASLFinal
          if (!scram) throw std::runtime_error("RawPgClient: SASLFinal without SASL");
          if (auto ok = scram->on_server_final(std::string_view(m.body).substr(4)); !ok)
            throw std::runtime_error("RawPgClient: SCRAM: " + ok.error());
        } else {
          throw std::runtime_error(fmt::format("RawPgClient: unsupported authentication request {}", code));
        }
        send();
        break;
      }
      case 'K': backend_pid_ = static_cast<std::int32_t>(get32(m.body, 0)); break;
      case 'Z': return;
      default: break;  // ParameterStatus, NoticeResponse
    }
  }
}

void RawPgClient::message(char tag, const std::string& body) {
  out_.push_back(tag);
  put32(out_, static_cast<std::uint32_t>(body.size() + 4));
  out_ += body;
}

RawPgClient& RawPgClient::query(std::string_view sql) {
  std::string b;
  put_cstring(b, sql);
  message('Q', b);
  return *this;
}

RawPgClient& RawPgClient::parse(std::string_view statement, std::string_view sql) {
  std::string b;
  put_cstring(b, statement);
  put_cstring(b, sql);
  put16(b, 0);  // no parameter types: the server infers them
  message('P', b);
  return *this;
}

RawPgClient& RawPgClient::bind(std::string_view portal, std::string_view statement,
                               const std::vector<std::optional<std::string>>& params) {
  std::string b;
  put_cstring(b, portal);
  put_cstring(b, statement);
  put16(b, 0);  // every parameter in text format
  put16(b, static_cast<std::uint16_t>(params.size()));
  for (const auto& p : params) {
    if (!p) {
      put32(b, 0xFFFFFFFFu);
      continue;
    }
    put32(b, static_cast<std::uint32_t>(p->size()));
    b += *p;
  }
  put16(b, 0);  // every result column in text format
  message('B', b);
  return *this;
}

RawPgClient& RawPgClient::execute(std::string_view portal, std::int32_t max_rows) {
  std::string b;
  put_cstring(b, portal);
  put32(b, static_cast<std::uint32_t>(max_rows));
  message('E', b);
  return *this;
}

RawPgClient& RawPgClient::close_statement(std::string_view statement) {
  std::string b = "S";
  put_cstring(b, statement);
  message('C', b);
  return *this;
}

RawPgClient& RawPgClient::close_portal(std::string_view portal) {
  std::string b = "P";
  put_cstring(b, portal);
  message('C', b);
  return *this;
}

RawPgClient& RawPgClient::sync() {
  message('S', "");
  return *this;
}

void RawPgClient::send() {
  std::size_t done = 0;
  while (done < out_.size()) {
    const ssize_t n = ::send(fd_, out_.data() + done, out_.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error(fmt::format("RawPgClient: send: {}", std::strerror(errno)));
    done += static_cast<std::size_t>(n);
  }
  out_.clear();
}

BackendMessage RawPgClient::read_message(Clock::time_point deadline) {
  for (;;) {
    if (in_.size() >= 5) {
      const std::uint32_t len = get32(in_, 1);
      if (len < 4 || len > kMaxMessage)
        throw std::runtime_error(fmt::format("RawPgClient: message '{}' with a bad length {}", in_[0], len));
      if (in_.size() >= 1 + std::size_t{len}) {
        BackendMessage m{in_[0], in_.substr(5, len - 4)};
        in_.erase(0, 1 + std::size_t{len});
        return m;
      }
    }
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) throw std::runtime_error("RawPgClient: timed out waiting for the server");
    pollfd pfd{fd_, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(left));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;  // the deadline check above ends it
    char buf[8192];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("RawPgClient: the server closed the connection");
    in_.append(buf, static_cast<std::size_t>(n));
  }
}

std::vector<BackendMessage> RawPgClient::until_ready(std::chrono::milliseconds timeout) {
  send();
  const auto deadline = Clock::now() + timeout;
  std::vector<BackendMessage> got;
  for (;;) {
    got.push_back(read_message(deadline));
    if (got.back().tag == 'Z') return got;
  }
}

std::string tags(const std::vector<BackendMessage>& messages) {
  std::string s;
  for (const auto& m : messages) s.push_back(m.tag);
  return s;
}

std::string first_sqlstate(const std::vector<BackendMessage>& messages) {
  for (const auto& m : messages)
    if (m.tag == 'E') return m.field('C');
  return "";
}

}  // namespace shardline::testing
