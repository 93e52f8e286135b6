#include "policy/demand_queue.hpp"

#include <cassert>
#include <algorithm>

namespace poolbus {

const queue_entry& demand_queue::push(placement want, AllocMeta meta, answer done, int64_t now_ms) {
  request r;
  r.seq = next_seq_++;
  r.entry.id = "q" + std::to_string(r.seq);
  r.entry.owner = meta.owner;
  r.entry.min = want.min;
  r.entry.width = want.width;
  r.entry.count = want.count;
  r.entry.priority = want.priority;
  r.entry.constraints = want.constraints;
  r.entry.queued_ms = now_ms;
  r.entry.deadline_ms = now_ms + std::clamp<int64_t>(want.wait_ms, 0, max_wait_ms);
  r.want = std::move(want);
  r.meta = std::move(meta);
  r.done = std::move(done);
  auto key = key_of(r);
  deadlines_.emplace(r.entry.deadline_ms, key);
  return waiting_.emplace(key, std::move(r)).first->second.entry;
}

demand_queue::request demand_queue::take(std::map<order, request>::iterator it) {
  request r = std::move(it->second);
  deadlines_.erase({r.entry.deadline_ms, it->first});
  waiting_.erase(it);
  assert(deadlines_.size() == waiting_.size());
  return r;
}

std::optional<demand_queue::request> demand_queue::take_first(const std::function<bool(const request&)>& fits) {
  for (auto it = waiting_.begin(); it != waiting_.end(); ++it)
    if (fits(it->second)) return take(it);
  return std::nullopt;
}

void demand_queue::put_back(request r) {
  auto key = key_of(r);
  deadlines_.emplace(r.entry.deadline_ms, key);
  waiting_.emplace(key, std::move(r));
}

std::vector<demand_queue::request> demand_queue::take_expired(int64_t now_ms) {
  std::vector<request> expired;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now_ms)
    expired.push_back(take(waiting_.find(deadlines_.begin()->second)));
  return expired;
}

std::optional<int64_t> demand_queue::next_deadline_ms() const {
  if (deadlines_.empty()) return std::nullopt;
  return deadlines_.begin()->first;
}

std::vector<queue_entry> demand_queue::entries() const {
  std::vector<queue_entry> out;
  out.reserve(waiting_.size());
  for (const auto& [key, r] : waiting_) out.push_back(r.entry);
  return out;
}

}  // namespace poolbus
