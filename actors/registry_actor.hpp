// registry actor: the broker's membership. It learns pools from what workers
// send (announcements on the announce SUB, hellos and replies on the workers
// ROUTER), already validated and republished by the broker's worker_intake
// (policy/worker_intake.hpp) on the I/O thread; keeps one proxy actor per live
// pool, tells the mux which pools are live and publishes pools.<pool>
// joined/left. The broker holds no state a worker can't rebuild:
// a restarted broker relearns everything from the next heartbeat.
//
// Invariant: a pool is in the mux only once it has both announced and said
// hello (the broker can route to it), and leaves it when it has been silent
// for the worker timeout or announced `stopped`. Silence is measured on the
// intake's clock (the I/O thread's flushes), never the registry's own, and
// not judged at a flush that follows a busy stretch of the I/O thread.
#pragma once

#include <caf/fwd.hpp>

#include <functional>
#include <string>

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
  // Called with a pool the registry was told was seen again but no longer
  // knows: its next message must come in full (worker_intake::forget).
  std::function<void(const std::string& pool)> forget_pool;
};

// Accepts what worker_intake passes on:
//   (announce_atom, offer_announcement)   a changed offer
//   (announce_atom, pool_event)           a worker's own `stopped`
//   (hello_atom, identity, worker_hello)  a hello that is not a repeat
//   (wreply_atom, identity, worker_reply) a reply to a proxied request
//   (seen_atom, std::vector<pool_seen> announced, std::vector<pool_seen> hellos)
//                                         heartbeats repeating the last ones
//   (sweep_atom, int64_t now_ms)          the intake flushed at now_ms (its
//                                         steady clock): drop silent pools
caf::actor spawn_registry_actor(caf::actor_system& sys, registry_config config);

}  // namespace poolbus
