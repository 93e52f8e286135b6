#include "actors/mux_actor.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "actors/error_bridge.hpp"
#include "actors/proxy_actor.hpp"
#include "policy/allocate_queue.hpp"
#include "policy/demand_queue.hpp"
#include "policy/heartbeat_pace.hpp"
#include "policy/offer_picker.hpp"
#include "policy/pool_directory.hpp"
#include "policy/quota_ledger.hpp"

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
  std::unique_ptr<heartbeat_pace> pace;
  std::map<std::string, proxy_actor> proxies;  // one per joined pool, by pool id
  std::unique_ptr<allocate_queue> allocates;
  std::unique_ptr<quota_ledger> quotas;
  // Requests waiting for capacity, and what changed since they were last
  // tried: the pools whose offer changed (each queued request is checked
  // against those only), or everything (a quota freed, a request queued).
  demand_queue demand;
  std::set<std::string> changed_pools;
  bool changed_all = false;
  uint64_t capacity_version = 1;  // moves with every capacity change
  bool placing_queued = false;    // a queued request is being placed
  std::optional<int64_t> expiry_armed_ms;
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

// Tells `pool` the broker's pace. Fire and forget: rid 0 is never pending in
// its proxy, so the worker's reply is dropped there.
void send_pace(mux_pointer self, const std::string& pool) {
  worker_request pace;
  pace.op = worker_op::pace;
  pace.heartbeat_ms = self->state.pace->interval_ms();
  self->state.config.sink->post({channel::workers, {pool, encode_worker_request(pace)}});
}

// The joined pools changed in number: when the pace moves with them, every
// pool hears it, and so does the I/O thread; a pool that just joined hears it
// anyway (a broker before this one may have paced it otherwise).
void repace(mux_pointer self, const std::string& joined_pool) {
  auto& st = self->state;
  if (!st.pace->on_pool_count(st.directory->joined_count())) {
    if (!joined_pool.empty()) send_pace(self, joined_pool);
    return;
  }
  auto ms = st.pace->interval_ms();
  spdlog::info("{} pools: asking each to heartbeat {}", st.directory->joined_count(),
               ms == 0 ? std::string("at its own pace") : "every " + std::to_string(ms) + " ms");
  st.directory->on_paced(ms);
  if (st.config.paced) st.config.paced(ms);
  for (const auto& [pool, _] : st.proxies) send_pace(self, pool);
}

void on_joined(mux_pointer self, const std::string& pool) {
  auto& st = self->state;
  auto proxy = spawn_proxy_actor(self->system(),
                                 proxy_config{pool, st.config.sink, st.config.request_timeout_ms, st.config.clock});
  self->link_to(proxy);  // proxies end with the mux (a proxy's own normal exit does not end the mux)
  st.proxies.emplace(pool, std::move(proxy));
  spdlog::info("pool {} joined", pool);
  publish_pool_event(self, pool, pool_event_kind::joined);
  repace(self, pool);
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
  repace(self, "");
}

void drive_queue(mux_pointer self);

// Something that may let a queued request fit: `pool`'s offer changed ("" = anything).
void on_capacity(mux_pointer self, const std::string& pool) {
  auto& st = self->state;
  if (st.demand.empty()) return;
  ++st.capacity_version;
  if (pool.empty())
    st.changed_all = true;
  else
    st.changed_pools.insert(pool);
  drive_queue(self);
}

// A joined pool's drain flipped (acknowledged, or first seen in an announcement).
void publish_drain(mux_pointer self, const std::string& pool, bool draining) {
  spdlog::info("pool {} {}", pool, draining ? "is draining" : "is no longer draining");
  publish_pool_event(self, pool, draining ? pool_event_kind::draining : pool_event_kind::undrained);
}

void on_announcement(mux_pointer self, offer_announcement& a) {
  auto pool = a.pool;
  bool draining = a.draining;
  auto effect = self->state.directory->on_announcement(std::move(a));
  if (effect.joined) on_joined(self, pool);
  if (effect.drain_changed && self->state.directory->joined(pool)) publish_drain(self, pool, draining);
  if (effect.superseded) on_capacity(self, pool);
}

void on_hello(mux_pointer self, const std::string& identity) {
  if (!self->state.directory->on_hello(identity)) return;
  on_joined(self, identity);
  on_capacity(self, identity);
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

void accept_quoted(mux_pointer self, const std::string& pool, const std::string& local, AllocMeta meta,
                   std::function<void(outcome<AllocInspect>)> done);

caf::result<OfferInfo> offer(mux_pointer self, const std::string& uri) {
  auto target = proxy_for(self, uri);
  if (!target) return make_error(target.error());
  auto pool = parse_pool_uri(uri)->pool;
  const auto& latest = self->state.directory->joined(pool)->latest;
  if (latest.draining) return make_error(error_kind::unavailable, "pool " + pool + " is draining");
  const auto& offers = latest.offers;
  // A pool extends at most one offer, local id "1" (protocol.md).
  if (target->second != "1" || offers.empty())
    return make_error(error_kind::not_exist, "pool " + pool + " has no offer " + target->second);
  return OfferInfo{make_pool_uri(pool, "1"), pool, offers.front().available};
}

caf::result<AllocInspect> accept(mux_pointer self, const std::string& uri, AllocMeta& meta) {
  auto target = proxy_for(self, uri);
  if (!target) return make_error(target.error());
  if (meta.want.is_zero()) return make_error(nothing_asked("want", meta.want));
  auto pool = parse_pool_uri(uri)->pool;
  if (self->state.directory->joined(pool)->latest.draining)
    return make_error(error_kind::unavailable, "pool " + pool + " is draining");
  if (!self->state.quotas->enabled())
    return self->delegate(target->first, accept_atom::value, target->second, std::move(meta));
  auto promise = self->make_response_promise<AllocInspect>();
  accept_quoted(self, pool, target->second, std::move(meta),
                [promise](outcome<AllocInspect> result) mutable { deliver(promise, std::move(result)); });
  return promise;
}

// The worker keeps the drain (its state store); the directory holds it at
// once, so `pools` and `offers` agree with the reply.
caf::result<PoolStatus> drain(mux_pointer self, const std::string& pool, bool on) {
  auto proxy = self->state.proxies.find(pool);
  if (proxy == self->state.proxies.end())
    return make_error(error_kind::not_exist, "drain: no pool " + pool + " is connected");
  auto promise = self->make_response_promise<PoolStatus>();
  self->request(proxy->second, caf::infinite, drain_atom::value, on)
      .then(
          [self, pool, on, promise](caf::ok_atom) mutable {
            if (self->state.directory->on_drained(pool, on)) {
              publish_drain(self, pool, on);
              if (!on) on_capacity(self, pool);
            }
            auto status = self->state.directory->status(pool);
            if (status)
              promise.deliver(std::move(*status));
            else
              promise.deliver(make_error(error_kind::unavailable, "pool " + pool + " left"));
          },
          [promise](caf::error& err) mutable { promise.deliver(std::move(err)); });
  return promise;
}

caf::result<exec_answer> exec(mux_pointer self, exec_call& call) {
  auto target = proxy_for(self, call.alloc);
  if (!target) return make_error(target.error());
  call.alloc = target->second;
  return self->delegate(target->first, exec_atom::value, std::move(call));
}

// ---------------------------------------------------------------- quotas

// Sends an accept to the joined pool's proxy and answers `done` once. With
// quotas on, the owner's quota is reserved first (an accept that would
// exceed it is refused here) and settled with the worker's answer.
void accept_quoted(mux_pointer self, const std::string& pool, const std::string& local, AllocMeta meta,
                   std::function<void(outcome<AllocInspect>)> done) {
  auto& st = self->state;
  auto proxy = st.proxies.find(pool);
  if (proxy == st.proxies.end())
    return done(pool_error{error_kind::not_exist, "pool " + pool + " left"});  // the next candidate is tried
  auto reservation = st.quotas->reserve(meta.owner, meta.want, now_ms(self));
  if (!reservation) {
    auto owner = meta.owner.empty() ? std::string("\"\"") : meta.owner;
    return done(pool_error{error_kind::precondition, "quota: " + meta.want.to_string() +
                                                         " more would exceed the quota of " + owner + " " +
                                                         st.quotas->quota_of(meta.owner)->to_string()});
  }
  self->request(proxy->second, caf::infinite, accept_atom::value, local, std::move(meta))
      .then(
          [self, done, id = *reservation](AllocInspect& alloc) {
            self->state.quotas->settle(id, &alloc);
            done(std::move(alloc));
          },
          [self, done, id = *reservation](caf::error& err) {
            self->state.quotas->settle(id, nullptr);
            done(to_pool_error(err));
          });
}

caf::result<int64_t> keepalive(mux_pointer self, const std::string& uri, int64_t interval_ms) {
  if (!self->state.quotas->enabled()) return delegate_to_pool<int64_t>(self, uri, keepalive_atom::value, interval_ms);
  auto target = proxy_for(self, uri);
  if (!target) return make_error(target.error());
  auto promise = self->make_response_promise<int64_t>();
  self->request(target->first, caf::infinite, keepalive_atom::value, target->second, interval_ms)
      .then(
          [self, uri, promise](int64_t granted) mutable {
            self->state.quotas->on_keepalive(uri, now_ms(self) + granted);
            promise.deliver(granted);
          },
          [promise](caf::error& err) mutable { promise.deliver(std::move(err)); });
  return promise;
}

// Frees `uri` on its pool's proxy (its pool joined: checked by the caller)
// and tells the quota ledger; `done` gets what the worker answered.
void free_on_pool(mux_pointer self, const proxy_actor& proxy, const std::string& local, const std::string& uri,
                  std::function<void(outcome<caf::ok_atom>)> done) {
  self->request(proxy, caf::infinite, free_atom::value, local)
      .then(
          [self, uri, done](caf::ok_atom ok) {
            self->state.quotas->on_freed(uri);
            done(ok);
          },
          [done](caf::error& err) { done(to_pool_error(err)); });
}

caf::result<caf::ok_atom> free_alloc(mux_pointer self, const std::string& uri) {
  if (!self->state.quotas->enabled()) return delegate_to_pool<caf::ok_atom>(self, uri, free_atom::value);
  auto target = proxy_for(self, uri);
  if (!target) return make_error(target.error());
  auto promise = self->make_response_promise<caf::ok_atom>();
  free_on_pool(self, target->first, target->second, uri, [self, promise](outcome<caf::ok_atom> freed) mutable {
    if (freed) on_capacity(self, "");  // the owner's quota has room again, wherever it fits
    deliver(promise, std::move(freed));
  });
  return promise;
}

// ---------------------------------------------------------------- allocate

std::unique_ptr<allocate_queue> make_allocate_queue(mux_pointer self) {
  allocate_queue::hooks io;
  io.gather_offers = [self](const placement& want, std::function<void(std::vector<OfferInfo>)> done) {
    done(self->state.directory->local_offers(want.constraints));
  };
  io.accept = [self](const OfferInfo& offer, AllocMeta meta, allocate_queue::accept_answer done) {
    accept_quoted(self, offer.pool, offer.id, std::move(meta), std::move(done));
  };
  io.release = [self](const AllocInspect& alloc, std::function<void()> done) {
    auto target = proxy_for(self, alloc.id);
    if (!target) return done();  // its pool left: the alloc went with it
    free_on_pool(self, target->first, target->second, alloc.id, [uri = alloc.id, done](outcome<caf::ok_atom> freed) {
      if (!freed)
        spdlog::warn("allocate: could not free {} of a gang that gave up: {}", uri, freed.error().to_string());
      done();
    });
  };
  return std::make_unique<allocate_queue>(std::move(io), self->state.config.seed);
}

void publish_demand(mux_pointer self, demand_event_kind kind, const queue_entry& entry,
                    const std::vector<AllocInspect>& allocs = {}) {
  demand_event event{kind, entry, {}, now_ms(self)};
  for (const auto& a : allocs) event.allocs.push_back(a.id);
  self->state.config.sink->post({channel::stream, {std::string(demand_topic), encode_demand_event(event)}});
}

void arm_expiry(mux_pointer self) {
  auto& st = self->state;
  auto next = st.demand.next_deadline_ms();
  if (!next || (st.expiry_armed_ms && *st.expiry_armed_ms <= *next)) return;
  st.expiry_armed_ms = next;
  self->delayed_send(self, std::chrono::milliseconds(std::max<int64_t>(*next - now_ms(self), 0)), expire_atom::value);
}

// A request that could not be placed at once and may wait: to the queue.
void enqueue(mux_pointer self, placement want, AllocMeta meta, demand_queue::answer done) {
  auto& st = self->state;
  const auto& entry = st.demand.push(std::move(want), std::move(meta), std::move(done), now_ms(self));
  spdlog::debug("allocate {} queued (priority {}, {} waiting)", entry.id, entry.priority, st.demand.size());
  publish_demand(self, demand_event_kind::queued, entry);
  arm_expiry(self);
}

void on_expire(mux_pointer self) {
  auto& st = self->state;
  st.expiry_armed_ms.reset();
  auto now = now_ms(self);
  for (auto& r : st.demand.take_expired(now)) {
    publish_demand(self, demand_event_kind::expired, r.entry);
    r.done(pool_error{error_kind::unavailable, "allocate: nothing fit " + r.want.min.to_string() + " x" +
                                                   std::to_string(r.want.count) + " within its wait of " +
                                                   std::to_string(now - r.entry.queued_ms) + " ms"});
  }
  arm_expiry(self);
}

// Whether a queued request may fit now, judged on what changed since it
// last failed: only the changed pools for a single alloc; the whole
// directory for a gang or after a change of everything.
bool may_fit_now(mux_pointer self, const demand_queue::request& r) {
  auto& st = self->state;
  if (r.failed_at_version == st.capacity_version) return false;
  if (!st.quotas->has_room(r.meta.owner, r.want.min, r.want.count, now_ms(self))) return false;
  const auto& want = r.want;
  if (st.changed_all || want.count > 1)
    return gang_could_fit(st.directory->local_offers(want.constraints), want.min, want.count, want.spread);
  for (const auto& pool : st.changed_pools) {
    auto offer = st.directory->local_offer(pool, want.constraints);
    if (offer && copies_that_fit(offer->available, want.min) >= 1) return true;
  }
  return false;
}

// Places the first queued request that may fit now, one at a time; when
// none may, what changed has been judged and is forgotten.
void drive_queue(mux_pointer self) {
  auto& st = self->state;
  if (st.placing_queued) return;
  auto next = st.demand.take_first([self](const demand_queue::request& r) { return may_fit_now(self, r); });
  if (!next) {
    st.changed_pools.clear();
    st.changed_all = false;
    return;
  }
  st.placing_queued = true;
  auto held = std::make_shared<demand_queue::request>(std::move(*next));
  st.allocates->push(held->want, held->meta, [self, held](outcome<std::vector<AllocInspect>> result) {
    auto& st = self->state;
    st.placing_queued = false;
    if (result) {
      // What the directory holds of the pools it used is stale until they re-announce.
      for (const auto& alloc : *result) st.changed_pools.erase(alloc.pool);
      spdlog::debug("allocate {} placed after {} ms", held->entry.id, now_ms(self) - held->entry.queued_ms);
      publish_demand(self, demand_event_kind::placed, held->entry, *result);
      held->done(std::move(result));
    } else {
      held->failed_at_version = st.capacity_version;
      st.demand.put_back(std::move(*held));
    }
    drive_queue(self);
  });
}

// Why an allocate whose first try failed with `error` answers now rather
// than waiting: it may not wait, or waiting cannot help.
bool answers_at_once(const placement& want, const pool_error& error) {
  return want.wait_ms == 0 || error.kind != error_kind::unavailable;
}

caf::result<std::vector<AllocInspect>> allocate(mux_pointer self, placement& want, AllocMeta& meta) {
  if (auto refused = placement_refusal(want)) return make_error(*refused);
  if (auto never = self->state.quotas->never_fits(meta.owner, want.min, want.count)) return make_error(*never);
  auto promise = self->make_response_promise<std::vector<AllocInspect>>();
  demand_queue::answer answer = [promise](outcome<std::vector<AllocInspect>> result) mutable {
    deliver(promise, std::move(result));
  };
  self->state.allocates->push(want, meta, [self, want, meta, answer](outcome<std::vector<AllocInspect>> result) {
    if (result || answers_at_once(want, result.error())) return answer(std::move(result));
    enqueue(self, want, meta, answer);
  });
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
  st.pace = std::make_unique<heartbeat_pace>(st.config.max_heartbeats_per_second);
  st.allocates = make_allocate_queue(self);
  st.quotas = std::make_unique<quota_ledger>(st.config.quotas);
  return {
      [=](offers_atom, encoded_atom) { return self->state.directory->offer_entries(); },
      [=](pools_atom, encoded_atom) { return self->state.directory->status_entries(); },
      [=](offer_atom, const std::string& uri) { return offer(self, uri); },
      [=](accept_atom, const std::string& uri, AllocMeta& meta) { return accept(self, uri, meta); },
      [=](allocate_atom, placement& want, AllocMeta& meta) { return allocate(self, want, meta); },
      [=](queue_atom) { return self->state.demand.entries(); },
      [=](quotas_atom) { return self->state.quotas->usage(now_ms(self)); },
      [=](drain_atom, const std::string& pool, bool on) { return drain(self, pool, on); },
      [=](allocs_atom, encoded_atom, const std::string& pool) { return allocs(self, pool); },
      [=](inspect_atom, const std::string& uri) {
        return delegate_to_pool<AllocInspect>(self, uri, inspect_atom::value);
      },
      [=](keepalive_atom, const std::string& uri, int64_t interval_ms) { return keepalive(self, uri, interval_ms); },
      [=](free_atom, const std::string& uri) { return free_alloc(self, uri); },
      [=](exec_atom, exec_call& call) { return exec(self, call); },
      [=](announce_atom, offer_announcement& a) { on_announcement(self, a); },
      [=](announce_atom, const pool_event& event) { on_stopped(self, event); },
      [=](hello_atom, const std::string& identity, const worker_hello&) { on_hello(self, identity); },
      [=](wreply_atom, const std::string& identity, worker_reply& reply) { on_reply(self, identity, reply); },
      [=](seen_atom, const std::vector<pool_seen>& announced, const std::vector<pool_seen>& hellos) {
        on_seen(self, announced, hellos);
      },
      [=](sweep_atom, int64_t io_now_ms) { on_flushed(self, io_now_ms); },
      [=](expire_atom) { on_expire(self); },
  };
}

}  // namespace

mux_actor spawn_mux_actor(caf::actor_system& sys, mux_config config) {
  return sys.spawn(mux_behavior, std::move(config));
}

}  // namespace poolbus
