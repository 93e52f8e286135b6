// worker_intake: what the broker does with worker traffic on its I/O thread,
// before any actor sees it. It validates every announcement, republishes the
// valid ones on the offer stream at once, and passes on to the mux only
// what it must act on: changed offers, `stopped`, new hellos and replies (an
// allocs list in a reply is checked entry by entry and passed on as the
// worker's bytes, never decoded: decode_worker_message_relaying).
// Heartbeats that repeat the last accepted message but for their time are
// collected and handed over in one batch per flush.
// Invariant: each valid announcement is republished exactly once, in arrival
// order; nothing malformed reaches the stream or an actor; a sender silent for
// half the time the mux drops it after (the worker timeout, or three paced
// heartbeats when longer) or
// named by forget() is heard afresh next time, never as a repeat.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "policy/repeat_filter.hpp"
#include "schemas/announcements.hpp"
#include "schemas/frames.hpp"
#include "schemas/worker_messages.hpp"

namespace poolbus {

struct worker_intake_outputs {
  std::function<void(offer_announcement&&)> offers_changed;           // valid, and not a repeat
  std::function<void(pool_event&&)> pool_stopped;                     // a worker's own `stopped`
  std::function<void(std::string&& identity, worker_hello&&)> hello;  // valid, and not a repeat
  std::function<void(std::string&& identity, worker_reply&&)> reply;
  // One batch per flush: pools whose announcement, and pools whose hello,
  // repeated (each pool once, with its newest time).
  std::function<void(std::vector<pool_seen>&& announced, std::vector<pool_seen>&& hellos)> seen;
  // At the end of every flush: everything received before now_ms (the I/O
  // thread's clock) has been handed on. The mux judges liveness by
  // these times, never by its own clock, so a busy actor thread cannot make
  // a pool look silent. May be empty.
  std::function<void(int64_t now_ms)> flushed;
};

class worker_intake {
 public:
  // `stream` takes the republished announcements.
  worker_intake(frame_sink& stream, worker_intake_outputs outputs, int64_t worker_timeout_ms);

  // An announce SUB message [topic, body].
  void on_announcement(std::string&& topic, std::string&& body, int64_t now_ms);
  // A workers ROUTER message [identity, body].
  void on_worker_message(std::string&& identity, std::string&& body, int64_t now_ms);

  // Hands the batched repeats on, if any, and forgets silent senders.
  void flush(int64_t now_ms);

  // How often flush should run: well within the worker timeout, and rarely
  // enough that 10,000 heartbeating pools cost a handful of actor messages.
  int64_t flush_period_ms() const;

  // Thread-safe: the next message from `pool` (announcement or hello) is
  // heard afresh. For the mux, when it hears of a pool it no longer knows.
  void forget(const std::string& pool);

  // Thread-safe: the broker now paces every pool to this heartbeat (0: none),
  // so a sender is silent only after three of them (liveness::silent_after_ms).
  void on_paced(int64_t heartbeat_ms) { paced_ms_ = heartbeat_ms; }

 private:
  void publish(std::string&& topic, std::string&& body);
  void take_forgotten();

  frame_sink& stream_;
  worker_intake_outputs outputs_;
  int64_t worker_timeout_ms_;
  std::atomic<int64_t> paced_ms_{0};
  repeat_filter announcements_;                    // by topic offers.<pool>
  repeat_filter hellos_;                           // by routing id (= pool id)
  std::map<std::string, int64_t> announced_seen_;  // this batch: pool -> newest ts
  std::map<std::string, int64_t> hello_seen_;
  int64_t last_forget_sweep_ms_ = 0;

  std::mutex forget_mutex_;
  std::vector<std::string> to_forget_;
};

}  // namespace poolbus
