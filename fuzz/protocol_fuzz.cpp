// Fuzz target: any bytes as what a client sends before and after login. The frame decoders must
// cut the stream into frames or report Malformed / NeedMoreData, never read outside the input;
// every frame body is walked with BodyReader as the session's handlers do; the SCRAM server
// must answer or refuse any client-first / client-final message. Nothing may crash.
//
// Input layout: byte 0 picks the part; the rest is its input (for SCRAM: client-first, "\0",
// client-final).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "proxy/protocol/frame_reader.hpp"
#include "proxy/protocol/message_writer.hpp"
#include "proxy/protocol/scram.hpp"

namespace {

using namespace shardline::proxy::protocol;

void walk_body(std::span<const char> body) {
  BodyReader r(body);
  // The shapes of Parse / Bind / Query bodies: strings, counts, lengths, bytes.
  while (!r.at_end() && r.ok()) {
    switch (r.remaining() % 4) {
      case 0: (void)r.cstr(); break;
      case 1: (void)r.i16(); break;
      case 2: {
        auto n = r.i32();
        if (n && *n > 0) (void)r.bytes(std::size_t(*n));
        break;
      }
      default: (void)r.byte(); break;
    }
  }
}

void frames(std::span<const char> in, bool startup) {
  while (!in.empty()) {
    Frame f;
    const DecodeStatus st = startup ? decode_startup(in, f) : decode_client_frame(in, f);
    if (st != DecodeStatus::Ok) return;
    if (f.total_size == 0 || f.total_size > in.size()) __builtin_trap();
    walk_body(f.body);
    if (f.tag == 'E') (void)parse_error_fields(std::string_view(f.body.data(), f.body.size()));
    in = in.subspan(f.total_size);
    startup = false;
  }
}

void scram(std::string_view in) {
  static const ScramSecret secret = make_scram_secret("secret", "0123456789abcdef", 4096);
  ScramServer server(secret, "fixed-server-nonce");
  const std::size_t nul = in.find('\0');
  auto first = server.on_client_first(in.substr(0, nul));
  if (nul != std::string_view::npos) (void)server.on_client_final(in.substr(nul + 1));
  (void)first;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::span<const char> in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: frames(in, true); break;
    case 1: frames(in, false); break;
    default: scram(std::string_view(in.data(), in.size())); break;
  }
  return 0;
}
