// alloc actor: one per alloc on a worker, reflow's Alloc. Keepalive, inspect
// and free go to its pool (delegated, so the pool answers the caller directly):
// the pool owns the lease table, which keeps collection and keepalive atomic.
// Invariant: once its pool tells it the alloc is gone (freed or collected) it
// stops serving and answers not_exist to everything; execs will live here.
#pragma once

#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>

#include <string>

#include "actors/pool_api.hpp"

namespace poolbus {

// The pool's own handle on an alloc actor: alloc_actor plus the pool's
// "your alloc is gone" notice.
using local_alloc_actor = alloc_actor::extend<caf::reacts_to<kill_atom>>;

struct alloc_actor_state {
  pool_actor pool;       // reset once the alloc is gone
  std::string local_id;  // the alloc's id within its pool
  std::string uri;       // "<pool>/<local_id>", for logs and errors
  static inline const char* name = "alloc_actor";
};

// Spawn with self->spawn<caf::linked>(alloc_actor_behavior, pool, local_id, uri)
// from the pool, so the alloc actor ends with its pool.
local_alloc_actor::behavior_type alloc_actor_behavior(local_alloc_actor::stateful_pointer<alloc_actor_state> self,
                                                      pool_actor pool, std::string local_id, std::string uri);

}  // namespace poolbus
