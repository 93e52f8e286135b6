// cluster_view: pool-dash's picture of the cluster, built from the offer
// stream and from the API's snapshots (at start, and as a periodic check):
// every live pool's newest offer, the waiting queue, a tail of recent events
// and the counters the metrics report. Plain data: no sockets, no threads;
// its owner (pool-dash's feed) serialises access.
//
// Invariants: a pool's entry only moves forward (the one supersede rule of
// schemas/announcements); a pool that left or stopped is in no view and no
// metric until it joins again; the queue is in the order the broker tries it
// (priority, then arrival).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "schemas/announcements.hpp"
#include "schemas/placement.hpp"

namespace poolbus {

// One pool as the dashboard shows it: its newest announcement, when it was last heard.
struct pool_view {
  offer_announcement latest;
  int64_t last_seen_ms = 0;
};

// A non-offer stream message, kept for the event tail.
struct tail_event {
  std::string topic;  // "allocs.w1"
  std::string kind;   // "pools" | "allocs" | "execs" | "demand"
  std::string event;  // "created", "joined", ...
  std::string pool;   // "" for demand
  int64_t ts_ms = 0;
  std::string body;  // the message body, MessagePack as received
};

// What one stream message changed, for the live page.
struct view_change {
  std::optional<std::string> pool_changed;  // its offer, labels or drain changed, or it joined
  std::optional<std::string> pool_gone;     // left or stopped
  std::optional<tail_event> tail;
  bool queue_changed = false;
};

// Counts of stream messages by kind and event, for /metrics.
struct stream_counters {
  std::map<std::string, uint64_t> messages;      // by kind: offers, pools, allocs, execs, demand
  std::map<std::string, uint64_t> alloc_events;  // created, freed, expired, collected
  std::map<std::string, uint64_t> pool_events;   // joined, left, stopped, draining, undrained
  std::map<std::string, uint64_t> exec_events;   // started, completed, lost
  uint64_t malformed = 0;                        // not decodable: counted, else ignored
};

class cluster_view {
 public:
  static constexpr size_t default_tail_capacity = 1000;
  static constexpr int64_t rate_window_ms = 10000;

  explicit cluster_view(size_t tail_capacity = default_tail_capacity);

  // One stream message [topic, body], heard at now_ms.
  view_change on_message(std::string_view topic, std::string_view body, int64_t now_ms);

  // The API's `pools`, asked at asked_ms: adds pools the stream has not shown
  // yet and drops the ones neither the broker nor the stream knows since.
  // Returns the ids whose entry changed or went (a gone one is not in pools()).
  std::vector<std::string> on_pools_snapshot(const std::vector<PoolStatus>& pools, int64_t asked_ms);
  // The API's `queue`: replaces the queue. Whether it differed.
  bool on_queue_snapshot(std::vector<queue_entry> queue);

  const std::map<std::string, pool_view>& pools() const { return pools_; }
  const std::vector<queue_entry>& queue() const { return queue_; }
  const stream_counters& counters() const { return counters_; }
  // Up to `limit` of the newest tail events whose topic starts with prefix, oldest first.
  std::vector<const tail_event*> tail(std::string_view prefix, size_t limit) const;
  // The pools not heard from (by any offers message or drain) since the last
  // call: with every pool heartbeating, usually none, so the page's "seen"
  // tick stays small however many pools there are.
  std::vector<std::string> take_quiet();
  // Stream messages per second over the last rate_window_ms.
  double events_per_second(int64_t now_ms) const;
  int64_t last_message_ms() const { return last_message_ms_; }

 private:
  view_change on_offers(std::string_view body, int64_t now_ms);
  view_change on_pool_event(std::string_view body, int64_t now_ms);
  view_change on_alloc_event(std::string_view body);
  view_change on_exec_event(std::string_view body);
  view_change on_demand_event(std::string_view body);
  // An alloc's or an exec's event: counted, and kept for the tail.
  view_change on_life_event(std::map<std::string, uint64_t>& counts, tail_event event);
  void remember(view_change& change, tail_event event);
  void count_rate(int64_t now_ms);

  std::map<std::string, pool_view> pools_;
  std::vector<queue_entry> queue_;
  std::deque<tail_event> tail_;
  size_t tail_capacity_;
  std::set<std::string> heard_;  // since the last take_quiet
  stream_counters counters_;
  std::deque<std::pair<int64_t, uint64_t>> rate_buckets_;  // (second, messages in it)
  int64_t last_message_ms_ = 0;
};

}  // namespace poolbus
