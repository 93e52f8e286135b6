// broker_reader: pool-dash's reads of the broker's client API, over one
// connection of its own (reconnected after a failure), one call at a time;
// every call is timed into the shared latency histogram by op.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "apps/pool-dash/dashboard_state.hpp"
#include "bus/pool_client.hpp"

namespace poolbus {

class broker_reader {
 public:
  broker_reader(std::string endpoint, int64_t timeout_ms, std::optional<curve_client_keys> curve,
                dashboard_state& state);

  // Runs call(pool_client&) -> outcome<T>, timed as `op`.
  template <class Call>
  auto run(const std::string& op, Call call) -> decltype(call(std::declval<pool_client&>())) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!client_) {
      auto connected = pool_client::connect(endpoint_, timeout_ms_, curve_);
      if (!connected) return connected.error();
      client_ = std::move(*connected);
    }
    const auto start = std::chrono::steady_clock::now();
    auto result = call(*client_);
    state_.latency.observe(op, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (!result) {
      ++state_.api_errors;
      if (result.error().kind == error_kind::timeout) client_.reset();  // a late reply must not pair up
    }
    return result;
  }

 private:
  std::string endpoint_;
  int64_t timeout_ms_;
  std::optional<curve_client_keys> curve_;
  dashboard_state& state_;
  std::mutex mutex_;
  std::unique_ptr<pool_client> client_;
};

}  // namespace poolbus
