// deadline_table: the one way actors keep deadlines. Each entry is an id with
// a deadline in ms; an actor adds an entry when it starts waiting, erases it
// when the answer comes, and at each sweep takes out what expired
// (`expire(now_ms)`), then fails those itself. No CAF, no timer: the actor
// that owns the table decides when to sweep, and tests pass any now_ms.
// Invariant: an id is in the table at most once, and leaves it exactly once,
// by erase or by expire, so a waiter is answered by its reply or by its
// timeout, never both.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

namespace poolbus {

// now_ms plus each of `waits` (negative ones count as 0), saturating at
// INT64_MAX instead of overflowing.
int64_t deadline_after(int64_t now_ms, int64_t wait_ms, int64_t extra_ms = 0);

class deadline_table {
 public:
  // Adds `id` (not in the table) with its deadline.
  void add(uint64_t id, int64_t deadline_ms);
  // Takes `id` out; false when it is not in the table (expired, or never added).
  bool erase(uint64_t id);
  // Takes out every id whose deadline is at or before now_ms, soonest first.
  std::vector<uint64_t> expire(int64_t now_ms);
  // The soonest deadline, if any entry is left.
  std::optional<int64_t> next_deadline() const;
  bool empty() const { return deadline_of_.empty(); }
  std::size_t size() const { return deadline_of_.size(); }

 private:
  std::set<std::pair<int64_t, uint64_t>> by_deadline_;
  std::unordered_map<uint64_t, int64_t> deadline_of_;
};

}  // namespace poolbus
