#include "router/parser/set_value.hpp"

#include <array>

#include "router/parser/keywords.hpp"

namespace shardline::router {

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool is_list_quoted_parameter(std::string_view lower_name) {
  static constexpr std::array<std::string_view, 6> kListQuoted = {
      "local_preload_libraries", "search_path",      "session_preload_libraries",
      "shared_preload_libraries", "temp_tablespaces", "unix_socket_directories"};
  for (auto n : kListQuoted) {
    if (n == lower_name) return true;
  }
  return false;
}

void SetValue::separator() {
  if (!first_) out_ += ", ";
  first_ = false;
}

void SetValue::add_string(std::string_view s) {
  separator();
  if (list_quoted_) {
    out_ += quote_identifier(s);
  } else {
    out_ += s;
  }
}

void SetValue::add_integer(std::int32_t v) {
  separator();
  out_ += std::to_string(v);
}

void SetValue::add_float(std::string_view text) {
  separator();
  out_ += text;
}

void SetValue::add_verbatim(std::string_view text) {
  separator();
  out_ += text;
}

}  // namespace shardline::router
