// The value types of allocs and offers: reflow's Labels, AllocMeta,
// AllocInspect and OfferJSON, plus a pool's status. Plain data: no CAF, no
// sockets. Times are Unix epoch milliseconds, as on the wire.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "schemas/resources.hpp"

namespace poolbus {

// reflow: Labels, metadata labels for a run.
using Labels = std::map<std::string, std::string>;

// reflow: AllocMeta, what an accept asks for.
struct AllocMeta {
  Resources want;
  std::string owner;  // empty = none
  Labels labels;

  friend bool operator==(const AllocMeta& a, const AllocMeta& b) {
    return a.want == b.want && a.owner == b.owner && a.labels == b.labels;
  }
  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, AllocMeta& x) {
    return f(x.want, x.owner, x.labels);
  }
};

// reflow: AllocInspect, an alloc's metadata. `id` is the full URI
// "<pool>/<alloc>"; `taskdb_alloc_id` is a stable digest of that URI.
struct AllocInspect {
  std::string id;
  std::string pool;
  std::string taskdb_alloc_id;  // "sha256:<hex>" of id
  Resources resources;
  AllocMeta meta;
  int64_t created_ms = 0;
  int64_t last_keepalive_ms = 0;  // 0 = never
  int64_t expires_ms = 0;

  friend bool operator==(const AllocInspect& a, const AllocInspect& b) {
    return a.id == b.id && a.pool == b.pool && a.taskdb_alloc_id == b.taskdb_alloc_id && a.resources == b.resources &&
           a.meta == b.meta && a.created_ms == b.created_ms && a.last_keepalive_ms == b.last_keepalive_ms &&
           a.expires_ms == b.expires_ms;
  }
  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, AllocInspect& x) {
    return f(x.id, x.pool, x.taskdb_alloc_id, x.resources, x.meta, x.created_ms, x.last_keepalive_ms, x.expires_ms);
  }
};

// reflow: OfferJSON, an offer as it is listed. `id` is "<pool>/<offer>" when
// it comes through a mux, the bare local id ("1") from a pool itself.
struct OfferInfo {
  std::string id;
  std::string pool;
  Resources available;

  friend bool operator==(const OfferInfo& a, const OfferInfo& b) {
    return a.id == b.id && a.pool == b.pool && a.available == b.available;
  }
  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, OfferInfo& x) {
    return f(x.id, x.pool, x.available);
  }
};

// A pool's totals as `pools` lists them.
struct PoolStatus {
  std::string id;
  Resources resources;
  Resources available;
  int64_t allocs = 0;
  int64_t last_seen_ms = 0;
  Labels labels;          // the pool's own labels (pool-worker --label), for placement
  bool draining = false;  // extends nothing new (drain)

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, PoolStatus& x) {
    return f(x.id, x.resources, x.available, x.allocs, x.last_seen_ms, x.labels, x.draining);
  }
};

// URI "<pool>/<local>", split at the first '/'. `invalid` without a '/', or
// with an empty pool or local part.
struct PoolUri {
  std::string pool;
  std::string local;
};
outcome<PoolUri> parse_pool_uri(const std::string& uri);
// The local part of "<pool>/<local>" (split at the first '/'), or `id` itself
// when it has no pool part: for ids the program made, not for client input.
std::string local_id_of(const std::string& id);
// A pool id is non-empty and has no '/' (protocol.md "URIs").
bool valid_pool_id(const std::string& id);
std::string make_pool_uri(const std::string& pool, const std::string& local);

// The alloc's stable id for a task database: "sha256:<hex>" of its full URI.
std::string taskdb_alloc_id(const std::string& alloc_uri);

// reflow: AllocExpired / AllocExpiredBy, from an inspect and the current time.
inline bool alloc_expired(const AllocInspect& a, int64_t now_ms) { return now_ms >= a.expires_ms; }
inline int64_t alloc_expired_by_ms(const AllocInspect& a, int64_t now_ms) { return now_ms - a.expires_ms; }

// Lease constants of reflow's pool package, in milliseconds.
constexpr int64_t initial_lease_ms = 2 * 60 * 1000;           // a new alloc's first lease
constexpr int64_t max_keepalive_interval_ms = 5 * 60 * 1000;  // MaxKeepaliveInterval

}  // namespace poolbus
