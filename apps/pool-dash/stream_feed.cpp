#include "apps/pool-dash/stream_feed.hpp"

#include <spdlog/spdlog.h>

#include <thread>

#include "dash/dash_json.hpp"

namespace poolbus {
namespace {

// The live page's frames for one change of the view (the view's lock held).
void append_frames(std::string& chunk, const view_change& change, const cluster_view& view, int64_t now_ms) {
  if (change.pool_changed) {
    auto it = view.pools().find(*change.pool_changed);
    if (it != view.pools().end()) chunk += event_hub::frame("pool", pool_json(it->second));
  }
  if (change.pool_gone) chunk += event_hub::frame("gone", gone_json(*change.pool_gone));
  if (change.tail) chunk += event_hub::frame("tail", tail_json(*change.tail));
  if (change.queue_changed) chunk += event_hub::frame("queue", queue_json(view, now_ms));
}

}  // namespace

int64_t wall_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void broker_check::run(const std::function<bool()>& stop) {
  int64_t next = 0;
  while (!stop()) {
    if (wall_ms() >= next) check(), next = wall_ms() + interval_ms;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void broker_check::check() {
  const bool was_up = state_.broker_up.load();
  const bool up = bool(reader_.run("ping", [](pool_client& c) { return c.ping(); }));
  state_.broker_up = up;
  if (up != was_up) spdlog::info("broker {}", up ? "reachable" : "not answering");
  if (!up) return;
  broker_snapshot snapshot;
  snapshot.asked_ms = wall_ms();
  if (auto pools = reader_.run("pools", [](pool_client& c) { return c.pools(); })) snapshot.pools = std::move(*pools);
  if (auto queue = reader_.run("queue", [](pool_client& c) { return c.queue(); })) snapshot.queue = std::move(*queue);
  std::lock_guard<std::mutex> lock(mutex_);
  newest_ = std::move(snapshot);
}

std::optional<broker_snapshot> broker_check::take() {
  std::lock_guard<std::mutex> lock(mutex_);
  auto out = std::move(newest_);
  newest_.reset();
  return out;
}

stream_feed::stream_feed(dashboard_state& state, broker_check& check, std::unique_ptr<stream_subscriber> stream)
    : state_(state), check_(check), stream_(std::move(stream)) {}

void stream_feed::run(const std::function<bool()>& stop) {
  int64_t next_tick = wall_ms() + tick_ms;
  while (!stop()) {
    const int64_t now = wall_ms();
    if (auto snapshot = check_.take()) apply_snapshot(std::move(*snapshot));
    if (now >= next_tick) tick(now), next_tick = now + tick_ms;
    apply_burst();
  }
  state_.hub.close();
}

void stream_feed::apply_burst() {
  auto first = stream_->next(200);
  if (!first) return;  // timeout: nothing this round
  std::string chunk;
  std::lock_guard<std::mutex> lock(state_.mutex);
  auto message = std::move(first);
  for (size_t n = 0; n < burst_limit && message; ++n) {
    const int64_t now = wall_ms();
    view_change change = state_.view.on_message(message->first, message->second, now);
    append_frames(chunk, change, state_.view, now);
    message = stream_->next(0);  // whatever else is already here joins this chunk
  }
  state_.hub.publish(std::move(chunk));
}

void stream_feed::tick(int64_t now_ms) {
  std::string chunk;
  {
    std::lock_guard<std::mutex> lock(state_.mutex);
    chunk += event_hub::frame("seen", seen_json(state_.view.take_quiet(), now_ms));
    chunk += event_hub::frame("stats", stats_json(stats_of(state_, now_ms)));
  }
  state_.hub.publish(std::move(chunk));
}

void stream_feed::apply_snapshot(broker_snapshot snapshot) {
  std::string chunk;
  std::lock_guard<std::mutex> lock(state_.mutex);
  if (snapshot.pools) {
    for (const std::string& id : state_.view.on_pools_snapshot(*snapshot.pools, snapshot.asked_ms)) {
      auto it = state_.view.pools().find(id);
      chunk += it == state_.view.pools().end() ? event_hub::frame("gone", gone_json(id))
                                               : event_hub::frame("pool", pool_json(it->second));
    }
  }
  if (snapshot.queue && state_.view.on_queue_snapshot(std::move(*snapshot.queue)))
    chunk += event_hub::frame("queue", queue_json(state_.view, wall_ms()));
  state_.hub.publish(std::move(chunk));
}

}  // namespace poolbus
