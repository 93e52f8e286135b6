#include "policy/resource_pool.hpp"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <random>

namespace poolbus {
namespace {

// splitmix64: spreads a counter over 64 bits, so consecutive ids look unrelated
// while the counter alone guarantees they differ within one pool.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t os_seed() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

bool is_expired(const AllocInspect& a, int64_t now_ms) { return alloc_expired(a, now_ms); }

}  // namespace

resource_pool::resource_pool(std::string pool_id, Resources total, uint64_t id_seed)
    : pool_id_(std::move(pool_id)), total_(std::move(total)), id_seed_(id_seed != 0 ? id_seed : os_seed()) {}

std::string resource_pool::fresh_id() {
  char buf[17];
  do {
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(mix(id_seed_ + id_counter_++)));
  } while (allocs_.count(buf) != 0);
  return buf;
}

void resource_pool::insert_lease(const std::string& local, lease entry) {
  const auto& inspect = entry.inspect;
  used_ = used_.add(inspect.resources);
  by_expiry_.emplace(inspect.expires_ms, local);
  if (inspect.expires_ms <= expired_through_ms_) expired_ = expired_.add(inspect.resources);
  if (entry.reported_expiry_ms != inspect.expires_ms) unreported_.emplace(inspect.expires_ms, local);
  allocs_[local] = std::move(entry);
  // The invariant of the whole package: live and expired allocs together
  // never hold more than the pool has (expired ones are collected first).
  assert(total_.available(used_) && "a pool's allocs exceed its total");
}

void resource_pool::erase_lease(std::map<std::string, lease>::iterator it) {
  const auto& inspect = it->second.inspect;
  used_ = used_.sub(inspect.resources);
  by_expiry_.erase({inspect.expires_ms, it->first});
  if (inspect.expires_ms <= expired_through_ms_) expired_ = expired_.sub(inspect.resources);
  unreported_.erase({inspect.expires_ms, it->first});
  allocs_.erase(it);
}

void resource_pool::clear_leases() {
  allocs_.clear();
  used_ = Resources{};
  by_expiry_.clear();
  unreported_.clear();
  expired_ = Resources{};
  expired_through_ms_ = INT64_MIN;
}

const Resources& resource_pool::expired_sum(int64_t now_ms) const {
  auto resources_of = [this](const expiry_key& key) -> const Resources& {
    return allocs_.at(key.second).inspect.resources;
  };
  if (now_ms == expired_through_ms_) return expired_;
  if (now_ms > expired_through_ms_) {
    // Add what expired in (expired_through_ms_, now_ms].
    auto from = expired_through_ms_ == INT64_MIN ? by_expiry_.begin()
                                                 : by_expiry_.lower_bound({expired_through_ms_ + 1, std::string()});
    for (auto it = from; it != by_expiry_.end() && it->first <= now_ms; ++it)
      expired_ = expired_.add(resources_of(*it));
  } else {
    // Asked about an earlier time (tests do): take back what expired in (now_ms, expired_through_ms_].
    for (auto it = by_expiry_.lower_bound({now_ms + 1, std::string()});
         it != by_expiry_.end() && it->first <= expired_through_ms_; ++it)
      expired_ = expired_.sub(resources_of(*it));
  }
  expired_through_ms_ = now_ms;
  return expired_;
}

AllocInspect resource_pool::with_uri(AllocInspect alloc, const std::string& local_id) const {
  alloc.id = make_pool_uri(pool_id_, local_id);
  alloc.pool = pool_id_;
  alloc.taskdb_alloc_id = taskdb_alloc_id(alloc.id);
  return alloc;
}

std::vector<AllocInspect> resource_pool::init(Resources total, std::vector<AllocInspect> restored) {
  total_ = std::move(total);
  clear_leases();
  ++version_;
  // Latest-expiring first: those are the allocs whose owners most recently
  // showed interest, so they are the ones worth keeping if the total shrank.
  std::sort(restored.begin(), restored.end(), [](const AllocInspect& a, const AllocInspect& b) {
    return a.expires_ms != b.expires_ms ? a.expires_ms > b.expires_ms : a.id < b.id;
  });
  std::vector<AllocInspect> dropped;
  Resources used;
  for (auto& alloc : restored) {
    auto local = local_id_of(alloc.id);
    auto after = used.add(alloc.resources);
    if (local.empty() || allocs_.count(local) != 0 || !total_.available(after)) {
      dropped.push_back(std::move(alloc));
      continue;
    }
    used = after;
    insert_lease(local, lease{with_uri(std::move(alloc), local)});
  }
  return dropped;
}

namespace {

pool_error nothing_wanted(const Resources& want) {
  return make_pool_error(
      error_kind::precondition,
      "illegal request for an empty resources: want " + want.to_string() +
          " is empty or rounds to zero in every resource (resources count in thousandths of a unit)");
}

}  // namespace

outcome<resource_pool::created> resource_pool::plan(const AllocMeta& meta, int64_t now_ms) {
  if (meta.want.is_zero()) return nothing_wanted(meta.want);
  if (stopped_) return make_pool_error(error_kind::unavailable, "pool " + pool_id_ + " is stopped");

  // Every uncollected alloc counts as used, expired or not; expired ones are
  // the candidates to collect, most expired first (then by id: the expiry
  // index's order, since every URI here shares the pool's prefix), while the
  // want does not fit or the table is full.
  Resources used = used_;
  created out;
  auto free = total_.sub(used);
  auto full = [&] { return max_allocs_ > 0 && allocs_.size() - out.collected.size() >= max_allocs_; };
  for (auto it = by_expiry_.begin(); (!free.available(meta.want) || full()) && it != by_expiry_.end(); ++it) {
    const auto& candidate = allocs_.at(it->second).inspect;
    if (!is_expired(candidate, now_ms)) break;
    used = used.sub(candidate.resources);
    out.collected.push_back(candidate);
    free = total_.sub(used);
  }
  if (!free.available(meta.want))
    return make_pool_error(error_kind::not_exist,
                           "offer expired: want " + meta.want.to_string() + " does not fit in " + free.to_string());
  if (full())
    return make_pool_error(error_kind::unavailable, "pool " + pool_id_ + " holds " + std::to_string(allocs_.size()) +
                                                        " allocs, its maximum (pool-worker --max-allocs " +
                                                        std::to_string(max_allocs_) +
                                                        "): free one or try another pool");

  auto& alloc = out.alloc;
  alloc = with_uri(AllocInspect{}, fresh_id());
  alloc.resources = meta.want;
  alloc.meta = meta;
  alloc.created_ms = now_ms;
  alloc.last_keepalive_ms = 0;
  alloc.expires_ms = now_ms + initial_lease_ms;
  plan_version_ = version_;
  return out;
}

outcome<void> resource_pool::commit(const created& plan) {
  if (plan_version_ != version_) return make_pool_error(error_kind::internal, "stale plan for alloc " + plan.alloc.id);
  for (const auto& gone : plan.collected)
    if (auto it = allocs_.find(gone.id.substr(pool_id_.size() + 1)); it != allocs_.end()) erase_lease(it);
  insert_lease(plan.alloc.id.substr(pool_id_.size() + 1), lease{plan.alloc});
  ++version_;
  return {};
}

outcome<resource_pool::created> resource_pool::create(const AllocMeta& meta, int64_t now_ms) {
  auto planned = plan(meta, now_ms);
  if (!planned) return planned;
  auto committed = commit(*planned);
  if (!committed) return committed.error();
  return planned;
}

outcome<AllocInspect> resource_pool::free(const std::string& id) {
  auto it = allocs_.find(id);
  if (it == allocs_.end()) return make_pool_error(error_kind::not_exist, "alloc " + id + " does not exist");
  auto gone = it->second.inspect;
  erase_lease(it);
  ++version_;
  return gone;
}

outcome<int64_t> resource_pool::keepalive(const std::string& id, int64_t interval_ms, int64_t now_ms) {
  if (interval_ms <= 0)
    return make_pool_error(error_kind::invalid, "keepalive interval " + std::to_string(interval_ms) + " ms is not > 0");
  auto it = allocs_.find(id);
  if (it == allocs_.end()) return make_pool_error(error_kind::not_exist, "alloc " + id + " does not exist");
  auto granted = std::min(interval_ms, max_keepalive_interval_ms);
  auto renewed = it->second;
  renewed.inspect.last_keepalive_ms = now_ms;
  renewed.inspect.expires_ms = now_ms + granted;
  auto local = it->first;
  erase_lease(it);
  insert_lease(local, std::move(renewed));
  ++version_;
  return granted;
}

outcome<AllocInspect> resource_pool::inspect(const std::string& id) const {
  auto it = allocs_.find(id);
  if (it == allocs_.end()) return make_pool_error(error_kind::not_exist, "alloc " + id + " does not exist");
  return it->second.inspect;
}

std::vector<AllocInspect> resource_pool::allocs() const {
  std::vector<AllocInspect> out;
  out.reserve(allocs_.size());
  for (const auto& [_, l] : allocs_) out.push_back(l.inspect);
  return out;
}

Resources resource_pool::available(int64_t now_ms) const {
  // reserved = the unexpired allocs = all of them less the expired ones.
  return total_.sub(used_.sub(expired_sum(now_ms)));
}

std::vector<OfferInfo> resource_pool::offers(int64_t now_ms) const {
  if (stopped_) return {};
  auto avail = available(now_ms);
  if (avail.units("cpu") <= 0 || avail.units("mem") <= 0 || avail.units("disk") <= 0) return {};
  return {OfferInfo{offer_id, pool_id_, std::move(avail)}};
}

outcome<OfferInfo> resource_pool::offer(const std::string& id, int64_t now_ms) const {
  auto current = offers(now_ms);
  if (current.empty() || id != offer_id)
    return make_pool_error(error_kind::not_exist, "offer " + id + ": offer expired");
  return current.front();
}

outcome<resource_pool::created> resource_pool::plan_accept(const std::string& id, const AllocMeta& meta,
                                                           int64_t now_ms) {
  if (meta.want.is_zero()) return nothing_wanted(meta.want);
  auto current = offer(id, now_ms);
  if (!current) return current.error();
  return plan(meta, now_ms);
}

outcome<resource_pool::created> resource_pool::accept(const std::string& id, const AllocMeta& meta, int64_t now_ms) {
  auto planned = plan_accept(id, meta, now_ms);
  if (!planned) return planned;
  auto committed = commit(*planned);
  if (!committed) return committed.error();
  return planned;
}

std::optional<int64_t> resource_pool::next_expiry(int64_t now_ms) const {
  if (now_ms == INT64_MAX) return std::nullopt;
  auto it = by_expiry_.lower_bound({now_ms + 1, std::string()});
  if (it == by_expiry_.end()) return std::nullopt;
  return it->first;
}

std::vector<AllocInspect> resource_pool::newly_expired(int64_t now_ms) {
  std::vector<std::string> due;
  while (!unreported_.empty() && unreported_.begin()->first <= now_ms) {
    due.push_back(unreported_.begin()->second);
    unreported_.erase(unreported_.begin());
  }
  std::sort(due.begin(), due.end());  // reported in id order, as a table scan would
  std::vector<AllocInspect> out;
  out.reserve(due.size());
  for (const auto& local : due) {
    auto& l = allocs_.at(local);
    l.reported_expiry_ms = l.inspect.expires_ms;
    out.push_back(l.inspect);
  }
  return out;
}

resource_pool::idle_verdict resource_pool::stop_if_idle_for(int64_t idle_ms, int64_t now_ms, int64_t started_ms,
                                                            int64_t last_free_ms) {
  idle_verdict verdict;
  bool idle = now_ms - started_ms >= idle_ms && (last_free_ms == 0 || now_ms - last_free_ms >= idle_ms);
  if (!by_expiry_.empty()) {
    // The latest-expiring alloc decides: it is the least expired one.
    auto expired_by = now_ms - by_expiry_.rbegin()->first;
    if (expired_by < idle_ms) idle = false;
    // An unexpired alloc has a negative expired_by: -expired_by is its time left.
    verdict.max_time_to_expiry_ms = std::max<int64_t>(0, -expired_by);
  }
  if (!idle) return verdict;
  verdict.max_time_to_expiry_ms = 0;
  verdict.freed = allocs();
  clear_leases();
  stopped_ = true;
  ++version_;
  verdict.stopped = true;
  return verdict;
}

}  // namespace poolbus
