// The CAF settings the broker and the worker share. Header-only: only the
// programs that run actors include it.
#pragma once

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>

namespace poolbus {

inline caf::actor_system_config& single_thread_actors(caf::actor_system_config& cfg) {
  cfg.set("scheduler.policy", caf::atom("sharing"));
  // One CAF thread: every actor hop of a call then stays on that thread
  // instead of waking another (on 2 cores a thread switch costs more than the
  // handlers themselves); the ZeroMQ and I/O threads keep the other core busy.
  cfg.set("scheduler.max-threads", 1);
  return cfg;
}

}  // namespace poolbus
