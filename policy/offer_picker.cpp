#include "policy/offer_picker.hpp"

#include <algorithm>
#include <utility>

namespace poolbus {

std::vector<OfferInfo> pick_n(const std::vector<OfferInfo>& offers, std::size_t n, const Resources& min,
                              const Resources& max) {
  struct ranked {
    bool below_max;  // false sorts first: offers that satisfy max lead
    double distance;
    std::size_t index;
  };
  std::vector<ranked> order;
  for (std::size_t i = 0; i < offers.size(); ++i) {
    const auto& available = offers[i].available;
    if (!available.available(min)) continue;
    order.push_back({!available.available(max), available.scaled_distance(max), i});
  }
  std::stable_sort(order.begin(), order.end(), [](const ranked& a, const ranked& b) {
    if (a.below_max != b.below_max) return !a.below_max;
    return a.distance < b.distance;
  });
  if (order.size() > n) order.resize(n);
  std::vector<OfferInfo> picked;
  picked.reserve(order.size());
  for (const auto& r : order) picked.push_back(offers[r.index]);
  return picked;
}

Resources allocate_max(const Resources& min, int64_t width) { return min.scale(1.0 + static_cast<double>(width)); }

Resources plan_want(const Resources& available, const Resources& max) {
  Resources want = max.min(available);
  Resources rest = available.sub(want);
  if (rest.units("cpu") <= 0 || rest.units("mem") <= 0 || rest.units("disk") <= 0) return available;
  return want;
}

bool gang_could_fit(const std::vector<OfferInfo>& offers, const Resources& min, int64_t count, bool spread) {
  int64_t placed = 0;
  for (const auto& offer : offers) {
    auto copies = copies_that_fit(offer.available, min);
    placed += spread ? std::min<int64_t>(copies, 1) : copies;
    if (placed >= count) return true;
  }
  return false;
}

allocate_plan::allocate_plan(Resources min, int64_t width, AllocMeta meta_template, uint64_t seed)
    : min_(std::move(min)),
      max_(allocate_max(min_, width)),
      meta_template_(std::move(meta_template)),
      shuffle_rng_(seed) {}

allocate_plan::step allocate_plan::start() { return next_round(); }

allocate_plan::step allocate_plan::on_offers(std::vector<OfferInfo> offers) {
  // reflow shuffles before picking so equally good offers of many pools are
  // not always tried in the same order by every client.
  std::shuffle(offers.begin(), offers.end(), shuffle_rng_);
  candidates_ = pick_n(offers, max_offers_to_consider, min_, max_);
  next_ = 0;
  return next_candidate();
}

allocate_plan::step allocate_plan::on_accept_failed(const pool_error& error) {
  if (error.kind != error_kind::not_exist)
    return give_up{{error_kind::unavailable, "allocate: accept failed: " + error.to_string()}};
  return next_candidate();
}

allocate_plan::step allocate_plan::next_candidate() {
  if (next_ >= candidates_.size()) return next_round();
  const auto& offer = candidates_[next_++];
  AllocMeta meta = meta_template_;
  meta.want = plan_want(offer.available, max_);
  return accept_offer{offer, std::move(meta)};
}

allocate_plan::step allocate_plan::next_round() {
  if (tries_ >= max_allocate_tries)
    return give_up{{error_kind::unavailable,
                    "allocate: no offer fits " + min_.to_string() + " after " + std::to_string(tries_) + " tries"}};
  ++tries_;
  candidates_.clear();
  next_ = 0;
  return gather_offers{};
}

}  // namespace poolbus
