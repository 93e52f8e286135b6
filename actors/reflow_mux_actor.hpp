// reflow mux actor: reflow's Mux over in-process pools, as the Go package has
// it: SetPools, CachingPool (policy/tracked_offer.hpp's offer_cache) and
// Allocate over any pool_actor handles, asking each pool when asked itself
// (pull). It names offers and allocs by URI "<pool>/<id>".
//
// The broker does not use it: its mux (actors/mux_actor.hpp) is fed by the
// workers' announcements (push) and answers from its pool_directory. This one
// is for a program that composes pools in one process, as reflow's tests and
// reflowlets do, and keeps the port of reflow's Mux whole and tested.
//
// Invariant: at most one allocate runs at a time (the rest wait in order),
// and a pool that misses the gather deadline is left out of an answer, never
// waited for.
#pragma once

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

#include "actors/pool_api.hpp"
#include "actors/wall_clock.hpp"
#include "policy/tracked_offer.hpp"

namespace poolbus {

// Beyond pool_actor (whose offer/accept/inspect/keepalive/free take URIs,
// `invalid` without a '/', `not_exist` for an unknown pool; pool_id answers
// "" as reflow's Mux.ID does; status sums the pools that answer in time):
using reflow_mux_actor = pool_actor::extend<
    // reflow SetPools: replaces the membership. The mux asks each handle its
    // pool_id (within request_timeout) and replies once all have answered;
    // a pool that does not answer, or repeats an id already taken, is left
    // out. Requests keep using the old membership until then.
    caf::replies_to<set_pools_atom, std::vector<pool_actor>>::with<caf::ok_atom>,
    // reflow Pools: each pool's status, gathered within gather_deadline.
    caf::replies_to<pools_atom>::with<std::vector<PoolStatus>>,
    // reflow Size.
    caf::replies_to<size_atom>::with<int>,
    // reflow SetCaching. Takes effect at once (reflow: at the next SetPools):
    // on -> every pool gets an empty offer cache; off -> caches are dropped.
    caf::replies_to<caching_atom, bool>::with<caf::ok_atom>,
    // reflow Allocate(min, width) with the template's owner and labels.
    caf::replies_to<allocate_atom, Resources, int64_t, AllocMeta>::with<AllocInspect>>;

struct reflow_mux_config {
  // Offers, allocs, pools and status gather from every pool concurrently;
  // a pool that has not answered by this deadline is dropped from the answer.
  std::chrono::milliseconds gather_deadline{1000};
  // Deadline of a request routed to one pool (offer, accept, inspect, ...).
  std::chrono::milliseconds request_timeout{5000};
  bool caching = false;
  int64_t cache_ttl_ms = offer_cache::default_ttl_ms;
  // Seeds the shuffle of offers in allocate (reflow shuffles them).
  uint64_t seed = 0x5eed;
  wall_clock clock = wall_clock::real();
};

reflow_mux_actor spawn_reflow_mux_actor(caf::actor_system& sys, reflow_mux_config config);

}  // namespace poolbus
