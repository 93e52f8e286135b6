// keepalive_actor: reflow's pool.Keepalive loop for one held alloc. It keeps
// the alloc's lease alive (keepalive at once, then per keepalive_schedule)
// until told to stop or the alloc is lost. Invariant: at most one keepalive
// call or one timer is outstanding, and the owner hears exactly once why the
// loop ended: (lost_atom, pool_error) or (stop_atom).
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/behavior.hpp>
#include <caf/stateful_actor.hpp>

#include <cstdint>
#include <functional>
#include <random>
#include <string>

#include "actors/pool_api.hpp"
#include "actors/wall_clock.hpp"
#include "policy/keepalive_schedule.hpp"

namespace poolbus {

struct keepalive_config {
  keepalive_schedule schedule;             // intervals, KeepaliveTimeout (10 s), retry policy
  uint64_t seed = std::random_device{}();  // jitter of retry waits
  // Optional jitter source in [0, 1); replaces the seeded generator (tests pin it).
  std::function<double()> uniform01;
  std::string alloc_name = "alloc";  // for log lines only
};

struct keepalive_state {
  keepalive_config config;
  alloc_actor target;
  caf::actor owner;
  std::mt19937_64 rng;
  wall_clock clock = wall_clock::real();
  uint64_t timer_generation = 0;  // a timer fires only if it is still the latest
  int consecutive_failures = 0;
  int64_t lease_expires_ms = 0;  // 0 = no grant yet

  double next_uniform01();
  static inline const char* name = "keepalive";
};

// Keepalive loop body. Messages: (stop_atom) from anyone ends the loop and
// acks (stop_atom) to the owner; (tick_atom, generation) is its own timer.
caf::behavior keepalive_actor(caf::stateful_actor<keepalive_state>* self, alloc_actor target, caf::actor owner,
                              keepalive_config config);

caf::actor spawn_keepalive_actor(caf::actor_system& sys, alloc_actor target, caf::actor owner,
                                 keepalive_config config = {});

// From inside another actor (e.g. a client that links its keepalives).
template <class Spawner>
caf::actor spawn_keepalive_actor(Spawner* spawner, alloc_actor target, caf::actor owner, keepalive_config config = {}) {
  return spawner->spawn(keepalive_actor, std::move(target), std::move(owner), std::move(config));
}

}  // namespace poolbus
