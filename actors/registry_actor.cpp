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
  // The intake's clock: the now_ms of its latest flush (0: none yet). Every
  // message before that flush was received by the I/O thread before it, so a
  // member heard since is stamped with it (at most one flush period early).
  int64_t intake_now_ms = 0;
  static inline const char* name = "registry";
};

using registry_pointer = caf::stateful_actor<registry_state>*;

int64_t now_ms(registry_pointer self) { return self->state.config.clock.now_ms(self->clock()); }

void publish_pool_event(registry_pointer self, const std::string& pool, pool_event_kind kind) {
  self->state.config.sink->post(
      {channel::stream, {pools_topic(pool), encode_pool_event({pool, kind, now_ms(self)})}});
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
  it->second.last_seen_ms = st.intake_now_ms;
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

void on_offers(registry_pointer self, offer_announcement& a) {
  auto& m = ensure(self, a.pool);
  m.announced = true;
  if (m.joined) {
    // Once joined, the mux answers offers, offer, pools and status from the
    // announcements itself; the proxy only forwards requests to the worker,
    // so it need not see them (one actor message per change less).
    self->send(self->state.config.mux, announce_atom::value, std::move(a));
    return;
  }
  self->send(m.proxy, announce_atom::value, a);
  auto pool = a.pool;
  // Keep the newest one (a stale one within a run never replaces it, as the proxy rules).
  if (m.latest.pool.empty() || a.run != m.latest.run || a.seq >= m.latest.seq) m.latest = std::move(a);
  maybe_join(self, pool, m);
}

void on_hello(registry_pointer self, const std::string& identity) {
  auto& m = ensure(self, identity);
  m.routable = true;
  maybe_join(self, identity, m);
}

void on_reply(registry_pointer self, const std::string& identity, worker_reply& reply) {
  auto it = self->state.members.find(identity);
  if (it == self->state.members.end()) {
    spdlog::debug("reply from unknown pool {}", identity);
    return;
  }
  it->second.last_seen_ms = self->state.intake_now_ms;
  self->send(it->second.proxy, wreply_atom::value, std::move(reply));
}

// Heartbeats that repeated the last accepted announcement or hello: only
// liveness (and, for the mux, the announcement's time) changes. A pool the
// registry no longer knows (it was dropped meanwhile) must be heard in full.
void on_seen(registry_pointer self, const std::vector<pool_seen>& announced, const std::vector<pool_seen>& hellos) {
  auto& st = self->state;
  auto now = st.intake_now_ms;
  std::vector<pool_seen> for_mux;
  for_mux.reserve(announced.size());
  auto heard = [&](const pool_seen& s, bool member::*known) {
    auto it = st.members.find(s.pool);
    if (it == st.members.end() || !(it->second.*known)) {
      spdlog::debug("pool {} repeated itself but is not known: asking for it in full", s.pool);
      if (st.config.forget_pool) st.config.forget_pool(s.pool);
      return false;
    }
    it->second.last_seen_ms = now;
    return it->second.joined;
  };
  for (const auto& s : announced)
    if (heard(s, &member::announced)) for_mux.push_back(s);
  for (const auto& s : hellos) heard(s, &member::routable);
  if (!for_mux.empty()) self->send(st.config.mux, seen_atom::value, std::move(for_mux));
}

// A flush that comes this long after the previous one means the I/O thread
// was busy meanwhile (a burst of large replies): heartbeats may be waiting
// unread on its sockets, so liveness is judged at the next flush, not this one.
int64_t stall_ms(const registry_config& c) { return std::max<int64_t>(1, c.worker_timeout_ms / 4); }

// The intake flushed at `io_now_ms`: drops the members silent for the worker
// timeout by the intake's clock (never the registry's own: messages waiting in
// its mailbox while the actor thread was busy were heard in time).
void on_flushed(registry_pointer self, int64_t io_now_ms) {
  auto& st = self->state;
  auto previous = st.intake_now_ms;
  st.intake_now_ms = io_now_ms;
  if (previous == 0) {  // the first flush: whoever spoke before it was heard just now
    for (auto& [_, m] : st.members) m.last_seen_ms = io_now_ms;
    return;
  }
  if (io_now_ms - previous > stall_ms(st.config)) {
    spdlog::warn("broker I/O thread was busy for {} ms: judging pool liveness at the next flush",
                 io_now_ms - previous);
    return;
  }
  std::vector<std::string> silent;
  for (auto& [id, m] : st.members)
    if (io_now_ms - m.last_seen_ms > st.config.worker_timeout_ms) silent.push_back(id);
  for (auto& id : silent) remove(self, id, pool_event_kind::left);
}

caf::behavior registry_behavior(registry_pointer self, registry_config config) {
  self->state.config = std::move(config);
  return {
      [=](announce_atom, offer_announcement& a) { on_offers(self, a); },
      [=](announce_atom, const pool_event& stopped) {
        if (stopped.event == pool_event_kind::stopped) remove(self, stopped.pool, pool_event_kind::stopped);
      },
      [=](hello_atom, const std::string& identity, const worker_hello&) { on_hello(self, identity); },
      [=](wreply_atom, const std::string& identity, worker_reply& reply) { on_reply(self, identity, reply); },
      [=](seen_atom, const std::vector<pool_seen>& announced, const std::vector<pool_seen>& hellos) {
        on_seen(self, announced, hellos);
      },
      [=](sweep_atom, int64_t io_now_ms) { on_flushed(self, io_now_ms); },
  };
}

}  // namespace

caf::actor spawn_registry_actor(caf::actor_system& sys, registry_config config) {
  return sys.spawn(registry_behavior, std::move(config));
}

}  // namespace poolbus
