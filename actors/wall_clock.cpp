#include "actors/wall_clock.hpp"

namespace poolbus {

wall_clock wall_clock::real() {
  using namespace std::chrono;
  auto system_ms = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  auto steady_ms = duration_cast<milliseconds>(caf::actor_clock::clock_type::now().time_since_epoch()).count();
  return wall_clock{system_ms - steady_ms};
}

wall_clock wall_clock::simulated(int64_t epoch_ms_at_zero) { return wall_clock{epoch_ms_at_zero}; }

}  // namespace poolbus
