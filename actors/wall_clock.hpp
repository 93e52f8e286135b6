// wall_clock: epoch milliseconds read through an actor's own clock
// (`self->clock().now()`), so CAF's test_coordinator drives every lease,
// keepalive and idle decision with virtual time. The offset maps the actor
// clock's epoch to Unix time; it is fixed when the system starts.
#pragma once

#include <caf/actor_clock.hpp>

#include <chrono>
#include <cstdint>

namespace poolbus {

class wall_clock {
 public:
  // Real time: actor clock (steady) shifted to the Unix epoch.
  static wall_clock real();
  // Simulated time: the actor clock's time zero is `epoch_ms_at_zero`.
  static wall_clock simulated(int64_t epoch_ms_at_zero = 1'700'000'000'000);

  int64_t now_ms(const caf::actor_clock& clock) const {
    auto since = std::chrono::duration_cast<std::chrono::milliseconds>(clock.now().time_since_epoch());
    return offset_ms_ + since.count();
  }
  int64_t offset_ms() const { return offset_ms_; }

 private:
  explicit wall_clock(int64_t offset_ms) : offset_ms_(offset_ms) {}
  int64_t offset_ms_;
};

}  // namespace poolbus
