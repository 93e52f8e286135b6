// proxy actor: the broker's stand-in for one remote worker, as reflow's
// pool/client stands for a remote reflowlet. It speaks pool_actor, answering
// offers and status from the worker's last announcement (pushed, never polled)
// and forwarding accept/allocs/inspect/keepalive/free over the workers ROUTER.
// (In the broker the registry feeds it announcements only until the pool
// joins the mux; from then on the mux answers offers and status itself.)
//
// Invariant: every forwarded request is answered exactly once: by the
// worker's reply, by `timeout` at its deadline, or by `unavailable` when the
// pool is dropped.
#pragma once

#include <caf/fwd.hpp>

#include "actors/exec_api.hpp"
#include "actors/pool_api.hpp"
#include "actors/wall_clock.hpp"
#include "schemas/frames.hpp"
#include "schemas/worker_messages.hpp"

namespace poolbus {

using proxy_actor = pool_actor::extend<
    exec_message,  // exec ops, forwarded; exec_wait's deadline adds its own timeout_ms
    // allocs as the worker's own encoded entries, relayed without decoding
    // them (the intake checked each one); plain allocs decodes them.
    caf::replies_to<allocs_atom, encoded_atom>::with<encoded_array>,
    caf::reacts_to<announce_atom, offer_announcement>,  // the worker's newest announcement
    caf::reacts_to<wreply_atom, worker_reply>,          // a reply from the worker's DEALER
    caf::reacts_to<sweep_atom>,                         // internal: expire overdue requests
    caf::reacts_to<lost_atom>>;                         // the pool left: fail what is pending, quit

struct proxy_config {
  std::string pool;
  frame_sink_ptr sink;  // requests go out on channel::workers as [pool, body]
  int64_t request_timeout_ms = 5000;
  wall_clock clock = wall_clock::real();
};

proxy_actor spawn_proxy_actor(caf::actor_system& sys, proxy_config config);

}  // namespace poolbus
