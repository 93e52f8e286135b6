// worker actor: a worker's link to the broker. It serves the worker <-> broker
// protocol (schemas/worker_messages.hpp) against the local pool actor, turns
// the pool's change notifications into announcements on the announce PUB, and
// keeps the broker's view alive: every heartbeat it repeats the last
// announcement and says hello to each broker (so a restarted broker relearns
// the route). A broker's `pace` slows the heartbeat (the slowest any broker
// asks, never faster than its own). With max_idle set it runs reflow's
// StopIfIdleFor each heartbeat.
// With several brokers it serves them all against the one pool actor, which
// stays the one authority over the pool's resources.
//
// Invariant: every request received gets exactly one reply, carrying its rid,
// sent to the broker the request came from.
#pragma once

#include <caf/fwd.hpp>

#include <functional>
#include <string>
#include <vector>

#include "actors/pool_actor.hpp"
#include "policy/liveness.hpp"
#include "schemas/frames.hpp"
#include "schemas/worker_messages.hpp"

namespace poolbus {

struct worker_actor_config {
  std::string pool;
  std::string run;
  worker_pool_actor pool_actor;
  frame_sink_ptr sink;  // announce: [topic, body]; broker: [body], or [peer id, body] with brokers
  // Several brokers (pool-worker --connect ... --connect ...): the peer id each is
  // addressed by on the broker channel's ROUTER, in worker_request::broker order.
  // Empty: one broker, on a DEALER.
  std::vector<std::string> brokers;
  int64_t heartbeat_ms = liveness::default_heartbeat_ms;
  int64_t max_idle_ms = 0;  // 0 = never stop idle
  wall_clock clock = wall_clock::real();
  std::function<void()> on_idle_stop;  // called once, after `stopped` was announced
};

// Accepts (wrequest_atom, worker_request) from the bus.
caf::actor spawn_worker_actor(caf::actor_system& sys, worker_actor_config config);

}  // namespace poolbus
