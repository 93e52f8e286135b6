// dashboard_state: what pool-dash's threads share. The stream feed is the one
// writer of `view` (under `mutex`); the HTTP handlers only read it, under the
// same mutex, and render JSON or metrics from it. The latency histogram and
// the reachability flag are safe on their own.
#pragma once

#include <atomic>
#include <mutex>

#include "dash/cluster_view.hpp"
#include "dash/dash_json.hpp"
#include "dash/event_hub.hpp"
#include "dash/metrics_text.hpp"

namespace poolbus {

struct dashboard_state {
  std::mutex mutex;
  cluster_view view;                   // guarded by mutex; written by the stream feed only
  event_hub hub;                       // the live page's fan-out
  latency_histogram latency;           // pool-dash's own API calls, by op
  std::atomic<bool> broker_up{false};  // the last ping was answered
  std::atomic<uint64_t> api_errors{0};
};

// The figures of /api/stats and the stream's `stats` tick (hold state.mutex).
inline dash_stats stats_of(const dashboard_state& state, int64_t now_ms) {
  return {now_ms,
          state.view.events_per_second(now_ms),
          state.view.pools().size(),
          state.view.queue().size(),
          state.broker_up,
          state.hub.readers()};
}

}  // namespace poolbus
