#include "policy/heartbeat_pace.hpp"

#include <cassert>

namespace poolbus {

heartbeat_pace::heartbeat_pace(int64_t max_per_second, int64_t base_ms)
    : max_per_second_(max_per_second), base_ms_(base_ms) {
  assert(max_per_second_ > 0 && base_ms_ > 0);
}

double heartbeat_pace::rate_at(std::size_t pools, int64_t interval_ms) const {
  return static_cast<double>(pools) * 1000.0 / static_cast<double>(interval_ms);
}

bool heartbeat_pace::on_pool_count(std::size_t pools) {
  const int64_t before = interval_ms_;
  int64_t current = interval_ms_ == 0 ? base_ms_ : interval_ms_;
  while (rate_at(pools, current) > static_cast<double>(max_per_second_)) current *= 2;
  // Shrink one step at a time while the pools fit in half with a quarter to spare.
  while (current > base_ms_ && rate_at(pools, current / 2) <= 0.75 * static_cast<double>(max_per_second_))
    current /= 2;
  interval_ms_ = current == base_ms_ ? 0 : current;
  return interval_ms_ != before;
}

}  // namespace poolbus
