#include "dash/cluster_view.hpp"

#include <algorithm>

#include "schemas/exec.hpp"
#include "schemas/worker_messages.hpp"

namespace poolbus {
namespace {

bool starts_with(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

// The order the broker tries its queue in: priority (higher first), then arrival.
bool tried_before(const queue_entry& a, const queue_entry& b) {
  if (a.priority != b.priority) return a.priority > b.priority;
  if (a.queued_ms != b.queued_ms) return a.queued_ms < b.queued_ms;
  return a.id < b.id;
}

bool same_entry(const queue_entry& a, const queue_entry& b) {
  return a.id == b.id && a.owner == b.owner && a.min == b.min && a.count == b.count && a.priority == b.priority &&
         a.deadline_ms == b.deadline_ms;
}

bool same_offer(const offer_announcement& a, const offer_announcement& b) {
  return a.run == b.run && a.seq == b.seq && a.allocs == b.allocs && a.draining == b.draining && a.labels == b.labels &&
         a.available == b.available && a.resources == b.resources;
}

}  // namespace

cluster_view::cluster_view(size_t tail_capacity) : tail_capacity_(std::max<size_t>(tail_capacity, 1)) {}

view_change cluster_view::on_message(std::string_view topic, std::string_view body, int64_t now_ms) {
  last_message_ms_ = now_ms;
  count_rate(now_ms);
  if (starts_with(topic, "offers.")) return on_offers(body, now_ms);
  if (starts_with(topic, "pools.")) return on_pool_event(body, now_ms);
  if (starts_with(topic, "allocs.")) return on_alloc_event(body);
  if (starts_with(topic, "execs.")) return on_exec_event(body);
  if (topic == demand_topic) return on_demand_event(body);
  return {};  // a topic of a newer broker: nothing to show yet
}

view_change cluster_view::on_offers(std::string_view body, int64_t now_ms) {
  auto decoded = decode_offer_announcement(body);
  if (!decoded) return ++counters_.malformed, view_change{};
  ++counters_.messages["offers"];
  offer_announcement& a = *decoded;
  auto it = pools_.find(a.pool);
  view_change change;
  heard_.insert(a.pool);
  if (it == pools_.end()) {
    change.pool_changed = a.pool;
    const std::string id = a.pool;  // (the right side of = is evaluated first)
    pools_[id] = pool_view{std::move(a), now_ms};
    return change;
  }
  it->second.last_seen_ms = now_ms;
  if (!supersedes(a, it->second.latest)) return change;
  if (!same_offer(a, it->second.latest)) change.pool_changed = a.pool;
  it->second.latest = std::move(a);
  return change;
}

view_change cluster_view::on_pool_event(std::string_view body, int64_t now_ms) {
  auto decoded = decode_pool_event(body);
  if (!decoded) return ++counters_.malformed, view_change{};
  const pool_event& e = *decoded;
  ++counters_.messages["pools"];
  ++counters_.pool_events[std::string(to_string(e.event))];
  view_change change;
  auto it = pools_.find(e.pool);
  switch (e.event) {
    case pool_event_kind::left:
    case pool_event_kind::stopped:
      if (it != pools_.end()) pools_.erase(it), change.pool_gone = e.pool;
      break;
    case pool_event_kind::draining:
    case pool_event_kind::undrained:
      if (it != pools_.end()) {
        it->second.latest.draining = e.event == pool_event_kind::draining;
        it->second.last_seen_ms = now_ms;
        heard_.insert(e.pool);
        change.pool_changed = e.pool;
      }
      break;
    case pool_event_kind::joined: break;  // its first offers message adds it
  }
  remember(change, {pools_topic(e.pool), "pools", std::string(to_string(e.event)), e.pool, e.ts_ms, std::string(body)});
  return change;
}

view_change cluster_view::on_alloc_event(std::string_view body) {
  auto decoded = decode_alloc_event(body);
  if (!decoded) return ++counters_.malformed, view_change{};
  const alloc_event& e = *decoded;
  return on_life_event(counters_.alloc_events, {allocs_topic(e.pool), "allocs", std::string(to_string(e.event)), e.pool,
                                                e.ts_ms, std::string(body)});
}

view_change cluster_view::on_exec_event(std::string_view body) {
  auto decoded = decode_exec_event(body);
  if (!decoded) return ++counters_.malformed, view_change{};
  const exec_event& e = *decoded;
  return on_life_event(counters_.exec_events, {execs_topic(e.pool), "execs", std::string(to_string(e.event)), e.pool,
                                               e.ts_ms, std::string(body)});
}

view_change cluster_view::on_life_event(std::map<std::string, uint64_t>& counts, tail_event event) {
  ++counters_.messages[event.kind];
  ++counts[event.event];
  view_change change;
  remember(change, std::move(event));
  return change;
}

view_change cluster_view::on_demand_event(std::string_view body) {
  auto decoded = decode_demand_event(body);
  if (!decoded) return ++counters_.malformed, view_change{};
  demand_event& e = *decoded;
  ++counters_.messages["demand"];
  const std::string id = e.request.id;
  auto held = std::find_if(queue_.begin(), queue_.end(), [&](const queue_entry& q) { return q.id == id; });
  if (e.event == demand_event_kind::queued && held == queue_.end()) {
    queue_.insert(std::upper_bound(queue_.begin(), queue_.end(), e.request, tried_before), e.request);
  } else if (e.event != demand_event_kind::queued && held != queue_.end()) {
    queue_.erase(held);
  }
  view_change change;
  change.queue_changed = true;
  remember(change,
           {std::string(demand_topic), "demand", std::string(to_string(e.event)), "", e.ts_ms, std::string(body)});
  return change;
}

void cluster_view::remember(view_change& change, tail_event event) {
  if (tail_.size() == tail_capacity_) tail_.pop_front();
  tail_.push_back(event);
  change.tail = std::move(event);
}

void cluster_view::count_rate(int64_t now_ms) {
  const int64_t second = now_ms / 1000;
  if (rate_buckets_.empty() || rate_buckets_.back().first != second) rate_buckets_.emplace_back(second, 0);
  ++rate_buckets_.back().second;
  while (!rate_buckets_.empty() && rate_buckets_.front().first <= second - rate_window_ms / 1000)
    rate_buckets_.pop_front();
}

double cluster_view::events_per_second(int64_t now_ms) const {
  const int64_t second = now_ms / 1000;
  uint64_t total = 0;
  for (const auto& [s, n] : rate_buckets_)
    if (s > second - rate_window_ms / 1000 && s <= second) total += n;
  return static_cast<double>(total) * 1000.0 / static_cast<double>(rate_window_ms);
}

std::vector<std::string> cluster_view::on_pools_snapshot(const std::vector<PoolStatus>& pools, int64_t asked_ms) {
  std::vector<std::string> changed;
  std::set<std::string> listed;
  for (const PoolStatus& p : pools) {
    listed.insert(p.id);
    auto [it, added] = pools_.try_emplace(p.id);
    pool_view& view = it->second;
    const bool drain_flip = !added && view.latest.draining != p.draining;
    if (added) {
      view.latest.pool = p.id;
      view.latest.resources = p.resources;
      view.latest.available = p.available;
      view.latest.allocs = p.allocs;
      view.latest.labels = p.labels;
      view.last_seen_ms = p.last_seen_ms;
    }
    view.latest.draining = p.draining;  // the broker's word: a missed draining event heals here
    if (added || drain_flip) changed.push_back(p.id);
  }
  for (auto it = pools_.begin(); it != pools_.end();) {
    // Unknown to the broker, and not heard on the stream since we asked: gone.
    if (!listed.count(it->first) && it->second.last_seen_ms < asked_ms) {
      changed.push_back(it->first);
      it = pools_.erase(it);
    } else {
      ++it;
    }
  }
  return changed;
}

bool cluster_view::on_queue_snapshot(std::vector<queue_entry> queue) {
  std::stable_sort(queue.begin(), queue.end(), tried_before);
  const bool same = std::equal(queue.begin(), queue.end(), queue_.begin(), queue_.end(), same_entry);
  queue_ = std::move(queue);
  return !same;
}

std::vector<const tail_event*> cluster_view::tail(std::string_view prefix, size_t limit) const {
  std::vector<const tail_event*> out;
  for (auto it = tail_.rbegin(); it != tail_.rend() && out.size() < limit; ++it)
    if (starts_with(it->topic, prefix)) out.push_back(&*it);
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::string> cluster_view::take_quiet() {
  std::vector<std::string> out;
  for (const auto& [id, view] : pools_)
    if (!heard_.count(id)) out.push_back(id);
  heard_.clear();
  return out;
}

}  // namespace poolbus
