#include "proxy/exec/ops/limit.hpp"

#include <charconv>

namespace shardline::proxy::exec::ops {

namespace {

std::int64_t be_signed(std::string_view d) {
  std::uint64_t v = 0;
  for (char c : d) v = (v << 8) | std::uint8_t(c);
  const unsigned bits = unsigned(d.size()) * 8;
  if (bits < 64 && (v >> (bits - 1)) & 1) v |= ~std::uint64_t(0) << bits;  // sign-extend
  return std::int64_t(v);
}

protocol::SqlError bad_param(int n, const std::string& why) {
  return protocol::SqlError::error(protocol::sqlstate::kInvalidParameterValue,
                                   "parameter $" + std::to_string(n) + " of LIMIT/OFFSET " + why);
}

}  // namespace

bool resolve_limit_value(const router::PlanValue& v, bool is_offset, const ParamValues& params,
                         std::optional<std::int64_t>& out, protocol::SqlError& error) {
  out.reset();
  using K = router::PlanValue::Kind;
  if (v.kind == K::None) return true;
  std::int64_t value = v.constant;
  if (v.kind == K::Param) {
    const int n = v.param;
    if (n < 1 || std::size_t(n) > params.values.size()) {
      error = bad_param(n, "is missing (the statement has " + std::to_string(params.values.size()) + " parameters)");
      return false;
    }
    const auto& raw = params.values[std::size_t(n - 1)];
    if (!raw) return true;  // LIMIT NULL: no limit; OFFSET NULL: 0
    const int format = std::size_t(n - 1) < params.formats.size() ? params.formats[std::size_t(n - 1)] : 0;
    if (format == 1) {
      if (raw->size() != 8 && raw->size() != 4 && raw->size() != 2) {
        error = bad_param(n, "is not a binary bigint/integer (" + std::to_string(raw->size()) + " bytes)");
        return false;
      }
      value = be_signed(*raw);
    } else {
      std::string_view s = *raw;
      while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
      while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
      if (!s.empty() && s.front() == '+') s.remove_prefix(1);
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
      if (s.empty() || ec != std::errc() || p != s.data() + s.size()) {
        error = bad_param(n, "is not an integer: '" + std::string(raw->substr(0, 64)) + "'");
        return false;
      }
    }
  }
  if (value < 0) {
    error = is_offset ? protocol::SqlError::error("2201X", "OFFSET must not be negative")
                      : protocol::SqlError::error("2201W", "LIMIT must not be negative");
    return false;
  }
  out = value;
  return true;
}

void Limit::describe(std::string_view row_description) {
  if (error_) return;
  next_->describe(row_description);
}

void Limit::row(std::string_view data_row) {
  if (error_) return;
  if (skipped_ < offset_) {
    ++skipped_;
    return;
  }
  if (count_ && passed_ >= *count_) return;
  ++passed_;
  next_->row(data_row);
}

std::string Limit::explain() const {
  std::string out = "Limit(" + (count_ ? std::to_string(*count_) : std::string("ALL"));
  if (offset_) out += " OFFSET " + std::to_string(offset_);
  return out + ")";
}

}  // namespace shardline::proxy::exec::ops
