// The pool announcements: what a worker publishes about its pool and the broker
// republishes on the offer stream, verbatim (protocol.md, "Offer stream").
// A worker's pool actor produces them; they are the pool's change notifications.
//
// Invariant: within one worker run (`run`), `seq` grows by exactly one with each
// change of the pool's offer; heartbeats repeat the last seq.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schemas/alloc.hpp"

namespace poolbus {

// Topic `offers.<pool>`: the pool's offer after a change, or as a heartbeat.
struct offer_announcement {
  std::string pool;
  std::string run;  // worker run id: seq restarts when it changes
  int64_t seq = 0;
  Resources resources;            // the pool's total
  Resources available;            // total minus unexpired allocs
  std::vector<OfferInfo> offers;  // none, or one with id "<pool>/1"
  int64_t allocs = 0;             // live allocs (collected or freed ones excluded)
  Labels labels;                  // the pool's labels (pool-worker --label)
  bool draining = false;          // drained: no offer, nothing new accepted
  int64_t ts_ms = 0;
  int64_t heartbeat_ms = 0;  // how often the worker repeats it (0 = unknown)

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, offer_announcement& x) {
    return f(x.pool, x.run, x.seq, x.resources, x.available, x.offers, x.allocs, x.labels, x.draining, x.ts_ms,
             x.heartbeat_ms);
  }
};

// The one supersede rule: whether `newer` replaces `held` as a pool's newest
// announcement. A new run restarts seq; within a run, an older seq never
// replaces a newer one (announcements may overtake each other on the way).
bool supersedes(const offer_announcement& newer, const offer_announcement& held);

// A pool heard from again with nothing changed but the time: a worker's
// heartbeat repeat, which the broker passes on in batches, not one by one.
struct pool_seen {
  std::string pool;
  int64_t ts_ms = 0;

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, pool_seen& x) {
    return f(x.pool, x.ts_ms);
  }
};

// Topic `allocs.<pool>`: an alloc's life event.
enum class alloc_event_kind : uint8_t { created, freed, expired, collected };
std::string_view to_string(alloc_event_kind kind);
std::optional<alloc_event_kind> alloc_event_kind_from_string(std::string_view name);

struct alloc_event {
  std::string pool;
  alloc_event_kind event = alloc_event_kind::created;
  AllocInspect alloc;
  int64_t ts_ms = 0;

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, alloc_event& x) {
    return f(x.pool, x.event, x.alloc, x.ts_ms);
  }
};

// Topic `pools.<pool>`: membership. Workers announce `stopped`; the broker
// publishes `joined` and `left`, and `draining` / `undrained` when a pool's
// drain changes.
enum class pool_event_kind : uint8_t { joined, left, stopped, draining, undrained };
std::string_view to_string(pool_event_kind kind);
std::optional<pool_event_kind> pool_event_kind_from_string(std::string_view name);

struct pool_event {
  std::string pool;
  pool_event_kind event = pool_event_kind::joined;
  int64_t ts_ms = 0;

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, pool_event& x) {
    return f(x.pool, x.event, x.ts_ms);
  }
};

// Topic names: "offers.<pool>", "allocs.<pool>", "pools.<pool>", "demand".
std::string offers_topic(std::string_view pool);
std::string allocs_topic(std::string_view pool);
std::string pools_topic(std::string_view pool);
inline constexpr std::string_view demand_topic = "demand";

}  // namespace poolbus
