#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace shardline::proxy::protocol {

/// The failure half of a Result: a message that names the cause, ready to be wrapped in an
/// ErrorResponse by whoever owns the connection. A distinct type (not a bare string) so that
/// `Result<std::string>` can tell a value from an error.
struct Error {
  std::string message;
};

/// Either a value or an Error. Hot paths return this instead of throwing (DESIGN.md, Errors).
/// `return value;` and `return Error{"..."};` both convert implicitly.
/// Reading value() of a failed Result (or error() of a successful one) is a programming error and
/// throws std::bad_variant_access rather than reading garbage.
template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::remove_cvref_t<T>, Error>, "Result<Error> is ambiguous");
  static_assert(!std::is_reference_v<T>, "Result holds values, not references");

 public:
  template <typename U = T>
    requires(std::is_constructible_v<T, U &&> &&
             !std::is_same_v<std::remove_cvref_t<U>, Error> &&
             !std::is_same_v<std::remove_cvref_t<U>, Result>)
  Result(U&& value) : state_(std::in_place_index<0>, std::forward<U>(value)) {}  // NOLINT
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}     // NOLINT

  bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }

  const std::string& error() const { return std::get<1>(state_).message; }

 private:
  std::variant<T, Error> state_;
};

/// Success carries nothing; `return {};` means ok.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT

  bool ok() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return ok(); }
  /// Symmetry with Result<T> so generic callers can write `r.value()`; throws if failed.
  void value() const {
    if (failed_) throw std::bad_variant_access();
  }
  const std::string& error() const {
    if (!failed_) throw std::bad_variant_access();
    return error_.message;
  }

 private:
  Error error_;
  bool failed_ = false;
};

}  // namespace shardline::proxy::protocol
