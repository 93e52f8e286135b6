// deterministic_system: an actor system on CAF's test_coordinator, the base of
// the actor tests' fixtures: actors run only when the test runs them, and time
// is the coordinator's virtual clock, so lease and timer tests never sleep.
#pragma once

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

namespace poolbus::test {

struct deterministic_system {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;

  deterministic_system() : sys(testing(cfg)), sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())) {}

 private:
  static caf::actor_system_config& testing(caf::actor_system_config& c) {
    c.set("scheduler.policy", caf::atom("testing"));
    return c;
  }
};

}  // namespace poolbus::test
