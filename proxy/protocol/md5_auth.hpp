#pragma once

#include <array>
#include <string>
#include <string_view>

namespace shardline::proxy::protocol {

/// The PasswordMessage a client sends after AuthenticationMD5Password
/// (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP):
/// "md5" + md5hex(md5hex(password + user) + salt), lowercase hex, 35 characters.
/// The proxy uses it both to answer a backend and to compute what an application must send.
std::string md5_password_response(std::string_view user, std::string_view password,
                                  std::array<unsigned char, 4> salt);

/// Whether `given` (what the client sent) equals `expected`, in time that does not depend on
/// where they differ, so the comparison leaks nothing about the expected response.
bool md5_response_matches(std::string_view expected, std::string_view given);

}  // namespace shardline::proxy::protocol
