#include "policy/keepalive_schedule.hpp"

#include <algorithm>

namespace poolbus {

int64_t keepalive_schedule::renew_delay_ms(int64_t granted_ms) const {
  int64_t delay = granted_ms - renew_before_expiry_ms;
  // A grant no longer than the offset: renewing "30 s before expiry" would be
  // now or in the past. Renew halfway through instead, so the lease is still
  // renewed before it lapses without the loop spinning.
  if (delay <= 0) delay = granted_ms / 2;
  return std::clamp(delay, min_renew_gap_ms, max_renew_gap_ms);
}

bool keepalive_schedule::retryable(error_kind kind) {
  switch (kind) {
    case error_kind::timeout:
    case error_kind::unavailable:
    case error_kind::internal: return true;
    case error_kind::invalid:
    case error_kind::not_exist:
    case error_kind::precondition:
    case error_kind::unauthorized:
    case error_kind::fatal: return false;
  }
  return false;
}

std::optional<int64_t> keepalive_schedule::retry_delay_ms(error_kind kind, int failures, double uniform01) const {
  if (!retryable(kind) || failures < 1) return std::nullopt;
  auto wait = retry.wait_ms(failures - 1, uniform01);
  if (!wait) return std::nullopt;
  return std::max<int64_t>(*wait, 0);
}

}  // namespace poolbus
