// stream_feed: the one writer of pool-dash's cluster view. Its thread reads
// the offer stream, applies each message to the view and publishes what
// changed to the event hub: one chunk per burst of messages (one wake-up of
// the browsers' connections, however many arrived). Each second it publishes
// the heartbeats seen and the stats. It also applies the broker's own `pools`
// and `queue` that a broker_check fetched, which fills the view at start and
// heals anything the stream lost (a SUB drops when it falls behind).
//
// broker_check: pool-dash's periodic look at the broker, on a thread of its
// own, so a broker that does not answer never stalls the feed: it pings
// (reachability), fetches `pools` and `queue`, and hands them to the feed.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "apps/pool-dash/broker_reader.hpp"
#include "apps/pool-dash/dashboard_state.hpp"
#include "bus/stream_subscriber.hpp"

namespace poolbus {

// What one check read from the broker (a failed read is absent).
struct broker_snapshot {
  int64_t asked_ms = 0;
  std::optional<std::vector<PoolStatus>> pools;
  std::optional<std::vector<queue_entry>> queue;
};

class broker_check {
 public:
  static constexpr int64_t interval_ms = 3000;  // ping + pools/queue
  static constexpr int64_t timeout_ms = 2000;   // a check's calls: a silent broker is "down" within 5 s

  broker_check(dashboard_state& state, broker_reader& reader) : state_(state), reader_(reader) {}
  // Runs until stop() returns true (asked every 100 ms).
  void run(const std::function<bool()>& stop);
  // The newest snapshot not yet taken.
  std::optional<broker_snapshot> take();

 private:
  void check();

  dashboard_state& state_;
  broker_reader& reader_;
  std::mutex mutex_;
  std::optional<broker_snapshot> newest_;
};

class stream_feed {
 public:
  static constexpr int64_t tick_ms = 1000;    // seen + stats to the browsers
  static constexpr size_t burst_limit = 512;  // messages applied per chunk at most

  stream_feed(dashboard_state& state, broker_check& check, std::unique_ptr<stream_subscriber> stream);

  // Runs until stop() returns true (asked between bursts, at least every 200 ms);
  // then closes the hub, which ends every browser's stream.
  void run(const std::function<bool()>& stop);

 private:
  void apply_burst();
  void apply_snapshot(broker_snapshot snapshot);
  void tick(int64_t now_ms);

  dashboard_state& state_;
  broker_check& check_;
  std::unique_ptr<stream_subscriber> stream_;
};

// Unix epoch milliseconds (pool-dash's clock: ages shown are against it).
int64_t wall_ms();

}  // namespace poolbus
