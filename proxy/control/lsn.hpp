#pragma once
// A PostgreSQL WAL position (pg_lsn). The lag monitor compares the primary's insert position with
// each replica's replay position, and version cookies carry a commit LSN; a strong type keeps
// these 64-bit byte offsets from being mixed up with counts, ports or epochs.

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace shardline::control {

class Lsn {
 public:
  constexpr Lsn() = default;
  constexpr explicit Lsn(std::uint64_t value) : value_(value) {}

  /// The byte position in the WAL stream.
  constexpr std::uint64_t value() const { return value_; }

  /// Parses PostgreSQL's text form "16/B374D848": two hexadecimal numbers of 1 to 8 digits (either
  /// case) around a slash, the high and low 32 bits, nothing else (no spaces, no sign, no "0x"),
  /// exactly what pg_lsn_in accepts. nullopt on anything else.
  static std::optional<Lsn> parse(std::string_view text) {
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    const auto high = parse_half(text.substr(0, slash));
    const auto low = parse_half(text.substr(slash + 1));
    if (!high || !low) return std::nullopt;
    return Lsn((*high << 32) | *low);
  }

  /// PostgreSQL's output form: upper-case hex halves without leading zeros ("0/0", "16/B374D848").
  std::string str() const {
    return fmt::format("{:X}/{:X}", value_ >> 32, value_ & 0xFFFFFFFFu);
  }

  friend constexpr auto operator<=>(Lsn, Lsn) = default;

 private:
  static std::optional<std::uint64_t> parse_half(std::string_view s) {
    if (s.empty() || s.size() > 8) return std::nullopt;
    std::uint64_t v = 0;
    for (const char c : s) {
      int d;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
      else return std::nullopt;
      v = v * 16 + static_cast<std::uint64_t>(d);
    }
    return v;
  }

  std::uint64_t value_ = 0;
};

}  // namespace shardline::control
