// demand_queue: the broker's waiting allocate requests (protocol.md,
// "Waiting, priority and gangs"), in the order they are tried: higher
// priority first, then arrival. Plain data and order, no I/O: the mux asks
// it for the first request that fits what changed, and drives the placing.
//
// Invariants: every pushed request leaves exactly once (taken to be placed,
// or expired), so it is answered exactly once; a request taken and put back
// keeps its place (FIFO within a priority holds across failed tries); a
// request that does not fit never holds back one behind it that does.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "schemas/alloc.hpp"
#include "schemas/outcome.hpp"
#include "schemas/placement.hpp"

namespace poolbus {

class demand_queue {
 public:
  using answer = std::function<void(outcome<std::vector<AllocInspect>>)>;
  struct request {
    queue_entry entry;  // as `queue` lists it
    placement want;
    AllocMeta meta;  // owner and labels of every alloc
    answer done;
    uint64_t seq = 0;  // its place in arrival order (set by push)
    // The mux's capacity version when a try of it last failed: it is worth
    // trying again only once something changed since (0: never tried).
    uint64_t failed_at_version = 0;
  };

  // Queues a request that could not be placed at once; it waits until
  // now_ms + want.wait_ms. Returns its entry (id assigned here).
  const queue_entry& push(placement want, AllocMeta meta, answer done, int64_t now_ms);

  // In order, the first request `fits` accepts, taken out of the queue.
  std::optional<request> take_first(const std::function<bool(const request&)>& fits);
  // A taken request that could not be placed after all: back in its place
  // (its deadline unchanged; one past it expires at the next take_expired).
  void put_back(request r);
  // The requests whose deadline is at or before now_ms, taken out, in order.
  std::vector<request> take_expired(int64_t now_ms);

  std::optional<int64_t> next_deadline_ms() const;
  std::vector<queue_entry> entries() const;  // in the order they are tried
  std::size_t size() const { return waiting_.size(); }
  bool empty() const { return waiting_.empty(); }

 private:
  // Higher priority first, then arrival (seq).
  struct order {
    int64_t priority = 0;
    uint64_t seq = 0;
    friend bool operator<(const order& a, const order& b) {
      return a.priority != b.priority ? a.priority > b.priority : a.seq < b.seq;
    }
  };
  static order key_of(const request& r) { return {r.entry.priority, r.seq}; }
  request take(std::map<order, request>::iterator it);

  std::map<order, request> waiting_;
  std::set<std::pair<int64_t, order>> deadlines_;  // (deadline_ms, key) of every waiting request
  uint64_t next_seq_ = 1;
};

}  // namespace poolbus
