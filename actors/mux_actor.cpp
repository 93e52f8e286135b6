#include "actors/mux_actor.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <optional>

#include "actors/error_bridge.hpp"
#include "actors/proxy_actor.hpp"
#include "policy/allocate_queue.hpp"
#include "policy/pool_directory.hpp"

namespace poolbus {
namespace {

// Where an allocs request's answer goes: its entries, or the error it got.
using allocs_answer = std::function<void(outcome<encoded_array>)>;

struct queued_allocs {
  std::string pool;  // "" = every pool
  allocs_answer answer;
  caf::actor_clock::time_point queued;
};

struct mux_state {
  mux_config config;
  std::unique_ptr<pool_directory> directory;
  std::map<std::string, proxy_actor> proxies;  // one per joined pool, by pool id
  std::unique_ptr<allocate_queue> allocates;
  std::deque<queued_allocs> large_allocs;  // large allocs gathers waiting for a slot
  int large_allocs_running = 0;
  static inline const char* name = "mux";
};

using mux_pointer = mux_actor::stateful_pointer<mux_state>;

int64_t now_ms(mux_pointer self) { return self->state.config.clock.now_ms(self->clock()); }

// ---------------------------------------------------------------- membership

void publish_pool_event(mux_pointer self, const std::string& pool, pool_event_kind kind) {
  self->state.config.sink->post({channel::stream, {pools_topic(pool), encode_pool_event({pool, kind, now_ms(self)})}});
}

void on_joined(mux_pointer self, const std::string& pool) {
  auto& st = self->state;
  auto proxy = spawn_proxy_actor(self->system(),
                                 proxy_config{pool, st.config.sink, st.config.request_timeout_ms, st.config.clock});
  self->link_to(proxy);  // proxies end with the mux (a proxy's own normal exit does not end the mux)
  st.proxies.emplace(pool, std::move(proxy));
  spdlog::info("pool {} joined", pool);
  publish_pool_event(self, pool, pool_event_kind::joined);
}

// `why`: left (silent; published) or stopped (the worker published it itself).
void on_departed(mux_pointer self, const pool_departure& gone, pool_event_kind why) {
  spdlog::info("pool {} {}", gone.pool, to_string(why));
  if (!gone.was_joined) return;
  auto proxy = self->state.proxies.find(gone.pool);
  if (proxy != self->state.proxies.end()) {
    self->send(proxy->second, lost_atom::value);
    self->state.proxies.erase(proxy);
  }
  if (why == pool_event_kind::left) publish_pool_event(self, gone.pool, why);
}

void on_announcement(mux_pointer self, offer_announcement& a) {
  auto pool = a.pool;
  if (self->state.directory->on_announcement(std::move(a))) on_joined(self, pool);
}

void on_hello(mux_pointer self, const std::string& identity) {
  if (self->state.directory->on_hello(identity)) on_joined(self, identity);
}

void on_reply(mux_pointer self, const std::string& identity, worker_reply& reply) {
  if (!self->state.directory->on_reply(identity)) {
    spdlog::debug("reply from unknown pool {}", identity);
    return;
  }
  self->send(self->state.proxies.at(identity), wreply_atom::value, std::move(reply));
}

void on_seen(mux_pointer self, const std::vector<pool_seen>& announced, const std::vector<pool_seen>& hellos) {
  for (const auto& pool : self->state.directory->on_seen(announced, hellos)) {
    spdlog::debug("pool {} repeated itself but is not known: asking for it in full", pool);
    if (self->state.config.forget_pool) self->state.config.forget_pool(pool);
  }
}

void on_stopped(mux_pointer self, const pool_event& event) {
  if (event.event != pool_event_kind::stopped) return;
  if (auto gone = self->state.directory->on_stopped(event.pool)) on_departed(self, *gone, pool_event_kind::stopped);
}

void on_flushed(mux_pointer self, int64_t io_now_ms) {
  auto result = self->state.directory->on_flushed(io_now_ms);
  if (result.stalled_ms > 0)
    spdlog::warn("broker I/O thread was busy for {} ms: judging pool liveness at the next flush", result.stalled_ms);
  for (const auto& gone : result.silent) on_departed(self, gone, pool_event_kind::left);
}

// ---------------------------------------------------------------- routing

// The joined pool's proxy a URI names, and the pool's local id for it.
outcome<std::pair<proxy_actor, std::string>> proxy_for(mux_pointer self, const std::string& uri) {
  auto parsed = parse_pool_uri(uri);
  if (!parsed) return parsed.error();
  auto proxy = self->state.proxies.find(parsed->pool);
  if (proxy == self->state.proxies.end())
    return pool_error{error_kind::unavailable, "pool " + parsed->pool + " of " + uri + " is not connected"};
  return std::make_pair(proxy->second, parsed->local);
}

// Hands a request to the pool's proxy, which answers the caller directly.
template <class T, class Atom, class... Args>
caf::result<T> delegate_to_pool(mux_pointer self, const std::string& uri, Atom atom, Args&&... args) {
  auto target = proxy_for(self, uri);
  if (!target) return make_error(target.error());
  return self->delegate(target->first, atom, target->second, std::forward<Args>(args)...);
}

caf::result<OfferInfo> offer(mux_pointer self, const std::string& uri) {
  auto target = proxy_for(self, uri);
  if (!target) return make_error(target.error());
  auto pool = parse_pool_uri(uri)->pool;
  const auto& offers = self->state.directory->joined(pool)->latest.offers;
  // A pool extends at most one offer, local id "1" (protocol.md).
  if (target->second != "1" || offers.empty())
    return make_error(error_kind::not_exist, "pool " + pool + " has no offer " + target->second);
  return OfferInfo{make_pool_uri(pool, "1"), pool, offers.front().available};
}

caf::result<AllocInspect> accept(mux_pointer self, const std::string& uri, AllocMeta& meta) {
  auto target = proxy_for(self, uri);
  if (!target) return make_error(target.error());
  if (meta.want.is_zero()) return make_error(nothing_asked("want", meta.want));
  return self->delegate(target->first, accept_atom::value, target->second, std::move(meta));
}

caf::result<exec_answer> exec(mux_pointer self, exec_call& call) {
  auto target = proxy_for(self, call.alloc);
  if (!target) return make_error(target.error());
  call.alloc = target->second;
  return self->delegate(target->first, exec_atom::value, std::move(call));
}

// ---------------------------------------------------------------- allocate

std::unique_ptr<allocate_queue> make_allocate_queue(mux_pointer self) {
  allocate_queue::hooks io;
  io.gather_offers = [self](std::function<void(std::vector<OfferInfo>)> done) {
    done(self->state.directory->local_offers());
  };
  io.accept = [self](const OfferInfo& offer, AllocMeta meta, allocate_queue::answer done) {
    auto proxy = self->state.proxies.find(offer.pool);
    if (proxy == self->state.proxies.end())
      return done(pool_error{error_kind::not_exist, "pool " + offer.pool + " left"});  // the next candidate is tried
    self->request(proxy->second, caf::infinite, accept_atom::value, offer.id, std::move(meta))
        .then([done](AllocInspect& alloc) { done(std::move(alloc)); },
              [done](caf::error& err) { done(to_pool_error(err)); });
  };
  return std::make_unique<allocate_queue>(std::move(io), self->state.config.seed);
}

caf::result<AllocInspect> allocate(mux_pointer self, Resources& min, int64_t width, AllocMeta& meta_template) {
  if (auto refused = allocate_queue::refusal(min, width)) return make_error(*refused);
  auto promise = self->make_response_promise<AllocInspect>();
  self->state.allocates->push(std::move(min), width, std::move(meta_template),
                              [promise](outcome<AllocInspect> result) mutable { deliver(promise, std::move(result)); });
  return promise;
}

// ---------------------------------------------------------------- allocs

// One concurrent round of allocs requests: each pool's part is settled once
// (its entries, or nothing on error/deadline); `done` gets them in pool-id order.
struct allocs_round {
  std::vector<std::optional<encoded_array>> parts;
  std::size_t pending = 0;
  std::function<void(encoded_array)> done;

  void settle(std::size_t i, std::optional<encoded_array> part) {
    parts[i] = std::move(part);
    if (--pending > 0) return;
    encoded_array all;
    for (auto& p : parts)
      if (p) append_entries(all, std::move(*p));
    done(std::move(all));
  }
};

// The proxies an allocs request asks: every joined pool's, or the one named (none when unknown).
std::vector<std::pair<std::string, proxy_actor>> allocs_targets(mux_pointer self, const std::string& pool) {
  const auto& proxies = self->state.proxies;
  if (pool.empty()) return {proxies.begin(), proxies.end()};
  auto it = proxies.find(pool);
  if (it == proxies.end()) return {};
  return {*it};
}

void gather_allocs(mux_pointer self, const std::string& pool, std::function<void(encoded_array)> done) {
  auto targets = allocs_targets(self, pool);
  if (targets.empty()) return done(encoded_array{});
  auto round = std::make_shared<allocs_round>();
  round->parts.resize(targets.size());
  round->pending = targets.size();
  round->done = std::move(done);
  for (std::size_t i = 0; i < targets.size(); ++i) {
    self->request(targets[i].second, self->state.config.gather_deadline, allocs_atom::value, encoded_atom::value)
        .then([i, round](encoded_array& entries) { round->settle(i, std::move(entries)); },
              [i, id = targets[i].first, round](caf::error& err) {
                spdlog::debug("mux: pool {} left out of allocs: {}", id, to_pool_error(err).to_string());
                round->settle(i, std::nullopt);
              });
  }
}

void run_next_large_allocs(mux_pointer self);

// Gathers one allocs request; a large one holds its slot until its answer.
void run_allocs(mux_pointer self, const std::string& pool, allocs_answer answer, bool large) {
  gather_allocs(self, pool, [self, answer, large](encoded_array all) {
    answer(std::move(all));
    if (!large) return;
    --self->state.large_allocs_running;
    run_next_large_allocs(self);
  });
}

void run_next_large_allocs(mux_pointer self) {
  auto& st = self->state;
  auto timeout = std::chrono::milliseconds(st.config.request_timeout_ms);
  while (st.large_allocs_running < std::max(1, st.config.max_large_gathers) && !st.large_allocs.empty()) {
    auto next = std::move(st.large_allocs.front());
    st.large_allocs.pop_front();
    auto waited = self->clock().now() - next.queued;
    if (waited >= timeout) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(waited).count();
      next.answer(pool_error{error_kind::timeout,
                             "allocs: waited " + std::to_string(ms) + " ms behind other large allocs requests"});
      continue;
    }
    ++st.large_allocs_running;
    run_allocs(self, next.pool, std::move(next.answer), true);
  }
}

// allocs of `pool` ("" = every pool): a small gather at once, a large one when a slot is free.
caf::result<encoded_array> allocs(mux_pointer self, const std::string& pool) {
  auto promise = self->make_response_promise<encoded_array>();
  allocs_answer answer = [promise](outcome<encoded_array> entries) mutable { deliver(promise, std::move(entries)); };
  auto& st = self->state;
  if (st.directory->announced_allocs(pool) < st.config.large_gather_allocs) {
    run_allocs(self, pool, std::move(answer), false);
  } else {
    st.large_allocs.push_back({pool, std::move(answer), self->clock().now()});
    run_next_large_allocs(self);
  }
  return promise;
}

// ---------------------------------------------------------------- behavior

mux_actor::behavior_type mux_behavior(mux_pointer self, mux_config config) {
  auto& st = self->state;
  st.config = std::move(config);
  st.directory = std::make_unique<pool_directory>(st.config.worker_timeout_ms);
  st.allocates = make_allocate_queue(self);
  return {
      [=](offers_atom, encoded_atom) { return self->state.directory->offer_entries(); },
      [=](pools_atom, encoded_atom) { return self->state.directory->status_entries(); },
      [=](offer_atom, const std::string& uri) { return offer(self, uri); },
      [=](accept_atom, const std::string& uri, AllocMeta& meta) { return accept(self, uri, meta); },
      [=](allocate_atom, Resources& min, int64_t width, AllocMeta& meta) { return allocate(self, min, width, meta); },
      [=](allocs_atom, encoded_atom, const std::string& pool) { return allocs(self, pool); },
      [=](inspect_atom, const std::string& uri) {
        return delegate_to_pool<AllocInspect>(self, uri, inspect_atom::value);
      },
      [=](keepalive_atom, const std::string& uri, int64_t interval_ms) {
        return delegate_to_pool<int64_t>(self, uri, keepalive_atom::value, interval_ms);
      },
      [=](free_atom, const std::string& uri) { return delegate_to_pool<caf::ok_atom>(self, uri, free_atom::value); },
      [=](exec_atom, exec_call& call) { return exec(self, call); },
      [=](announce_atom, offer_announcement& a) { on_announcement(self, a); },
      [=](announce_atom, const pool_event& event) { on_stopped(self, event); },
      [=](hello_atom, const std::string& identity, const worker_hello&) { on_hello(self, identity); },
      [=](wreply_atom, const std::string& identity, worker_reply& reply) { on_reply(self, identity, reply); },
      [=](seen_atom, const std::vector<pool_seen>& announced, const std::vector<pool_seen>& hellos) {
        on_seen(self, announced, hellos);
      },
      [=](sweep_atom, int64_t io_now_ms) { on_flushed(self, io_now_ms); },
  };
}

}  // namespace

mux_actor spawn_mux_actor(caf::actor_system& sys, mux_config config) {
  return sys.spawn(mux_behavior, std::move(config));
}

}  // namespace poolbus
