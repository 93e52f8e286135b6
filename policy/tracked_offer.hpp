// tracked_offer / offer_cache: reflow's trackedOffer and CachingPool over
// plain data. The cache holds one pool's offers between refreshes; each
// tracked offer lowers its `available` by what was accepted from it and
// raises it again when such an alloc is freed.
// Invariant: an accept is only sent to the pool while the tracked offer can
// still cover it (accepts in flight are reserved), and an offer whose accept
// failed is outdated for good: it is never offered or accepted again.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "schemas/alloc.hpp"
#include "schemas/outcome.hpp"
#include "schemas/resources.hpp"

namespace poolbus {

// reflow trackedOffer. Accepts are split in two, because the real accept is
// asynchronous: begin_accept reserves `want` (so concurrent accepts see the
// lower amount, as reflow's write lock makes them), then finish_accept or
// fail_accept settles the reservation.
class tracked_offer {
 public:
  explicit tracked_offer(OfferInfo offer) : offer_(std::move(offer)), available_(offer_.available) {}

  // The offer as the pool extended it; `available` is the tracked amount.
  const OfferInfo& offer() const { return offer_; }
  const Resources& available() const { return available_; }
  bool outdated() const { return outdated_; }
  // reflow viable(): enough left and not outdated.
  bool viable(const Resources& want) const { return !outdated_ && available_.available(want); }

  // not_exist when the offer can no longer cover `want` (nothing reserved then).
  outcome<void> begin_accept(const Resources& want);
  // The pool granted `granted` for a reservation of `reserved`.
  void finish_accept(const Resources& reserved, const Resources& granted);
  // The pool refused: the offer has drifted from what we track, so it is
  // outdated (reflow marks it on any accept error).
  void fail_accept(const Resources& reserved);
  // An alloc taken from this offer was freed: its resources come back.
  void restore(const Resources& freed) { available_ = available_.add(freed); }

 private:
  OfferInfo offer_;
  Resources available_;
  bool outdated_ = false;
};

// reflow cachingPool: one pool's offers, refreshed from the pool only when
// every cached offer is outdated or the cache is older than its TTL (an
// empty answer is cached too, so an exhausted pool is not asked again and
// again). reflow applies its 60 s TTL to empty answers only; here it
// applies to every answer, which is what reflow's own comment intends: a
// shared pool may have grown in the meantime.
class offer_cache {
 public:
  static constexpr int64_t default_ttl_ms = 60 * 1000;  // reflow offersTtl

  explicit offer_cache(int64_t ttl_ms = default_ttl_ms) : ttl_ms_(ttl_ms) {}

  // True when offers() must be answered by asking the pool (then refresh()).
  bool needs_refresh(int64_t now_ms) const;
  // The valid, non-empty cached offers with their tracked `available`.
  // Only meaningful when !needs_refresh(now_ms).
  std::vector<OfferInfo> offers() const;
  // Replaces the cache with the pool's fresh answer; returns offers().
  // Allocs tracked against the old offers no longer restore anything.
  std::vector<OfferInfo> refresh(std::vector<OfferInfo> fresh, int64_t now_ms);
  // Drops everything: the next offers() asks the pool.
  void invalidate();

  // An accept in flight against one cached offer. Settling a ticket from
  // before the last refresh changes nothing (its offer is gone).
  struct accept_ticket {
    std::string offer_id;
    Resources reserved;
    int64_t generation = 0;
  };
  // Reserves `want` on the cached offer; not_exist for an unknown, outdated
  // or too small offer (then the pool need not be asked at all).
  outcome<accept_ticket> begin_accept(const std::string& offer_id, const Resources& want);
  // The accept succeeded: the alloc (by its id) is tracked until freed.
  void finish_accept(const accept_ticket& ticket, const AllocInspect& alloc);
  void fail_accept(const accept_ticket& ticket);
  // An alloc was freed: if it came from a still-cached offer, restore it.
  void freed(const std::string& alloc_id);

  const tracked_offer* find(const std::string& offer_id) const;
  tracked_offer* find(const std::string& offer_id);
  int64_t refreshes() const { return refreshes_; }

 private:
  struct tracked_alloc {
    std::string offer_id;
    Resources resources;
  };

  int64_t ttl_ms_;
  bool filled_ = false;
  int64_t expires_ms_ = 0;
  int64_t refreshes_ = 0;
  int64_t generation_ = 0;                       // bumped by refresh and invalidate
  std::vector<tracked_offer> offers_;            // in the pool's order
  std::map<std::string, tracked_alloc> allocs_;  // by alloc id, from the current offers only
};

}  // namespace poolbus
