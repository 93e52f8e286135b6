// proxy actor: the broker's stand-in for one remote worker's pool, as
// reflow's pool/client stands for a remote reflowlet. The mux spawns one per
// joined pool and routes to it the requests that need the worker (accept,
// allocs, inspect, keepalive, free, exec ops); it forwards each over the
// workers ROUTER and matches the worker's reply by rid. It keeps no copy of
// the pool's state: what the pool announced lives in the mux's pool_directory.
//
// Invariant: every forwarded request is answered exactly once: by the
// worker's reply, by `timeout` at its deadline (a deadline_table), or by
// `unavailable` when the pool leaves.
#pragma once

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"
#include "actors/exec_api.hpp"
#include "actors/wall_clock.hpp"
#include "policy/liveness.hpp"
#include "schemas/encoded_entries.hpp"
#include "schemas/frames.hpp"
#include "schemas/worker_messages.hpp"

namespace poolbus {

// Local ids ("1" for the offer, the alloc's own id), as the worker names them.
using proxy_actor =
    caf::typed_actor<caf::replies_to<accept_atom, std::string, AllocMeta>::with<AllocInspect>,
                     // The worker's own encoded entries, relayed without decoding them (the
                     // intake checked each one).
                     caf::replies_to<allocs_atom, encoded_atom>::with<encoded_array>,
                     caf::replies_to<inspect_atom, std::string>::with<AllocInspect>,
                     caf::replies_to<keepalive_atom, std::string, int64_t>::with<int64_t>,  // interval asked -> granted
                     caf::replies_to<free_atom, std::string>::with<caf::ok_atom>,
                     caf::replies_to<drain_atom, bool>::with<caf::ok_atom>,  // drain (false: undo)
                     exec_message,                               // exec_wait's deadline adds its own timeout_ms
                     caf::reacts_to<wreply_atom, worker_reply>,  // a reply from the worker's DEALER
                     caf::reacts_to<sweep_atom>,                 // internal: expire overdue requests
                     caf::reacts_to<lost_atom>>;                 // the pool left: fail what is pending, quit

struct proxy_config {
  std::string pool;
  frame_sink_ptr sink;  // requests go out on channel::workers as [pool, body]
  int64_t request_timeout_ms = liveness::default_request_timeout_ms;
  wall_clock clock = wall_clock::real();
};

proxy_actor spawn_proxy_actor(caf::actor_system& sys, proxy_config config);

}  // namespace poolbus
