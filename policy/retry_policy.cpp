#include "policy/retry_policy.hpp"

#include <algorithm>
#include <cmath>

namespace poolbus {

std::optional<int64_t> retry_policy::nominal_wait_ms(int retry) const {
  if (retry < 0 || retry >= max_retries) return std::nullopt;
  double wait = static_cast<double>(initial_ms) * std::pow(factor, retry);
  return static_cast<int64_t>(std::min(wait, static_cast<double>(max_ms)));
}

std::optional<int64_t> retry_policy::wait_ms(int retry, double uniform01) const {
  auto nominal = nominal_wait_ms(retry);
  if (!nominal) return std::nullopt;
  double scale = 1.0 - jitter + 2.0 * jitter * std::clamp(uniform01, 0.0, 1.0);
  return static_cast<int64_t>(std::llround(static_cast<double>(*nominal) * scale));
}

retry_policy keepalive_retry_policy() { return retry_policy{}; }

}  // namespace poolbus
