// heartbeat_pace: how often the broker asks its pools to heartbeat, so that
// all of them together send at most `max_per_second` heartbeats (Nomad's
// max_heartbeats_per_second, with the TTL derived from it). The broker sends
// the interval to each pool in a `pace` request; a worker heartbeats at the
// slower of its own --heartbeat and what its brokers ask.
//
// Invariant: interval_ms() is 0 (no ask: every worker keeps its own
// heartbeat) while pools <= max_per_second x base; otherwise it is the base
// doubled until pools / interval <= max_per_second. It shrinks only once the
// pools would fit in half of it with a quarter to spare, so a pool count
// hovering at a boundary never makes the broker re-pace every pool back and forth.
#pragma once

#include <cstddef>
#include <cstdint>

#include "policy/liveness.hpp"

namespace poolbus {

class heartbeat_pace {
 public:
  // max_per_second > 0; base_ms > 0: the heartbeat a worker has by default.
  explicit heartbeat_pace(int64_t max_per_second = liveness::default_max_heartbeats_per_second,
                          int64_t base_ms = liveness::default_heartbeat_ms);

  // The number of joined pools changed: true when interval_ms() changed with
  // it (then every pool must be told).
  bool on_pool_count(std::size_t pools);

  // What the broker asks: 0 (no ask), or the slowest heartbeat it wants.
  int64_t interval_ms() const { return interval_ms_; }

 private:
  // The heartbeats per second that `pools` pools send at interval_ms.
  double rate_at(std::size_t pools, int64_t interval_ms) const;

  int64_t max_per_second_;
  int64_t base_ms_;
  int64_t interval_ms_ = 0;
};

}  // namespace poolbus
