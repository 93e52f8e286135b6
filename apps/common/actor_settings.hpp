// The CAF settings the broker and the worker share. Header-only: only the
// programs that run actors include it.
#pragma once

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "actors/io_scheduler.hpp"
#include "bus/io_thread.hpp"

namespace poolbus {

// The actors run on the process's I/O thread (actors/io_scheduler): a call
// then wakes no thread between its socket and its actors (on 2 cores a thread
// switch costs more than the handlers themselves). The ZeroMQ thread keeps
// the other core busy. host_actors() hands them to the I/O thread.
inline caf::actor_system_config& io_thread_actors(caf::actor_system_config& cfg) {
  cfg.load<io_scheduler>();
  return cfg;
}

// Makes `io` run the actors of `sys` once it starts. Call before io.start();
// stop `io` before `sys` ends (its actors then finish on a thread of their own).
inline void host_actors(caf::actor_system& sys, io_thread& io) {
  auto* scheduler = io_scheduler::of(sys);
  if (!scheduler) return;
  io.host({[scheduler](std::function<void()> wake) { scheduler->attach(std::move(wake)); },
           [scheduler] { return scheduler->run_ready(); }, [scheduler] { scheduler->detach(); }});
}

}  // namespace poolbus
