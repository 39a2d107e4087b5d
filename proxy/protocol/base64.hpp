#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace shardline::proxy::protocol {

/// Standard base64 (RFC 4648 section 4, with '=' padding), as SCRAM and pg_authid use it.
std::string base64_encode(std::string_view bytes);
std::string base64_encode(std::span<const unsigned char> bytes);

/// Strict decoding: the length must be a multiple of 4, only the alphabet and final padding are
/// allowed (no whitespace), and unused trailing bits must be zero, so every byte string has
/// exactly one accepted encoding. Returns nullopt on any violation.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace shardline::proxy::protocol
