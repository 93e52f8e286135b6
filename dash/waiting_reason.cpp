#include "dash/waiting_reason.hpp"

#include <algorithm>
#include <vector>

#include "schemas/units.hpp"

namespace poolbus {
namespace {

std::string describe(const Constraints& constraints) {
  std::string out;
  for (const auto& [key, values] : constraints) {
    if (!out.empty()) out += " ";
    out += key + "=";
    for (size_t i = 0; i < values.size(); ++i) out += (i ? "|" : "") + values[i];
  }
  return out;
}

// How much of `min` fits in `room`, as a fraction (1.5: one and a half copies).
double share(const Resources& room, const Resources& min) {
  double fit = -1;
  for (const auto& [key, need] : min.amounts()) {
    if (need <= 0) continue;
    const double here = static_cast<double>(room.units(key)) / static_cast<double>(need);
    fit = fit < 0 ? here : std::min(fit, here);
  }
  return fit < 0 ? 0 : fit;
}

}  // namespace

std::string waiting_reason(const queue_entry& request, const std::map<std::string, pool_view>& pools) {
  std::vector<const offer_announcement*> matching;
  for (const auto& [id, view] : pools)
    if (satisfies(view.latest.labels, request.constraints)) matching.push_back(&view.latest);
  if (matching.empty())
    return request.constraints.empty() ? "no pool is connected" : "no pool has " + describe(request.constraints);

  int64_t whole_fit = 0, free_now = 0, undrained = 0;
  const offer_announcement* largest = matching.front();
  for (const offer_announcement* pool : matching) {
    if (pool->draining) continue;
    ++undrained;
    whole_fit += copies_that_fit(pool->resources, request.min);
    free_now += copies_that_fit(pool->available, request.min);
    if (largest->draining || share(pool->resources, request.min) > share(largest->resources, request.min))
      largest = pool;
  }
  if (undrained == 0) return "every matching pool is draining";
  if (whole_fit == 0)
    return "needs " + format_resources(request.min) + ": no matching pool is that large (largest: " + largest->pool +
           " " + format_resources(largest->resources) + ")";
  if (whole_fit < request.count)
    return "a gang of " + std::to_string(request.count) + " needs more than the matching pools hold when empty (" +
           std::to_string(whole_fit) + ")";
  if (free_now >= request.count) return "fits now: held back by its owner's quota, or placed on the broker's next pass";
  return "waits for capacity: " + std::to_string(free_now) + " of " + std::to_string(request.count) +
         " free now on the matching pools";
}

}  // namespace poolbus
