// liveness: every timing constant of the broker and the worker, named once,
// with the reason for its value. The defaults of --heartbeat,
// --worker-timeout and --request-timeout come from here, and the periods
// derived from them are computed here only.
// Invariant: every deadline inside a call (worker, proxy, mux) ends before
// the outer deadline around it (outer_deadline_ms), so a caller always hears
// the inner, more precise timeout first.
#pragma once

#include <algorithm>
#include <cstdint>

namespace poolbus::liveness {

// A worker repeats its announcement and hello this often: a broker that
// restarts knows every live pool again within a second.
constexpr int64_t default_heartbeat_ms = 1000;

// A broker drops a pool silent this long: three heartbeats, so one lost
// message or a short pause of the worker never drops a live pool.
constexpr int64_t default_worker_timeout_ms = 3000;

// The heartbeats per second a broker takes from all its pools together
// before it asks them to slow down (heartbeat_pace): 10,000 pools at the
// default second cost it about a fifth of a core (docs/performance.md).
constexpr int64_t default_max_heartbeats_per_second = 10000;

// A pool is silent once it missed this many heartbeats, so one lost message
// or a short pause never drops a live pool (default_worker_timeout_ms is
// three default heartbeats).
constexpr int64_t heartbeats_before_silent = 3;

// When the broker drops a pool: after the worker timeout, or after three of
// the pool's heartbeats when it heartbeats more slowly than that (its own
// --heartbeat, or the pace the broker asked, whichever is slower).
inline int64_t silent_after_ms(int64_t worker_timeout_ms, int64_t heartbeat_ms) {
  return std::max(worker_timeout_ms, heartbeats_before_silent * heartbeat_ms);
}

// A worker's time to answer one request the broker forwards to it, before
// the client gets `timeout` (a durable accept takes a few ms; this allows
// for a loaded disk).
constexpr int64_t default_request_timeout_ms = 5000;

// The api actor's deadline on a call to the mux. It only guards against a
// reply lost inside the broker, so it lies past every deadline inside: up to
// three worker deadlines (an allocate retries its accepts) plus a second of
// slack. extra_ms is time the call takes by design (exec_wait's wait).
inline int64_t outer_deadline_ms(int64_t request_timeout_ms, int64_t extra_ms = 0) {
  return request_timeout_ms * 3 + 1000 + std::max<int64_t>(0, extra_ms);
}

// How often the api actor sweeps its deadlines: they are outer guards, so a
// quarter second of lateness is harmless, and one timer serves every call.
constexpr int64_t api_sweep_ms = 250;

// How often a proxy sweeps its requests' deadlines: a tenth of the request
// timeout (a timeout is never more than 10 % late), at most every 100 ms.
inline int64_t proxy_sweep_ms(int64_t request_timeout_ms) {
  return std::clamp<int64_t>(request_timeout_ms / 10, 1, 100);
}

// How often the broker's intake hands its batched heartbeats to the mux:
// well within the worker timeout, and rarely enough that 10,000
// heartbeating pools cost a handful of actor messages per second.
inline int64_t intake_flush_ms(int64_t worker_timeout_ms) {
  return std::clamp<int64_t>(worker_timeout_ms / 10, 5, 100);
}

// A flush that comes this long after the previous one means the I/O thread
// was busy meanwhile (a burst of large replies): heartbeats may wait unread
// on its sockets, so liveness is judged at the next flush, not this one.
inline int64_t intake_stall_ms(int64_t worker_timeout_ms) { return std::max<int64_t>(1, worker_timeout_ms / 4); }

// The intake forgets what a sender said last once it is silent this long:
// half the worker timeout, since the mux drops a pool silent for a whole one
// and then needs its next message in full, not as a repeat.
inline int64_t intake_forget_ms(int64_t worker_timeout_ms) { return std::max<int64_t>(1, worker_timeout_ms / 2); }

// A worker's own calls to its local pool actor: the actor answers every one,
// so this only catches a bug; exec_wait adds its own wait on top.
constexpr int64_t worker_local_deadline_ms = 30000;

// A worker whose pool actor has had calls in flight and answered none for
// this long logs that the pool is stalled (once).
constexpr int64_t worker_stalled_after_ms = 30000;

// An accept the broker answered `timeout` may still be carried out by a slow
// worker: for this long the proxy remembers it, and frees the alloc if its
// late reply comes (an alloc nobody holds; its first lease is 2 minutes).
constexpr int64_t late_accept_window_ms = 2 * 60 * 1000;

}  // namespace poolbus::liveness
