#pragma once
// Reading and writing the two backend messages the merge operators work on: RowDescription ('T')
// and DataRow ('D'), whole messages (tag, length word, body).
// https://www.postgresql.org/docs/current/protocol-message-formats.html

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/protocol/sql_error.hpp"

namespace shardline::proxy::exec::ops {

/// One field of a RowDescription.
struct ColumnDesc {
  std::string name;
  std::uint32_t table_oid = 0;
  std::int16_t attnum = 0;
  std::uint32_t type_oid = 0;
  std::int16_t typlen = 0;
  std::int32_t typmod = -1;
  std::int16_t format = 0;  ///< 0 text, 1 binary
  bool operator==(const ColumnDesc&) const = default;
};

/// nullopt when `msg` is not a well-formed RowDescription.
std::optional<std::vector<ColumnDesc>> parse_row_description(std::string_view msg);
std::string build_row_description(const std::vector<ColumnDesc>& columns);

/// One DataRow's values; nullopt is SQL NULL. Views into the message.
using Cells = std::vector<std::optional<std::string_view>>;

/// Fills `cells` (reusing its storage); false when `msg` is not a well-formed DataRow.
bool parse_data_row(std::string_view msg, Cells& cells);
void append_data_row(std::string& out, const Cells& cells);
std::string build_data_row(const Cells& cells);

/// 08P01 for a message in the merge that is not the well-formed RowDescription ('T') or
/// DataRow ('D') it should be.
protocol::SqlError malformed_message(char tag);

/// parse_row_description, or nullopt with `error` set.
std::optional<std::vector<ColumnDesc>> parse_row_description(std::string_view msg, std::optional<protocol::SqlError>& error);

}  // namespace shardline::proxy::exec::ops
