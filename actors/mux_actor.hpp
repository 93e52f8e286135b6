// mux actor: reflow's Mux on the broker. It speaks pool_actor over many
// pools, naming offers and allocs by URI "<pool>/<id>", and places allocs
// itself (reflow's Allocate + pickN) so clients don't race for offers.
// Invariant: at most one allocate runs at a time (the rest wait in order),
// at most max_large_gathers large allocs gathers run at once (the rest wait
// in order), and a pool that misses the gather deadline is left out of an
// answer, never waited for.
#pragma once

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

#include "actors/exec_api.hpp"
#include "actors/pool_api.hpp"
#include "actors/wall_clock.hpp"
#include "policy/tracked_offer.hpp"
#include "schemas/announcements.hpp"
#include "schemas/encoded_entries.hpp"

namespace poolbus {

using add_pool_atom = caf::atom_constant<caf::atom("add_pool")>;
using rm_pool_atom = caf::atom_constant<caf::atom("rm_pool")>;

// Beyond pool_actor (whose offer/accept/inspect/keepalive/free take URIs,
// `invalid` without a '/', `not_exist` for an unknown pool; pool_id answers
// "" as reflow's Mux.ID does; status sums the pools that answer in time):
using mux_actor = pool_actor::extend<
    // reflow SetPools: replaces the membership. The mux asks each handle its
    // pool_id (within request_timeout) and replies once all have answered;
    // a pool that does not answer, or repeats an id already taken, is left
    // out. Requests keep using the old membership until then.
    caf::replies_to<set_pools_atom, std::vector<pool_actor>>::with<caf::ok_atom>,
    // Exec ops (schemas/exec.hpp), routed by the alloc URI in exec_call.alloc to
    // its pool, which must speak exec_message (else internal); exec_wait's
    // deadline adds its own timeout_ms.
    exec_message,
    // Incremental membership, O(log pools) each, for a caller that already
    // knows the pool's id (the broker's registry): add_pool adds (or replaces)
    // pool `id` with no question to the handle; rm_pool removes it. A pool
    // added with its latest announcement is a pushed pool: offers, pools and
    // status answer from the newest announcement pushed for it (announce
    // below, same run/seq order rule as the broker's proxy) without asking its
    // handle. A set_pools still in progress replaces the membership when it
    // completes, as a later set_pools would.
    caf::reacts_to<add_pool_atom, std::string, pool_actor, offer_announcement>,
    caf::reacts_to<rm_pool_atom, std::string>,
    // A pushed pool's newest announcement; ignored for a pool not pushed.
    caf::reacts_to<announce_atom, offer_announcement>,
    // Pushed pools heard from again with only their time changed: each one's
    // newest announcement takes ts_ms (when it is newer); unknown pools are ignored.
    caf::reacts_to<seen_atom, std::vector<pool_seen>>,
    // reflow Pools: each pool's status, gathered within gather_deadline.
    caf::replies_to<pools_atom>::with<std::vector<PoolStatus>>,
    // offers and pools as the entries of the client API's reply arrays
    // (schemas/encoded_entries.hpp), in the same order with the same values
    // as the two ops above. Pushed pools keep their entries encoded, so when
    // every pool is pushed (and caching is off, for offers) the answer is
    // spliced from them; otherwise the gathered values are encoded.
    caf::replies_to<offers_atom, encoded_atom>::with<encoded_array>,
    caf::replies_to<pools_atom, encoded_atom>::with<encoded_array>,
    // allocs (of one pool, or of every pool for ""), as the entries of the
    // client API's reply array; plain allocs answers the same, decoded. A
    // large gather (see mux_config) waits for a slot.
    caf::replies_to<allocs_atom, encoded_atom, std::string>::with<encoded_array>,
    // reflow Size.
    caf::replies_to<size_atom>::with<int>,
    // reflow SetCaching. Takes effect at once (reflow: at the next SetPools):
    // on -> every pool gets an empty offer cache; off -> caches are dropped.
    caf::replies_to<caching_atom, bool>::with<caf::ok_atom>,
    // reflow Allocate(min, width) with the template's owner and labels.
    caf::replies_to<allocate_atom, Resources, int64_t, AllocMeta>::with<AllocInspect>>;

// What a pushed pool answers when the mux relays allocs (mux_config::relay_allocs):
// the broker's proxy hands on the worker's encoded entries.
using encoded_allocs_actor = caf::typed_actor<caf::replies_to<allocs_atom, encoded_atom>::with<encoded_array>>;

struct mux_config {
  // Offers, allocs, pools and status gather from every pool concurrently;
  // a pool that has not answered by this deadline is dropped from the answer.
  std::chrono::milliseconds gather_deadline{1000};
  // Deadline of a request routed to one pool (offer, accept, inspect, ...).
  std::chrono::milliseconds request_timeout{5000};
  // When every pool answers each routed request by itself within its own
  // deadline (the broker's proxies sweep theirs), the mux arms no timer of its
  // own per request: request_timeout is then left to the pools.
  bool pools_keep_deadlines = false;
  bool caching = false;
  int64_t cache_ttl_ms = offer_cache::default_ttl_ms;
  // allocs: a gather over pools whose announcements count at least
  // large_gather_allocs allocs in all is large. At most max_large_gathers
  // run at once (each until its answer, at the latest at gather_deadline);
  // the others wait in arrival order, and one that waited request_timeout is
  // answered `timeout`. So however many allocs requests are in flight, the
  // replies being built take memory for max_large_gathers of them.
  int64_t large_gather_allocs = 1000;
  int max_large_gathers = 2;
  // Pushed pools are asked allocs as encoded entries (encoded_allocs_actor),
  // never decoded on the way: true in the broker, whose pushed pools are proxies.
  bool relay_allocs = false;
  // Seeds the shuffle of offers in allocate (reflow shuffles them).
  uint64_t seed = 0x5eed;
  wall_clock clock = wall_clock::real();
  // What a URI naming a pool that is not in the mux gets. reflow's Mux says
  // not_exist; the broker says unavailable, since a pool it does not know may
  // just not have re-announced yet (after a broker restart), and a keepalive
  // loop must retry rather than give the alloc up.
  error_kind unknown_pool = error_kind::not_exist;
};

mux_actor spawn_mux_actor(caf::actor_system& sys, mux_config config);

}  // namespace poolbus
