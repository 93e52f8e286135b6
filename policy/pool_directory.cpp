#include "policy/pool_directory.hpp"

#include <algorithm>
#include <cassert>

#include "policy/liveness.hpp"

namespace poolbus {
namespace {

// What a joined pool lists in `offers`: its one offer, local id "1" (a
// worker's pool extends at most one, protocol.md).
std::vector<OfferInfo> offers_of(const std::string& pool, const offer_announcement& a) {
  std::vector<OfferInfo> out;
  if (a.draining) return out;  // a draining pool extends nothing, whatever it announced
  out.reserve(a.offers.size());
  for (const auto& o : a.offers) out.push_back(OfferInfo{"1", pool, o.available});
  return out;
}

PoolStatus status_of(const std::string& pool, const offer_announcement& a) {
  return PoolStatus{pool, a.resources, a.available, a.allocs, a.ts_ms, a.labels, a.draining};
}

}  // namespace

pool_record& pool_directory::heard(const std::string& pool) {
  auto& r = records_[pool];
  r.heard_ms = intake_now_ms_;
  // A new pool (or one whose silence time is shorter) may fall silent first.
  next_silence_ms_ = std::min(next_silence_ms_, r.heard_ms + silent_after_ms(r));
  return r;
}

bool pool_directory::maybe_join(pool_record& r) {
  if (r.joined || !r.announced || !r.routable) return false;
  r.joined = true;
  ++joined_count_;
  changed();
  return true;
}

pool_directory::announcement_effect pool_directory::on_announcement(offer_announcement&& a) {
  auto pool = a.pool;
  auto& r = heard(pool);
  if (r.announced && !supersedes(a, r.latest)) return {};
  assert((!r.announced || a.run != r.latest.run || a.seq >= r.latest.seq) && "an announcement went backwards");
  announcement_effect effect;
  effect.superseded = true;
  effect.drain_changed = r.announced ? a.draining != r.latest.draining : a.draining;
  if (a.heartbeat_ms < r.latest.heartbeat_ms) next_silence_ms_ = 0;  // it may fall silent sooner now
  r.latest = std::move(a);
  r.announced = true;
  r.offer_entries.reset();
  r.status_head.reset();
  if (r.joined) changed();
  effect.joined = maybe_join(r);
  return effect;
}

bool pool_directory::on_hello(const std::string& pool) {
  auto& r = heard(pool);
  r.routable = true;
  return maybe_join(r);
}

bool pool_directory::on_reply(const std::string& pool) {
  auto it = records_.find(pool);
  if (it == records_.end() || !it->second.joined) return false;
  it->second.heard_ms = intake_now_ms_;
  return true;
}

std::vector<std::string> pool_directory::on_seen(const std::vector<pool_seen>& announced,
                                                 const std::vector<pool_seen>& hellos) {
  std::vector<std::string> unknown;
  auto find = [&](const pool_seen& s, bool pool_record::*known) -> pool_record* {
    auto it = records_.find(s.pool);
    if (it == records_.end() || !(it->second.*known)) {
      unknown.push_back(s.pool);
      return nullptr;
    }
    it->second.heard_ms = intake_now_ms_;
    return &it->second;
  };
  for (const auto& s : announced) {
    auto* r = find(s, &pool_record::announced);
    if (!r || s.ts_ms <= r->latest.ts_ms) continue;
    // Only the time moves: the encoded entries and the offers array stay
    // valid, and the pools array takes the new time in place.
    r->latest.ts_ms = s.ts_ms;
    if (r->joined && spliced_pools_ && !patch_last_seen(spliced_pools_->bytes, r->seen_slot, s.ts_ms))
      spliced_pools_.reset();
  }
  for (const auto& s : hellos) find(s, &pool_record::routable);
  return unknown;
}

std::optional<pool_departure> pool_directory::remove(const std::string& pool) {
  auto it = records_.find(pool);
  if (it == records_.end()) return std::nullopt;
  pool_departure out{pool, it->second.joined};
  if (out.was_joined) {
    --joined_count_;
    changed();
  }
  records_.erase(it);
  return out;
}

bool pool_directory::on_drained(const std::string& pool, bool on) {
  auto it = records_.find(pool);
  if (it == records_.end() || !it->second.joined || it->second.latest.draining == on) return false;
  auto& r = it->second;
  r.latest.draining = on;
  r.offer_entries.reset();
  r.status_head.reset();
  changed();
  return true;
}

std::optional<pool_departure> pool_directory::on_stopped(const std::string& pool) { return remove(pool); }

pool_directory::flush_result pool_directory::on_flushed(int64_t io_now_ms) {
  flush_result out;
  auto previous = intake_now_ms_;
  intake_now_ms_ = io_now_ms;
  if (previous == 0) {  // the first flush: whoever spoke before it was heard just now
    for (auto& [_, r] : records_) r.heard_ms = io_now_ms;
    return out;
  }
  if (io_now_ms - previous > liveness::intake_stall_ms(worker_timeout_ms_)) {
    out.stalled_ms = io_now_ms - previous;
    return out;
  }
  // heard_ms only grows and a pool's silence time only shrinks where
  // next_silence_ms_ is reset, so nobody can fall silent before it: most
  // flushes walk no record (a walk over 20,000 was a tenth of the mux's CPU).
  if (io_now_ms <= next_silence_ms_) return out;
  std::vector<std::string> silent;
  next_silence_ms_ = INT64_MAX;
  for (const auto& [pool, r] : records_) {
    int64_t silent_at = r.heard_ms + silent_after_ms(r);
    if (io_now_ms > silent_at)
      silent.push_back(pool);
    else
      next_silence_ms_ = std::min(next_silence_ms_, silent_at);
  }
  for (const auto& pool : silent) out.silent.push_back(*remove(pool));
  return out;
}

int64_t pool_directory::silent_after_ms(const pool_record& r) const {
  return liveness::silent_after_ms(worker_timeout_ms_, std::max(paced_ms_, r.latest.heartbeat_ms));
}

void pool_directory::on_paced(int64_t heartbeat_ms) {
  if (heartbeat_ms < paced_ms_) next_silence_ms_ = 0;  // pools may fall silent sooner now
  paced_ms_ = heartbeat_ms;
}

const pool_record* pool_directory::joined(const std::string& pool) const {
  auto it = records_.find(pool);
  return it == records_.end() || !it->second.joined ? nullptr : &it->second;
}

std::vector<OfferInfo> pool_directory::local_offers(const Constraints& constraints) const {
  std::vector<OfferInfo> out;
  out.reserve(joined_count_);
  for (const auto& [pool, r] : records_)
    if (r.joined && satisfies(r.latest.labels, constraints))
      for (auto& o : offers_of(pool, r.latest)) out.push_back(std::move(o));
  return out;
}

std::optional<OfferInfo> pool_directory::local_offer(const std::string& pool, const Constraints& constraints) const {
  auto* r = joined(pool);
  if (!r || !satisfies(r->latest.labels, constraints)) return std::nullopt;
  auto offers = offers_of(pool, r->latest);
  if (offers.empty()) return std::nullopt;
  return offers.front();
}

std::optional<PoolStatus> pool_directory::status(const std::string& pool) const {
  auto* r = joined(pool);
  if (!r) return std::nullopt;
  return status_of(pool, r->latest);
}

int64_t pool_directory::announced_allocs(const std::string& pool) const {
  if (!pool.empty()) {
    auto* r = joined(pool);
    return r ? r->latest.allocs : 0;
  }
  int64_t sum = 0;
  for (const auto& [_, r] : records_)
    if (r.joined) sum += r.latest.allocs;
  return sum;
}

const encoded_array& pool_directory::offer_entries() {
  if (spliced_offers_) return *spliced_offers_;
  encoded_array out;
  for (auto& [pool, r] : records_) {
    if (!r.joined) continue;
    if (!r.offer_entries) {
      std::string entries;
      for (const auto& o : offers_of(pool, r.latest))
        append_offer_entry(entries, {make_pool_uri(pool, o.id), pool, o.available});
      r.offer_entries = std::move(entries);
    }
    out.bytes += *r.offer_entries;
    out.count += r.latest.draining ? 0 : static_cast<int64_t>(r.latest.offers.size());
  }
  return *(spliced_offers_ = std::move(out));
}

const encoded_array& pool_directory::status_entries() {
  if (spliced_pools_) return *spliced_pools_;
  encoded_array out;
  for (auto& [pool, r] : records_) {
    if (!r.joined) continue;
    if (!r.status_head) r.status_head = pool_status_head(status_of(pool, r.latest));
    r.seen_slot = append_pool_status_entry(out.bytes, *r.status_head, r.latest.ts_ms);
    ++out.count;
  }
  return *(spliced_pools_ = std::move(out));
}

}  // namespace poolbus
