#include "policy/tracked_offer.hpp"

#include <algorithm>

namespace poolbus {
namespace {

pool_error offer_gone(const std::string& offer_id) {
  return make_pool_error(error_kind::not_exist, "offer " + offer_id + " expired or cannot cover the request");
}

}  // namespace

outcome<void> tracked_offer::begin_accept(const Resources& want) {
  if (!viable(want)) return offer_gone(offer_.id);
  available_ = available_.sub(want);
  return {};
}

void tracked_offer::finish_accept(const Resources& reserved, const Resources& granted) {
  available_ = available_.add(reserved).sub(granted);
}

void tracked_offer::fail_accept(const Resources& reserved) {
  available_ = available_.add(reserved);
  outdated_ = true;
}

bool offer_cache::needs_refresh(int64_t now_ms) const {
  if (!filled_ || now_ms >= expires_ms_) return true;
  if (offers_.empty()) return false;  // a cached empty answer, still fresh
  return std::all_of(offers_.begin(), offers_.end(), [](const tracked_offer& o) { return o.outdated(); });
}

std::vector<OfferInfo> offer_cache::offers() const {
  std::vector<OfferInfo> out;
  for (const auto& o : offers_) {
    // reflow skips empty offers so Allocate does not consider them.
    if (o.outdated() || o.available().is_zero()) continue;
    OfferInfo info = o.offer();
    info.available = o.available();
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<OfferInfo> offer_cache::refresh(std::vector<OfferInfo> fresh, int64_t now_ms) {
  offers_.clear();
  allocs_.clear();
  for (auto& o : fresh) offers_.emplace_back(std::move(o));
  filled_ = true;
  expires_ms_ = now_ms + ttl_ms_;
  ++refreshes_;
  ++generation_;
  return offers();
}

void offer_cache::invalidate() {
  offers_.clear();
  allocs_.clear();
  filled_ = false;
  ++generation_;
}

outcome<offer_cache::accept_ticket> offer_cache::begin_accept(const std::string& offer_id, const Resources& want) {
  auto* o = find(offer_id);
  if (!o) return offer_gone(offer_id);
  auto reserved = o->begin_accept(want);
  if (!reserved) return reserved.error();
  return accept_ticket{offer_id, want, generation_};
}

void offer_cache::finish_accept(const accept_ticket& ticket, const AllocInspect& alloc) {
  if (ticket.generation != generation_) return;  // refreshed while in flight: nothing to settle
  auto* o = find(ticket.offer_id);
  if (!o) return;
  o->finish_accept(ticket.reserved, alloc.resources);
  allocs_[alloc.id] = tracked_alloc{ticket.offer_id, alloc.resources};
}

void offer_cache::fail_accept(const accept_ticket& ticket) {
  if (ticket.generation != generation_) return;
  if (auto* o = find(ticket.offer_id)) o->fail_accept(ticket.reserved);
}

void offer_cache::freed(const std::string& alloc_id) {
  auto it = allocs_.find(alloc_id);
  if (it == allocs_.end()) return;
  if (auto* o = find(it->second.offer_id)) o->restore(it->second.resources);
  allocs_.erase(it);
}

const tracked_offer* offer_cache::find(const std::string& offer_id) const {
  for (const auto& o : offers_)
    if (o.offer().id == offer_id) return &o;
  return nullptr;
}

tracked_offer* offer_cache::find(const std::string& offer_id) {
  for (auto& o : offers_)
    if (o.offer().id == offer_id) return &o;
  return nullptr;
}

}  // namespace poolbus
