// offer_picker: reflow's pickN and Allocate as plain policy. pick_n orders
// offers by best match; allocate_plan walks one Allocate call (gather offers,
// accept the best candidates, retry) without doing any I/O itself.
// Invariant: an offer below `min` is never proposed, and an allocate_plan
// gives up with `unavailable` after max_allocate_tries rounds of offers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "schemas/alloc.hpp"
#include "schemas/pool_error.hpp"
#include "schemas/resources.hpp"

namespace poolbus {

// reflow: maxOffersToConsider, the candidates one round of Allocate tries.
constexpr std::size_t max_offers_to_consider = 10;
// reflow: Allocate's maxRetries, the rounds of offers before `unavailable`.
constexpr int max_allocate_tries = 6;

// reflow pickN: at most n offers that satisfy `min`; first those that satisfy
// `max`, in increasing ScaledDistance from max, then the smaller ones, again in
// increasing distance. Equal offers keep their input order.
std::vector<OfferInfo> pick_n(const std::vector<OfferInfo>& offers, std::size_t n, const Resources& min,
                              const Resources& max);

// reflow Requirements.Max as protocol.md defines it: min * (1 + width).
Resources allocate_max(const Resources& min, int64_t width);

// reflow allocate's want: min(max, available); the whole offer when that
// would leave cpu, mem or disk at <= 0 (the remainder would be unusable).
Resources plan_want(const Resources& available, const Resources& max);

// Whether `count` allocs of `min` could be placed on these offers now (each on
// a different offer when `spread`): the queue's cheap test before it tries.
bool gang_could_fit(const std::vector<OfferInfo>& offers, const Resources& min, int64_t count, bool spread);

// One reflow Allocate call as a state machine. The caller gathers offers,
// sends the accepts it is told to, and feeds back what happened:
//
//   plan.start()                      -> gather_offers
//   plan.on_offers(offers)            -> accept_offer | gather_offers | give_up
//   plan.on_accept_failed(error)      -> accept_offer | gather_offers | give_up
//
// Offers are shuffled (by the plan's own seeded generator) before pick_n so
// equal offers are spread over pools, as reflow does; tests pass a seed.
class allocate_plan {
 public:
  struct gather_offers {};
  struct accept_offer {
    OfferInfo offer;  // as gathered (id and pool untouched)
    AllocMeta meta;   // the template's owner and labels, want from plan_want
  };
  struct give_up {
    pool_error error;
  };
  using step = std::variant<gather_offers, accept_offer, give_up>;

  // `meta_template`: owner and labels for every accept (its `want` is ignored).
  allocate_plan(Resources min, int64_t width, AllocMeta meta_template, uint64_t seed);

  step start();
  step on_offers(std::vector<OfferInfo> offers);
  // A not_exist means the offer was taken or shrank: the next candidate is
  // tried. Any other error ends the call (reflow wraps it as unavailable).
  step on_accept_failed(const pool_error& error);

  int tries() const { return tries_; }
  const Resources& min() const { return min_; }
  const Resources& max() const { return max_; }

 private:
  step next_candidate();
  step next_round();

  Resources min_;
  Resources max_;
  AllocMeta meta_template_;
  std::mt19937_64 shuffle_rng_;
  std::vector<OfferInfo> candidates_;
  std::size_t next_ = 0;
  int tries_ = 0;  // rounds of offers started
};

}  // namespace poolbus
