// mux actor: the broker's core. It aggregates what the workers announce and
// routes the clients' accept/free/... to them, as the design has it: the
// broker's intake (broker/worker_intake.hpp, on the I/O thread) hands it
// every changed announcement, hello, reply and heartbeat batch; its
// pool_directory (policy/) is the one record of each pool's membership,
// newest announcement and liveness; offers and pools are answered from it,
// never by asking a worker. Requests that need a worker go to that pool's
// proxy actor (spawned when the pool joins, stopped when it leaves), which
// keeps their deadlines. allocate places reflow-style (allocate_queue, over
// the directory's offers), as gangs when asked; one that cannot be placed
// and may wait goes to the demand_queue, tried again on each capacity change
// (an announcement that changed a pool's offer, a pool joining, a free), never
// by polling. Quotas (quota_ledger) are checked before every accept it sends.
//
// Invariants: a pool is routed to only while joined; at most one allocate
// runs at a time (the rest wait in order); at most one queued request is
// being placed at a time; at most max_large_gathers large
// allocs gathers run at once (the rest wait in order); a pool that misses
// the gather deadline is left out of an answer, never waited for; each join
// and each silent leave is published once on pools.<pool>.
#pragma once

#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "actors/atoms.hpp"
#include "actors/exec_api.hpp"
#include "actors/wall_clock.hpp"
#include "policy/liveness.hpp"
#include "policy/quota_ledger.hpp"
#include "schemas/announcements.hpp"
#include "schemas/encoded_entries.hpp"
#include "schemas/frames.hpp"
#include "schemas/placement.hpp"
#include "schemas/worker_messages.hpp"

namespace poolbus {

using mux_actor = caf::typed_actor<
    // ---- the client API (protocol.md), ids as URIs "<pool>/<local>": a bad
    // URI is `invalid`, a pool not joined `unavailable` (it may just not
    // have re-announced yet after a broker restart; a keepalive loop retries).
    // offers and pools as the entries of the reply arrays, spliced.
    caf::replies_to<offers_atom, encoded_atom>::with<encoded_array>,
    caf::replies_to<pools_atom, encoded_atom>::with<encoded_array>,
    caf::replies_to<offer_atom, std::string>::with<OfferInfo>,
    caf::replies_to<accept_atom, std::string, AllocMeta>::with<AllocInspect>,
    // reflow Allocate(min, width) and the second wave's placement (constraints,
    // a wait in the queue, gangs) with the template's owner and labels: every alloc.
    caf::replies_to<allocate_atom, placement, AllocMeta>::with<std::vector<AllocInspect>>,
    caf::replies_to<queue_atom>::with<std::vector<queue_entry>>,
    caf::replies_to<quotas_atom>::with<std::vector<quota_usage>>,
    caf::replies_to<drain_atom, std::string, bool>::with<PoolStatus>,  // pool, drain (false: undo)
    // allocs of one pool ("" = every pool), the workers' own entries relayed;
    // a large gather waits for a slot.
    caf::replies_to<allocs_atom, encoded_atom, std::string>::with<encoded_array>,
    caf::replies_to<inspect_atom, std::string>::with<AllocInspect>,
    caf::replies_to<keepalive_atom, std::string, int64_t>::with<int64_t>,  // interval asked -> granted
    caf::replies_to<free_atom, std::string>::with<caf::ok_atom>,
    exec_message,  // routed by the alloc URI in exec_call.alloc
    // ---- from the intake, validated
    caf::reacts_to<announce_atom, offer_announcement>,       // a changed offer
    caf::reacts_to<announce_atom, pool_event>,               // a worker's own `stopped`
    caf::reacts_to<hello_atom, std::string, worker_hello>,   // a hello that is not a repeat
    caf::reacts_to<wreply_atom, std::string, worker_reply>,  // a reply to a proxied request
    // heartbeats repeating the last announcement / hello, one batch per flush
    caf::reacts_to<seen_atom, std::vector<pool_seen>, std::vector<pool_seen>>,
    // the intake flushed at now_ms (its clock): pools silent since leave
    caf::reacts_to<sweep_atom, int64_t>,
    // ---- its own timer: queued requests whose wait is over
    caf::reacts_to<expire_atom>>;

struct mux_config {
  frame_sink_ptr sink;  // stream: [topic, body] (pools.<pool> events); proxies: workers
  int64_t worker_timeout_ms = liveness::default_worker_timeout_ms;
  int64_t request_timeout_ms = liveness::default_request_timeout_ms;
  // allocs gathers from every pool concurrently; a pool that has not
  // answered by this deadline is left out of the answer.
  std::chrono::milliseconds gather_deadline{1000};
  // allocs: a gather over pools whose announcements count at least
  // large_gather_allocs allocs in all is large. At most max_large_gathers
  // run at once; the others wait in arrival order, and one that waited the
  // request timeout is answered `timeout`. So however many allocs requests
  // are in flight, the replies being built take memory for a few of them.
  int64_t large_gather_allocs = 1000;
  int max_large_gathers = 2;
  uint64_t seed = 0x5eed;  // seeds allocate's shuffle of offers (reflow shuffles them)
  wall_clock clock = wall_clock::real();
  quota_book quotas;  // pool-broker --quota (empty: no quotas)
  // Called with a pool that repeated a heartbeat the mux does not hold: its
  // next message must come in full (worker_intake::forget).
  std::function<void(const std::string& pool)> forget_pool;
  // Heartbeats per second from all pools together before the mux paces them
  // (heartbeat_pace); `paced` hears each new pace (0: none), for the code on
  // the I/O thread that judges silence too (the intake, the gate).
  int64_t max_heartbeats_per_second = liveness::default_max_heartbeats_per_second;
  std::function<void(int64_t heartbeat_ms)> paced;
};

mux_actor spawn_mux_actor(caf::actor_system& sys, mux_config config);

}  // namespace poolbus
