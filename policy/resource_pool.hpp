// resource_pool: reflow's ResourcePool as a plain lease table: a pool's total
// resources and its allocs with their leases; every operation takes now_ms.
// Invariant: the resources of all uncollected allocs (expired or not) sum to at
// most the total, so the sum of unexpired allocs never exceeds it either, and a
// keepalive may revive any uncollected alloc without oversubscribing. Every
// operation costs O(log n) in the number of allocs (plus what it reports or
// collects): a running sum and an expiry-ordered index replace table scans.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "schemas/alloc.hpp"
#include "schemas/outcome.hpp"

namespace poolbus {

class resource_pool {
 public:
  // The local id of the pool's only offer, as reflow names it.
  static constexpr const char* offer_id = "1";

  // What create/accept decided: the new alloc, and the expired allocs it
  // collected to make room (most expired first).
  struct created {
    AllocInspect alloc;
    std::vector<AllocInspect> collected;
  };

  // reflow StopIfIdleFor's answer, plus the allocs a stop freed.
  struct idle_verdict {
    bool stopped = false;
    int64_t max_time_to_expiry_ms = 0;  // when not stopped: longest lease left (>= 0)
    std::vector<AllocInspect> freed;
  };

  // id_seed makes alloc ids reproducible in tests; 0 draws one from the OS.
  explicit resource_pool(std::string pool_id, Resources total = {}, uint64_t id_seed = 0);

  const std::string& pool_id() const { return pool_id_; }
  const Resources& total() const { return total_; }
  // The most allocs (expired or not) the table holds; 0 = no limit. Restored
  // allocs are never dropped for it: it only refuses new ones.
  void set_max_allocs(size_t max_allocs) { max_allocs_ = max_allocs; }
  size_t max_allocs() const { return max_allocs_; }
  bool stopped() const { return stopped_; }

  // reflow Init: set the total and restore allocs (a restart). Restored allocs
  // are kept latest-expiring first while they fit the total; the ones that do
  // not fit are returned so the caller can destroy their backing.
  std::vector<AllocInspect> init(Resources total, std::vector<AllocInspect> restored);

  // reflow New: precondition when want is empty or rounds to zero in every
  // resource; unavailable once stopped, or when the pool holds max_allocs
  // allocs and none of them is expired; not_exist when want does not fit even
  // after collecting every expired alloc. Otherwise collects expired allocs,
  // most expired first and only as many as needed (for resources, and to stay
  // below max_allocs), and adds an alloc with a fresh id and the initial lease.
  outcome<created> create(const AllocMeta& meta, int64_t now_ms);
  // create in two steps, so a caller can build the alloc's backing before the
  // table changes: plan decides (and reserves nothing), commit applies a plan
  // made since the last change (internal error for a stale plan).
  outcome<created> plan(const AllocMeta& meta, int64_t now_ms);
  // accept's plan: not_exist for an unknown offer id or when the pool extends no offer.
  outcome<created> plan_accept(const std::string& offer_id, const AllocMeta& meta, int64_t now_ms);
  outcome<void> commit(const created& plan);

  // reflow Free: removes the alloc at once. not_exist when unknown.
  outcome<AllocInspect> free(const std::string& id);
  // Renews the lease: granted = min(interval, max_keepalive_interval_ms);
  // revives an expired alloc that was not collected. invalid when interval <= 0,
  // not_exist when the alloc is unknown (freed or collected).
  outcome<int64_t> keepalive(const std::string& id, int64_t interval_ms, int64_t now_ms);

  // reflow Alive: the alloc is still in the table (an expired alloc that was not
  // collected is alive: keepalive can still revive it).
  bool alive(const std::string& id) const { return allocs_.count(id) != 0; }
  outcome<AllocInspect> inspect(const std::string& id) const;
  std::vector<AllocInspect> allocs() const;
  size_t size() const { return allocs_.size(); }

  // reflow Available: total minus the resources of unexpired allocs.
  Resources available(int64_t now_ms) const;
  // reflow Offers: none, or exactly one (id "1") of everything available; none
  // when stopped or when available cpu, mem or disk is 0.
  std::vector<OfferInfo> offers(int64_t now_ms) const;
  // reflow Offer: not_exist unless id is "1" and the pool extends an offer.
  outcome<OfferInfo> offer(const std::string& id, int64_t now_ms) const;
  // reflow offer.Accept: not_exist for an unknown offer, or when want no longer fits.
  outcome<created> accept(const std::string& offer_id, const AllocMeta& meta, int64_t now_ms);

  // The earliest expiry still in the future, for the owner's timer.
  std::optional<int64_t> next_expiry(int64_t now_ms) const;
  // The allocs that expired since the last call, each reported once per lease
  // (a revived alloc that expires again is reported again).
  std::vector<AllocInspect> newly_expired(int64_t now_ms);

  // reflow StopIfIdleFor, with protocol.md's rule: idle when there is no alloc
  // or every alloc has been expired for at least idle_ms, and never sooner than
  // idle_ms after started_ms or after last_free_ms (0 = never freed). A stop
  // frees every alloc and the pool extends no offer nor takes any alloc after.
  idle_verdict stop_if_idle_for(int64_t idle_ms, int64_t now_ms, int64_t started_ms, int64_t last_free_ms);

 private:
  struct lease {
    AllocInspect inspect;
    int64_t reported_expiry_ms = -1;  // the expires_ms whose expiry was reported
  };

  // A lease's place in the expiry order: (expires_ms, local id), the order in
  // which allocs are collected.
  using expiry_key = std::pair<int64_t, std::string>;

  std::string fresh_id();
  AllocInspect with_uri(AllocInspect alloc, const std::string& local_id) const;
  // Keep the sums and indexes below in step with allocs_: every insert,
  // erase or lease change of allocs_ goes through these.
  void insert_lease(const std::string& local, lease entry);
  void erase_lease(std::map<std::string, lease>::iterator it);
  void clear_leases();
  // The resources of allocs expired at now_ms (expires_ms <= now_ms).
  const Resources& expired_sum(int64_t now_ms) const;

  std::string pool_id_;
  Resources total_;
  std::map<std::string, lease> allocs_;  // by local id
  Resources used_;                       // sum over allocs_, expired or not
  std::set<expiry_key> by_expiry_;       // every alloc
  std::set<expiry_key> unreported_;      // allocs whose current lease's expiry is not yet reported
  // expired_ is the sum over allocs with expires_ms <= expired_through_ms_; it
  // moves with the now_ms it is asked for, so a query costs what expired since.
  mutable Resources expired_;
  mutable int64_t expired_through_ms_ = INT64_MIN;
  bool stopped_ = false;
  size_t max_allocs_ = 0;
  uint64_t id_seed_;
  uint64_t id_counter_ = 0;
  uint64_t version_ = 0;       // bumps on every change of the table
  uint64_t plan_version_ = 0;  // the version the last plan was made at
};

}  // namespace poolbus
