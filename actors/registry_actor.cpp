#include "actors/registry_actor.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <map>

#include "actors/proxy_actor.hpp"
#include "schemas/worker_messages.hpp"

namespace poolbus {
namespace {

struct member {
  proxy_actor proxy;
  bool announced = false;  // an offers.<pool> announcement arrived
  bool routable = false;   // a hello arrived on the workers ROUTER
  bool joined = false;     // listed in the mux
  int64_t last_seen_ms = 0;
  // The newest announcement while not yet joined: the mux gets it with the
  // pool, and every later one directly.
  offer_announcement latest;
};

struct registry_state {
  registry_config config;
  std::map<std::string, member> members;
  static inline const char* name = "registry";
};

using registry_pointer = caf::stateful_actor<registry_state>*;

int64_t now_ms(registry_pointer self) { return self->state.config.clock.now_ms(self->clock()); }

void publish(registry_pointer self, std::string topic, std::string body) {
  self->state.config.sink->post({channel::stream, {std::move(topic), std::move(body)}});
}

void publish_pool_event(registry_pointer self, const std::string& pool, pool_event_kind kind) {
  publish(self, pools_topic(pool), encode_pool_event({pool, kind, now_ms(self)}));
}

// Membership reaches the mux one pool at a time (O(log pools) per change, in
// order, no questions to the proxies): a join adds the pool with its newest
// announcement, a leave removes it.
void mux_add(registry_pointer self, const std::string& pool, member& m) {
  self->send(self->state.config.mux, add_pool_atom::value, pool, caf::actor_cast<pool_actor>(m.proxy),
             std::move(m.latest));
  m.latest = offer_announcement{};
}

void mux_remove(registry_pointer self, const std::string& pool) {
  self->send(self->state.config.mux, rm_pool_atom::value, pool);
}

member& ensure(registry_pointer self, const std::string& pool) {
  auto& st = self->state;
  auto it = st.members.find(pool);
  if (it == st.members.end()) {
    member m;
    m.proxy = spawn_proxy_actor(self->system(),
                                proxy_config{pool, st.config.sink, st.config.request_timeout_ms, st.config.clock});
    it = st.members.emplace(pool, std::move(m)).first;
  }
  it->second.last_seen_ms = now_ms(self);
  return it->second;
}

void maybe_join(registry_pointer self, const std::string& pool, member& m) {
  if (m.joined || !m.announced || !m.routable) return;
  m.joined = true;
  spdlog::info("pool {} joined", pool);
  mux_add(self, pool, m);
  publish_pool_event(self, pool, pool_event_kind::joined);
}

void remove(registry_pointer self, const std::string& pool, pool_event_kind why) {
  auto it = self->state.members.find(pool);
  if (it == self->state.members.end()) return;
  bool was_joined = it->second.joined;
  self->send(it->second.proxy, lost_atom::value);
  self->state.members.erase(it);
  spdlog::info("pool {} {}", pool, to_string(why));
  if (was_joined) mux_remove(self, pool);
  if (why == pool_event_kind::left && was_joined) publish_pool_event(self, pool, why);
}

bool topic_matches(const std::string& topic, const std::string& expected) {
  if (topic == expected) return true;
  spdlog::warn("dropped an announcement on topic {} (its body says {})", topic, expected);
  return false;
}

void on_announcement(registry_pointer self, std::string& topic, std::string& body) {
  if (topic.rfind("offers.", 0) == 0) {
    auto a = decode_offer_announcement(body);
    if (!a) {
      spdlog::warn("dropped a malformed announcement on {}: {}", topic, a.error().to_string());
      return;
    }
    if (!topic_matches(topic, offers_topic(a->pool))) return;
    auto& m = ensure(self, a->pool);
    m.announced = true;
    publish(self, std::move(topic), std::move(body));
    if (m.joined) {
      // Once joined, the mux answers offers, offer, pools and status from the
      // announcements itself; the proxy only forwards requests to the worker,
      // so it need not see them (one actor message per heartbeat less).
      self->send(self->state.config.mux, announce_atom::value, std::move(*a));
    } else {
      self->send(m.proxy, announce_atom::value, *a);
      auto pool = a->pool;
      // Keep the newest one (a stale one within a run never replaces it, as the proxy rules).
      if (m.latest.pool.empty() || a->run != m.latest.run || a->seq >= m.latest.seq) m.latest = std::move(*a);
      maybe_join(self, pool, m);
    }
  } else if (topic.rfind("allocs.", 0) == 0) {
    auto e = decode_alloc_event(body);
    if (!e) {
      spdlog::warn("dropped a malformed alloc event on {}: {}", topic, e.error().to_string());
      return;
    }
    if (!topic_matches(topic, allocs_topic(e->pool))) return;
    publish(self, std::move(topic), std::move(body));
  } else if (topic.rfind("execs.", 0) == 0) {
    auto e = decode_exec_event(body);
    if (!e) {
      spdlog::warn("dropped a malformed exec event on {}: {}", topic, e.error().to_string());
      return;
    }
    if (!topic_matches(topic, execs_topic(e->pool))) return;
    publish(self, std::move(topic), std::move(body));
  } else if (topic.rfind("pools.", 0) == 0) {
    auto e = decode_pool_event(body);
    if (!e) {
      spdlog::warn("dropped a malformed pool event on {}: {}", topic, e.error().to_string());
      return;
    }
    if (!topic_matches(topic, pools_topic(e->pool))) return;
    if (e->event != pool_event_kind::stopped) return;  // only workers' own `stopped` is theirs to say
    publish(self, std::move(topic), std::move(body));
    remove(self, e->pool, pool_event_kind::stopped);
  } else {
    spdlog::debug("dropped an announcement on unknown topic {}", topic);
  }
}

void on_worker_message(registry_pointer self, const std::string& identity, const std::string& body) {
  auto message = decode_worker_message(body);
  if (!message) {
    spdlog::warn("dropped a malformed message from worker {}: {}", identity, message.error().to_string());
    return;
  }
  if (auto* hello = std::get_if<worker_hello>(&*message)) {
    if (hello->pool != identity) {
      spdlog::warn("dropped a hello for pool {} from routing id {}", hello->pool, identity);
      return;
    }
    auto& m = ensure(self, identity);
    m.routable = true;
    maybe_join(self, identity, m);
    return;
  }
  auto& reply = std::get<worker_reply>(*message);
  auto it = self->state.members.find(identity);
  if (it == self->state.members.end()) {
    spdlog::debug("reply from unknown pool {}", identity);
    return;
  }
  it->second.last_seen_ms = now_ms(self);
  self->send(it->second.proxy, wreply_atom::value, std::move(reply));
}

int64_t sweep_period_ms(const registry_config& c) { return std::max<int64_t>(10, c.worker_timeout_ms / 4); }

caf::behavior registry_behavior(registry_pointer self, registry_config config) {
  self->state.config = std::move(config);
  self->delayed_send(self, std::chrono::milliseconds(sweep_period_ms(self->state.config)), sweep_atom::value);
  return {
      [=](announce_atom, std::string& topic, std::string& body) { on_announcement(self, topic, body); },
      [=](wframes_atom, const std::string& identity, const std::string& body) {
        on_worker_message(self, identity, body);
      },
      [=](sweep_atom) {
        auto now = now_ms(self);
        std::vector<std::string> silent;
        for (auto& [id, m] : self->state.members)
          if (now - m.last_seen_ms > self->state.config.worker_timeout_ms) silent.push_back(id);
        for (auto& id : silent) remove(self, id, pool_event_kind::left);
        self->delayed_send(self, std::chrono::milliseconds(sweep_period_ms(self->state.config)), sweep_atom::value);
      },
  };
}

}  // namespace

caf::actor spawn_registry_actor(caf::actor_system& sys, registry_config config) {
  return sys.spawn(registry_behavior, std::move(config));
}

}  // namespace poolbus
