#include "broker/worker_intake.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "policy/liveness.hpp"
#include "schemas/exec.hpp"

namespace poolbus {
namespace {

bool starts_with(const std::string& text, std::string_view prefix) { return text.rfind(prefix, 0) == 0; }

bool topic_matches(const std::string& topic, const std::string& expected) {
  if (topic == expected) return true;
  spdlog::warn("dropped an announcement on topic {} (its body says {})", topic, expected);
  return false;
}

// Whether an event body decodes and names the pool its topic does; logs why not.
template <class Decode, class TopicOf>
bool valid_event(const std::string& topic, const std::string& body, Decode decode, TopicOf topic_of, const char* what) {
  auto event = decode(body);
  if (!event) {
    spdlog::warn("dropped a malformed {} on {}: {}", what, topic, event.error().to_string());
    return false;
  }
  return topic_matches(topic, topic_of(event->pool));
}

void add_seen(std::map<std::string, int64_t>& batch, std::string_view pool, int64_t ts_ms) {
  auto [it, added] = batch.try_emplace(std::string(pool), ts_ms);
  if (!added) it->second = std::max(it->second, ts_ms);
}

std::vector<pool_seen> drain(std::map<std::string, int64_t>& batch) {
  std::vector<pool_seen> out;
  out.reserve(batch.size());
  for (auto& [pool, ts] : batch) out.push_back(pool_seen{pool, ts});
  batch.clear();
  return out;
}

}  // namespace

worker_intake::worker_intake(frame_sink& stream, worker_intake_outputs outputs, int64_t worker_timeout_ms)
    : stream_(stream), outputs_(std::move(outputs)), worker_timeout_ms_(worker_timeout_ms) {}

int64_t worker_intake::flush_period_ms() const { return liveness::intake_flush_ms(worker_timeout_ms_); }

void worker_intake::publish(std::string&& topic, std::string&& body) {
  stream_.post({channel::stream, {std::move(topic), std::move(body)}});
}

void worker_intake::on_announcement(std::string&& topic, std::string&& body, int64_t now_ms) {
  if (starts_with(topic, "offers.")) {
    if (auto ts = announcements_.repeat_ts(topic, body, now_ms)) {
      add_seen(announced_seen_, std::string_view(topic).substr(7), *ts);
      publish(std::move(topic), std::move(body));
      return;
    }
    auto a = decode_offer_announcement(body);
    if (!a) {
      spdlog::warn("dropped a malformed announcement on {}: {}", topic, a.error().to_string());
      return;
    }
    if (!topic_matches(topic, offers_topic(a->pool))) return;
    announcements_.remember(topic, body, now_ms);
    publish(std::move(topic), std::move(body));
    outputs_.offers_changed(std::move(*a));
  } else if (starts_with(topic, "allocs.")) {
    if (valid_event(topic, body, decode_alloc_event, allocs_topic, "alloc event"))
      publish(std::move(topic), std::move(body));
  } else if (starts_with(topic, "execs.")) {
    if (valid_event(topic, body, decode_exec_event, execs_topic, "exec event"))
      publish(std::move(topic), std::move(body));
  } else if (starts_with(topic, "pools.")) {
    auto e = decode_pool_event(body);
    if (!e) {
      spdlog::warn("dropped a malformed pool event on {}: {}", topic, e.error().to_string());
      return;
    }
    if (!topic_matches(topic, pools_topic(e->pool))) return;
    if (e->event != pool_event_kind::stopped) return;  // only workers' own `stopped` is theirs to say
    // A stopped pool that comes back is a new member: hear it afresh.
    announcements_.forget(offers_topic(e->pool));
    hellos_.forget(e->pool);
    announced_seen_.erase(e->pool);
    hello_seen_.erase(e->pool);
    publish(std::move(topic), std::move(body));
    outputs_.pool_stopped(std::move(*e));
  } else {
    spdlog::debug("dropped an announcement on unknown topic {}", topic);
  }
}

void worker_intake::on_worker_message(std::string&& identity, std::string&& body, int64_t now_ms) {
  if (auto ts = hellos_.repeat_ts(identity, body, now_ms)) {
    add_seen(hello_seen_, identity, *ts);
    return;
  }
  auto message = decode_worker_message_relaying(body);
  if (!message) {
    spdlog::warn("dropped a malformed message from worker {}: {}", identity, message.error().to_string());
    return;
  }
  if (auto* hello = std::get_if<worker_hello>(&*message)) {
    if (hello->pool != identity) {
      spdlog::warn("dropped a hello for pool {} from routing id {}", hello->pool, identity);
      return;
    }
    hellos_.remember(identity, std::move(body), now_ms);
    outputs_.hello(std::move(identity), std::move(*hello));
    return;
  }
  outputs_.reply(std::move(identity), std::move(std::get<worker_reply>(*message)));
}

void worker_intake::take_forgotten() {
  std::vector<std::string> pools;
  {
    std::lock_guard<std::mutex> guard(forget_mutex_);
    pools.swap(to_forget_);
  }
  for (const auto& pool : pools) {
    announcements_.forget(offers_topic(pool));
    hellos_.forget(pool);
  }
}

void worker_intake::flush(int64_t now_ms) {
  take_forgotten();
  if (!announced_seen_.empty() || !hello_seen_.empty()) outputs_.seen(drain(announced_seen_), drain(hello_seen_));
  // Swept a few times per period.
  int64_t silent_after = liveness::intake_forget_ms(liveness::silent_after_ms(worker_timeout_ms_, paced_ms_));
  if (now_ms - last_forget_sweep_ms_ >= silent_after / 4) {
    last_forget_sweep_ms_ = now_ms;
    announcements_.forget_silent(now_ms - silent_after);
    hellos_.forget_silent(now_ms - silent_after);
  }
  if (outputs_.flushed) outputs_.flushed(now_ms);
}

void worker_intake::forget(const std::string& pool) {
  std::lock_guard<std::mutex> guard(forget_mutex_);
  to_forget_.push_back(pool);
}

}  // namespace poolbus
