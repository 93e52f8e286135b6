// outcome<T>: a value or the pool_error that prevented it. The policy and codec
// layers return it instead of throwing, so every failure carries its kind.
#pragma once

#include <utility>
#include <variant>

#include "schemas/pool_error.hpp"

namespace poolbus {

template <class T>
class outcome {
 public:
  outcome(T value) : state_(std::move(value)) {}
  outcome(pool_error error) : state_(std::move(error)) {}

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const pool_error& error() const { return std::get<1>(state_); }

 private:
  std::variant<T, pool_error> state_;
};

// outcome<void>: success or an error.
template <>
class outcome<void> {
 public:
  outcome() = default;
  outcome(pool_error error) : error_(std::move(error)), failed_(true) {}
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const pool_error& error() const { return error_; }

 private:
  pool_error error_;
  bool failed_ = false;
};

}  // namespace poolbus
