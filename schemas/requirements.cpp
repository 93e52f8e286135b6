#include "schemas/requirements.hpp"

namespace poolbus {

Resources Requirements::max() const { return min.scale(static_cast<double>(1 + width)); }

void Requirements::add_serial(const Resources& step) { min = min.max(step); }

void Requirements::add_parallel(const Resources& step) {
  bool first_step = min.is_zero();
  min = min.max(step);
  if (!first_step) ++width;
}

void Requirements::add(const Requirements& other) {
  min = min.max(other.min);
  width += other.width;
}

std::string Requirements::to_string() const {
  auto out = min.to_string();
  if (width > 1) out += "#" + std::to_string(width);
  return out;
}

}  // namespace poolbus
