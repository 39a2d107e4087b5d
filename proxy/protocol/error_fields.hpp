#pragma once
// The fields of an ErrorResponse / NoticeResponse body: a type byte and a NUL-ended string each,
// a NUL after the last. https://www.postgresql.org/docs/current/protocol-error-fields.html

#include <string>
#include <string_view>

namespace shardline::proxy::protocol {

/// The SQLSTATE (field 'C') of an ErrorResponse body; empty if it has none.
std::string_view error_sqlstate(std::string_view body);

/// The ErrorResponse (with its header) for `body` with `sqlstate` as its field 'C', for a server
/// that sent none: every error a client gets from the proxy carries a SQLSTATE.
std::string error_with_sqlstate(std::string_view body, std::string_view sqlstate);

}  // namespace shardline::proxy::protocol
