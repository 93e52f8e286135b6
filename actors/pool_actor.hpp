// pool actor: reflow's ResourcePool on a worker. It owns the pool's lease
// table (policy/resource_pool.hpp), an alloc actor per alloc that needs one
// (spawned on the alloc's first exec op, or at restore when execs run here),
// and an AllocManager that creates and kills what backs each alloc.
//
// Invariant: the sum of the resources of the pool's unexpired allocs never
// exceeds its total (resource_pool asserts this in debug builds), nor,
// counting retiring allocs (freed or collected, their execs' processes still
// dying, which the actor waits for without blocking), do the resources that
// running processes may use: retiring allocs are not offered and creates wait
// until none is left. Every change of the offer reaches each subscriber as an
// offer_announcement with the next seq, and every alloc life event as an
// alloc_event. With a journal, every change of the alloc table is committed
// to it before the reply that acknowledges the change goes out.
#pragma once

#include <caf/fwd.hpp>
#include <caf/typed_actor.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "actors/alloc_manager.hpp"
#include "actors/exec_api.hpp"
#include "actors/pool_api.hpp"
#include "actors/wall_clock.hpp"
#include "schemas/announcements.hpp"
#include "store/alloc_journal.hpp"

namespace poolbus {

// Subscribers receive:
//   (changed_atom, offer_announcement)   on every change of the offer (and on subscribe)
//   (alloc_event_atom, alloc_event)      created | freed | expired | collected
//   (exec_event_atom, exec_event)        an exec started | completed | lost
using worker_pool_actor = pool_actor::extend<
    // reflow StopIfIdleFor(d): (stopped, longest time to expiry in ms when not stopped).
    caf::replies_to<idle_stop_atom, int64_t>::with<bool, int64_t>, caf::reacts_to<subscribe_atom, caf::actor>,
    // Drain (true) or undo it: no offer, accepts `unavailable`, allocs served as before.
    caf::replies_to<drain_atom, bool>::with<caf::ok_atom>,
    // Execs inside allocs: routed to the alloc's actor by exec_call.alloc (a local id or URI).
    exec_message,
    // From exec actors: passed on to the subscribers.
    caf::reacts_to<exec_event_atom, exec_event>>;

struct pool_actor_config {
  std::string id;       // pool id: no '/'
  std::string run;      // this worker run's id (announcements carry it)
  Resources resources;  // the total
  Labels labels;        // pool-worker --label: announced, for placement
  wall_clock clock = wall_clock::real();
  std::shared_ptr<alloc_manager> manager;  // required
  // Where allocs survive a restart (e.g. a state_store); null = nowhere. On
  // start the pool restores what the journal holds (leases unchanged). Changes
  // of one burst of requests share one commit (group commit); their replies
  // wait for it.
  std::shared_ptr<alloc_journal> journal;
  // Called once when the journal fails (load or commit): the pool has then
  // answered the requests of that burst `internal` and stops, since its table
  // holds changes that are not on disk.
  std::function<void(const pool_error&)> on_journal_failure;
  // Execs: who runs their processes and where allocs' directories are (no
  // processes: exec ops answer internal). Freeing or collecting an alloc kills
  // its execs' process groups (SIGTERM, kill_grace_ms, SIGKILL) before the reply
  // (to the free, idle stop, or the accept that collected it).
  exec_runtime execs;
  // The most allocs the pool holds at once (0 = no limit): an accept beyond
  // it, when no alloc is expired and collectable, answers `unavailable`.
  int64_t max_allocs = 0;
};

worker_pool_actor spawn_pool_actor(caf::actor_system& sys, pool_actor_config config);

}  // namespace poolbus
