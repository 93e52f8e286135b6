// registry actor: the broker's membership. It learns pools from what workers
// send (announcements on the announce SUB, hellos and replies on the workers
// ROUTER), keeps one proxy actor per live pool, tells the mux which pools are
// live, republishes announcements on the offer stream and publishes
// pools.<pool> joined/left. The broker holds no state a worker can't rebuild:
// a restarted broker relearns everything from the next heartbeat.
//
// Invariant: a pool is in the mux only once it has both announced and said
// hello (the broker can route to it), and leaves it when it has been silent
// for the worker timeout or announced `stopped`.
#pragma once

#include <caf/fwd.hpp>

#include "actors/mux_actor.hpp"
#include "actors/wall_clock.hpp"
#include "schemas/frames.hpp"

namespace poolbus {

struct registry_config {
  mux_actor mux;
  frame_sink_ptr sink;               // stream: [topic, body]; proxies: workers
  int64_t worker_timeout_ms = 3000;
  int64_t request_timeout_ms = 5000;
  wall_clock clock = wall_clock::real();
};

// Accepts (announce_atom, topic, body) from the announce SUB and
// (wframes_atom, identity, body) from the workers ROUTER.
caf::actor spawn_registry_actor(caf::actor_system& sys, registry_config config);

}  // namespace poolbus
