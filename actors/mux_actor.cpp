#include "actors/mux_actor.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>

#include "actors/error_bridge.hpp"
#include "policy/offer_picker.hpp"

namespace poolbus {
namespace {

struct queued_allocate {
  Resources min;
  int64_t width;
  AllocMeta meta_template;
  caf::typed_response_promise<AllocInspect> promise;
};

// A pushed pool: its newest announcement and its entries in the offers and
// pools replies, each encoded on first use after the announcement last
// changed. A seen batch only moves latest.ts_ms, the status entry's
// last_seen_ms, which is spliced in after the head: the entries stay valid.
struct pushed_pool {
  offer_announcement latest;
  std::optional<std::string> offer_entries;  // latest.offers as the offers array lists them
  std::optional<std::string> status_head;    // the pools entry up to its last_seen_ms
  last_seen_slot seen_slot;                  // its last_seen_ms in mux_state::spliced_pools

  explicit pushed_pool(offer_announcement a) : latest(std::move(a)) {}
  void replace(offer_announcement a) {
    latest = std::move(a);
    offer_entries.reset();
    status_head.reset();
  }
};

// Where an allocs request's answer goes: its entries, or the error it got.
using allocs_answer = std::function<void(outcome<encoded_array>)>;

struct queued_allocs {
  std::string pool;  // "" = every pool
  allocs_answer answer;
  caf::actor_clock::time_point queued;
};

struct mux_state {
  mux_config config;
  std::map<std::string, pool_actor> pools;  // by pool id
  std::map<std::string, offer_cache> caches;  // by pool id, only while caching
  // Pushed pools (add_pool): the newest announcement of each, by pool id.
  std::map<std::string, pushed_pool> pushed;
  // The whole offers and pools arrays of the pushed pools, kept between
  // answers: walking 10,000 map nodes (a cache miss each) costs far more than
  // copying the ~1 MB. Any change of the pushed pools drops them (see
  // pushed_changed); a seen batch patches last_seen_ms in spliced_pools in
  // place while its width stays the same (epoch ms always take 9 bytes).
  std::optional<encoded_array> spliced_offers;
  std::optional<encoded_array> spliced_pools;
  uint64_t membership_generation = 0;         // the latest set_pools wins
  std::deque<queued_allocate> allocates;      // waiting, in arrival order
  bool allocating = false;
  std::deque<queued_allocs> large_allocs;     // large allocs gathers waiting for a slot
  int large_allocs_running = 0;
  std::mt19937_64 seeds;
  static inline const char* name = "mux";
};

using mux_pointer = mux_actor::stateful_pointer<mux_state>;

int64_t now_ms(mux_pointer self) { return self->state.config.clock.now_ms(self->clock()); }

// The deadline the mux itself puts on a request routed to one pool: none when
// the pools keep their own (a CAF request timeout costs a clock-thread wake-up).
caf::duration routed_timeout(mux_pointer self) {
  if (self->state.config.pools_keep_deadlines) return caf::infinite;
  return caf::duration{self->state.config.request_timeout};
}

// What the broker's proxy answers for offers and status, from an announcement.
std::vector<OfferInfo> pushed_offers(const std::string& id, const offer_announcement& a) {
  std::vector<OfferInfo> offers;
  offers.reserve(a.offers.size());
  for (const auto& o : a.offers) offers.push_back(OfferInfo{"1", id, o.available});
  return offers;
}

PoolStatus pushed_status(const std::string& id, const offer_announcement& a) {
  return PoolStatus{id, a.resources, a.available, a.allocs, a.ts_ms};
}

// True when every pool in the mux is a pushed pool (the broker's case:
// pushed ids are always a subset of the membership): offers, pools and status
// are then answered in one pass over the announcements.
bool all_pushed(mux_pointer self) { return self->state.pushed.size() == self->state.pools.size(); }

const offer_announcement* pushed_of(mux_pointer self, const std::string& id) {
  auto it = self->state.pushed.find(id);
  return it == self->state.pushed.end() ? nullptr : &it->second.latest;
}

// The pushed pools, or one's announcement, changed: the whole arrays are
// spliced again at the next answer (from the entries still valid).
void pushed_changed(mux_pointer self) {
  self->state.spliced_offers.reset();
  self->state.spliced_pools.reset();
}

// Every pushed pool's offers as `offers` (below) lists them, from the
// entries it keeps encoded.
const encoded_array& spliced_offers(mux_pointer self) {
  auto& st = self->state;
  if (st.spliced_offers) return *st.spliced_offers;
  encoded_array out;
  for (auto& [id, pool] : st.pushed) {
    if (!pool.offer_entries) {
      std::string entries;
      for (const auto& o : pushed_offers(id, pool.latest))
        append_offer_entry(entries, {make_pool_uri(id, o.id), id, o.available});
      pool.offer_entries = std::move(entries);
    }
    out.bytes += *pool.offer_entries;
    out.count += static_cast<int64_t>(pool.latest.offers.size());
  }
  return *(st.spliced_offers = std::move(out));
}

// Every pushed pool's status as `pools` lists them; last_seen_ms is the
// announcement's current ts_ms.
const encoded_array& spliced_pools(mux_pointer self) {
  auto& st = self->state;
  if (st.spliced_pools) return *st.spliced_pools;
  encoded_array out;
  for (auto& [id, pool] : st.pushed) {
    if (!pool.status_head) pool.status_head = pool_status_head(pushed_status(id, pool.latest));
    pool.seen_slot = append_pool_status_entry(out.bytes, *pool.status_head, pool.latest.ts_ms);
    ++out.count;
  }
  return *(st.spliced_pools = std::move(out));
}

// One concurrent round of requests to every pool. Each pool settles its part
// exactly once (an answer, or nothing on error/deadline); `done` runs when
// the last part is settled, with the parts in pool-id order.
template <class T>
struct gather_round {
  std::vector<std::optional<std::vector<T>>> parts;
  std::size_t pending = 0;
  std::function<void(std::vector<T>)> done;

  void settle(std::size_t i, std::optional<std::vector<T>> part) {
    parts[i] = std::move(part);
    if (--pending > 0) return;
    std::vector<T> all;
    for (auto& p : parts)
      if (p) all.insert(all.end(), std::make_move_iterator(p->begin()), std::make_move_iterator(p->end()));
    done(std::move(all));
  }
};

// ask(i, pool_id, handle, round) must end in round->settle(i, ...) once.
template <class T, class Ask>
void gather(mux_pointer self, Ask ask, std::function<void(std::vector<T>)> done) {
  auto round = std::make_shared<gather_round<T>>();
  round->parts.resize(self->state.pools.size() + 1);
  // One part more than there are pools, settled after the loop: asks that
  // settle synchronously (pushed pools, caches) then never run `done` while
  // the loop still walks the membership, so it needs no copy.
  round->pending = self->state.pools.size() + 1;
  round->done = std::move(done);
  std::size_t i = 0;
  for (const auto& [id, handle] : self->state.pools) ask(i++, id, handle, round);
  round->settle(i, std::nullopt);
}

// Offers of every pool with LOCAL ids and `pool` set to the pool's id. With
// caching, a pool whose cache is still valid is not asked.
void gather_local_offers(mux_pointer self, std::function<void(std::vector<OfferInfo>)> done) {
  gather<OfferInfo>(
      self,
      [self](std::size_t i, const std::string& id, const pool_actor& handle,
             std::shared_ptr<gather_round<OfferInfo>> round) {
        auto& st = self->state;
        if (auto cache = st.caches.find(id); cache != st.caches.end() && !cache->second.needs_refresh(now_ms(self))) {
          round->settle(i, cache->second.offers());
          return;
        }
        if (auto* pushed = pushed_of(self, id)) {
          auto offers = pushed_offers(id, *pushed);
          if (auto cache = st.caches.find(id); cache != st.caches.end())
            offers = cache->second.refresh(std::move(offers), now_ms(self));
          round->settle(i, std::move(offers));
          return;
        }
        self->request(handle, st.config.gather_deadline, offers_atom::value)
            .then(
                [self, i, id, round](std::vector<OfferInfo>& offers) {
                  for (auto& o : offers) o.pool = id;
                  auto& caches = self->state.caches;
                  if (auto cache = caches.find(id); cache != caches.end())
                    offers = cache->second.refresh(std::move(offers), now_ms(self));
                  round->settle(i, std::move(offers));
                },
                [i, id, round](caf::error& err) {
                  spdlog::debug("mux: pool {} left out of offers: {}", id, to_pool_error(err).to_string());
                  round->settle(i, std::nullopt);
                });
      },
      std::move(done));
}

// Settles an accept of `local_offer` on pool `pool_id`, tracking it in the
// pool's offer cache when caching knows the offer.
void accept_on_pool(mux_pointer self, const std::string& pool_id, const std::string& local_offer, AllocMeta meta,
                    std::function<void(outcome<AllocInspect>)> settle) {
  auto& st = self->state;
  auto pool = st.pools.find(pool_id);
  if (pool == st.pools.end()) {
    settle(make_pool_error(error_kind::not_exist, "pool " + pool_id + " is not in the mux"));
    return;
  }
  std::optional<offer_cache::accept_ticket> ticket;
  if (auto cache = st.caches.find(pool_id); cache != st.caches.end() && cache->second.find(local_offer)) {
    auto reserved = cache->second.begin_accept(local_offer, meta.want);
    if (!reserved) {
      settle(reserved.error());  // the tracked offer can't cover it: don't bother the pool
      return;
    }
    ticket = *reserved;
  }
  auto on_result = [self, pool_id, ticket, settle](outcome<AllocInspect> result) {
    if (ticket) {
      auto& caches = self->state.caches;
      if (auto cache = caches.find(pool_id); cache != caches.end()) {
        if (result)
          cache->second.finish_accept(*ticket, *result);
        else
          cache->second.fail_accept(*ticket);
      }
    }
    settle(std::move(result));
  };
  self->request(pool->second, routed_timeout(self), accept_atom::value, local_offer, std::move(meta))
      .then([on_result](AllocInspect& alloc) { on_result(std::move(alloc)); },
            [on_result](caf::error& err) { on_result(to_pool_error(err)); });
}

void run_next_allocate(mux_pointer self);

// Drives one allocate_plan to its end, then starts the next queued allocate.
void advance_allocate(mux_pointer self, std::shared_ptr<allocate_plan> plan,
                      caf::typed_response_promise<AllocInspect> promise, allocate_plan::step step) {
  if (std::holds_alternative<allocate_plan::gather_offers>(step)) {
    gather_local_offers(self, [self, plan, promise](std::vector<OfferInfo> offers) {
      advance_allocate(self, plan, promise, plan->on_offers(std::move(offers)));
    });
  } else if (auto* accept = std::get_if<allocate_plan::accept_offer>(&step)) {
    auto pool_id = accept->offer.pool;
    accept_on_pool(self, pool_id, accept->offer.id, accept->meta,
                   [self, plan, promise, pool_id](outcome<AllocInspect> result) mutable {
                     if (result) {
                       spdlog::debug("mux: allocated {} ({}) after {} tries", result->id,
                                    result->resources.to_string(), plan->tries());
                       promise.deliver(std::move(*result));
                       self->state.allocating = false;
                       run_next_allocate(self);
                       return;
                     }
                     spdlog::debug("mux: allocate: accept on {} failed: {}", pool_id, result.error().to_string());
                     advance_allocate(self, plan, promise, plan->on_accept_failed(result.error()));
                   });
  } else {
    const auto& error = std::get<allocate_plan::give_up>(step).error;
    spdlog::info("mux: allocate {} gave up: {}", plan->min().to_string(), error.to_string());
    promise.deliver(make_error(error));
    self->state.allocating = false;
    run_next_allocate(self);
  }
}

void run_next_allocate(mux_pointer self) {
  auto& st = self->state;
  if (st.allocating || st.allocates.empty()) return;
  auto next = std::move(st.allocates.front());
  st.allocates.pop_front();
  st.allocating = true;
  auto plan = std::make_shared<allocate_plan>(std::move(next.min), next.width, std::move(next.meta_template),
                                              st.seeds());
  advance_allocate(self, plan, next.promise, plan->start());
}

// The error for a URI whose pool is not (or not yet) in the mux.
caf::error unknown_pool(mux_pointer self, const std::string& pool, const std::string& uri) {
  return make_error(self->state.config.unknown_pool, "pool " + pool + " of " + uri + " is not in the mux");
}

// Routes a request named by URI to its pool: `invalid` for a bad URI,
// config.unknown_pool for an unknown pool; `convert` maps the pool's answer.
template <class T, class Answer, class Convert, class... Args>
caf::result<T> route(mux_pointer self, const std::string& uri, Convert convert, Args... args) {
  auto parsed = parse_pool_uri(uri);
  if (!parsed) return make_error(parsed.error());
  auto pool = self->state.pools.find(parsed->pool);
  if (pool == self->state.pools.end())
    return unknown_pool(self, parsed->pool, uri);
  auto promise = self->template make_response_promise<T>();
  auto pool_id = parsed->pool;
  self->request(pool->second, routed_timeout(self), args..., parsed->local)
      .then([promise, convert, pool_id](Answer& answer) mutable { promise.deliver(convert(pool_id, answer)); },
            [promise](caf::error& err) mutable { promise.deliver(make_error(to_pool_error(err))); });
  return promise;
}

// Every pool's status: from its pushed announcement, or asked within the
// gather deadline (a pool that misses it is left out).
void gather_statuses(mux_pointer self, std::function<void(std::vector<PoolStatus>)> done) {
  gather<PoolStatus>(
      self,
      [self](std::size_t i, const std::string& id, const pool_actor& handle,
             std::shared_ptr<gather_round<PoolStatus>> round) {
        if (auto* pushed = pushed_of(self, id)) {
          round->settle(i, std::vector<PoolStatus>{pushed_status(id, *pushed)});
          return;
        }
        self->request(handle, self->state.config.gather_deadline, status_atom::value)
            .then([i, round](PoolStatus& s) { round->settle(i, std::vector<PoolStatus>{s}); },
                  [i, id, round](caf::error& err) {
                    spdlog::debug("mux: pool {} left out of pools: {}", id, to_pool_error(err).to_string());
                    round->settle(i, std::nullopt);
                  });
      },
      std::move(done));
}

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

// The pools an allocs request asks: every pool, or the one named (none when unknown).
std::vector<std::pair<std::string, pool_actor>> allocs_targets(mux_pointer self, const std::string& pool) {
  const auto& pools = self->state.pools;
  if (pool.empty()) return {pools.begin(), pools.end()};
  auto it = pools.find(pool);
  if (it == pools.end()) return {};
  return {*it};
}

// Whether the pools it asks announced large_gather_allocs allocs or more.
bool large_gather(mux_pointer self, const std::string& pool) {
  int64_t announced = 0;
  if (pool.empty()) {
    for (const auto& [_, pushed] : self->state.pushed) announced += pushed.latest.allocs;
  } else if (auto* pushed = pushed_of(self, pool)) {
    announced = pushed->allocs;
  }
  return announced >= self->state.config.large_gather_allocs;
}

void gather_allocs(mux_pointer self, const std::string& pool, std::function<void(encoded_array)> done) {
  auto targets = allocs_targets(self, pool);
  auto round = std::make_shared<allocs_round>();
  round->parts.resize(targets.size());
  round->pending = targets.size();
  round->done = std::move(done);
  if (targets.empty()) {
    round->done(encoded_array{});
    return;
  }
  auto deadline = self->state.config.gather_deadline;
  auto left_out = [](std::size_t i, std::string id, std::shared_ptr<allocs_round> round) {
    return [i, id, round](caf::error& err) {
      spdlog::debug("mux: pool {} left out of allocs: {}", id, to_pool_error(err).to_string());
      round->settle(i, std::nullopt);
    };
  };
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const auto& [id, handle] = targets[i];
    if (self->state.config.relay_allocs && pushed_of(self, id)) {
      self->request(caf::actor_cast<encoded_allocs_actor>(handle), deadline, allocs_atom::value, encoded_atom::value)
          .then([i, round](encoded_array& entries) { round->settle(i, std::move(entries)); },
                left_out(i, id, round));
    } else {
      self->request(handle, deadline, allocs_atom::value)
          .then([i, round](std::vector<AllocInspect>& allocs) { round->settle(i, encode_alloc_entries(allocs)); },
                left_out(i, id, round));
    }
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
  while (st.large_allocs_running < std::max(1, st.config.max_large_gathers) && !st.large_allocs.empty()) {
    auto next = std::move(st.large_allocs.front());
    st.large_allocs.pop_front();
    auto waited = self->clock().now() - next.queued;
    if (waited >= st.config.request_timeout) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(waited).count();
      next.answer(pool_error{error_kind::timeout,
                             "allocs: waited " + std::to_string(ms) + " ms behind other large allocs requests"});
      continue;
    }
    ++st.large_allocs_running;
    run_allocs(self, next.pool, std::move(next.answer), true);
  }
}

// allocs of `pool` ("" = every pool) to `answer`: a small gather at once, a
// large one when a slot is free.
void start_allocs(mux_pointer self, const std::string& pool, allocs_answer answer) {
  if (!large_gather(self, pool)) {
    run_allocs(self, pool, std::move(answer), false);
    return;
  }
  self->state.large_allocs.push_back({pool, std::move(answer), self->clock().now()});
  run_next_large_allocs(self);
}

// An accept's want or an allocate's min that is empty, or rounds to zero in
// every resource (amounts are thousandths of a unit), asks for nothing.
caf::error nothing_asked(const char* what, const Resources& r) {
  return make_error(error_kind::precondition,
                    std::string(what) + " " + r.to_string() +
                        " is empty or rounds to zero in every resource (resources count in thousandths of a unit)");
}

mux_actor::behavior_type mux_behavior(mux_pointer self, mux_config config) {
  self->state.config = std::move(config);
  self->state.seeds.seed(self->state.config.seed);
  return {
      [=](pool_id_atom) { return std::string{}; },
      [=](status_atom) -> caf::result<PoolStatus> {
        if (all_pushed(self)) {
          PoolStatus total;
          for (const auto& [id, pool] : self->state.pushed) {
            const auto& a = pool.latest;
            total.resources = total.resources.add(a.resources);
            total.available = total.available.add(a.available);
            total.allocs += a.allocs;
            total.last_seen_ms = std::max(total.last_seen_ms, a.ts_ms);
          }
          return total;
        }
        auto promise = self->make_response_promise<PoolStatus>();
        gather_statuses(
            self,
            [promise](std::vector<PoolStatus> statuses) mutable {
              PoolStatus total;
              for (const auto& s : statuses) {
                total.resources = total.resources.add(s.resources);
                total.available = total.available.add(s.available);
                total.allocs += s.allocs;
                total.last_seen_ms = std::max(total.last_seen_ms, s.last_seen_ms);
              }
              promise.deliver(std::move(total));
            });
        return promise;
      },
      [=](offers_atom) -> caf::result<std::vector<OfferInfo>> {
        if (all_pushed(self) && !self->state.config.caching) {
          std::vector<OfferInfo> offers;
          offers.reserve(self->state.pushed.size());
          for (const auto& [id, pool] : self->state.pushed)
            for (const auto& o : pool.latest.offers) offers.push_back(OfferInfo{make_pool_uri(id, "1"), id, o.available});
          return offers;
        }
        auto promise = self->make_response_promise<std::vector<OfferInfo>>();
        gather_local_offers(self, [promise](std::vector<OfferInfo> offers) mutable {
          for (auto& o : offers) o.id = make_pool_uri(o.pool, o.id);
          promise.deliver(std::move(offers));
        });
        return promise;
      },
      [=](offers_atom, encoded_atom) -> caf::result<encoded_array> {
        if (all_pushed(self) && !self->state.config.caching) return encoded_array{spliced_offers(self)};
        auto promise = self->make_response_promise<encoded_array>();
        gather_local_offers(self, [promise](std::vector<OfferInfo> offers) mutable {
          for (auto& o : offers) o.id = make_pool_uri(o.pool, o.id);
          promise.deliver(encode_offer_entries(offers));
        });
        return promise;
      },
      [=](pools_atom, encoded_atom) -> caf::result<encoded_array> {
        if (all_pushed(self)) return encoded_array{spliced_pools(self)};
        auto promise = self->make_response_promise<encoded_array>();
        gather_statuses(self, [promise](std::vector<PoolStatus> statuses) mutable {
          promise.deliver(encode_pool_status_entries(statuses));
        });
        return promise;
      },
      [=](offer_atom, const std::string& uri) -> caf::result<OfferInfo> {
        if (auto parsed = parse_pool_uri(uri); parsed && self->state.pools.count(parsed->pool)) {
          if (auto* pushed = pushed_of(self, parsed->pool)) {
            // As the broker's proxy answers: its pool extends at most offer "1".
            if (parsed->local == "1" && !pushed->offers.empty())
              return OfferInfo{make_pool_uri(parsed->pool, "1"), parsed->pool, pushed->offers.front().available};
            return make_error(error_kind::not_exist, "pool " + parsed->pool + " has no offer " + parsed->local);
          }
        }
        return route<OfferInfo, OfferInfo>(
            self, uri,
            [](const std::string& pool_id, OfferInfo& offer) {
              offer.id = make_pool_uri(pool_id, offer.id);
              offer.pool = pool_id;
              return offer;
            },
            offer_atom::value);
      },
      [=](accept_atom, const std::string& uri, AllocMeta meta) -> caf::result<AllocInspect> {
        auto parsed = parse_pool_uri(uri);
        if (!parsed) return make_error(parsed.error());
        if (!self->state.pools.count(parsed->pool))
          return unknown_pool(self, parsed->pool, uri);
        if (meta.want.is_zero()) return nothing_asked("want", meta.want);
        auto promise = self->make_response_promise<AllocInspect>();
        accept_on_pool(self, parsed->pool, parsed->local, std::move(meta),
                       [promise](outcome<AllocInspect> result) mutable {
                         if (result)
                           promise.deliver(std::move(*result));
                         else
                           promise.deliver(make_error(result.error()));
                       });
        return promise;
      },
      [=](allocs_atom) -> caf::result<std::vector<AllocInspect>> {
        auto promise = self->make_response_promise<std::vector<AllocInspect>>();
        start_allocs(self, "", [promise](outcome<encoded_array> entries) mutable {
          auto allocs = entries ? decode_alloc_entries(*entries) : outcome<std::vector<AllocInspect>>(entries.error());
          if (allocs)
            promise.deliver(std::move(*allocs));
          else
            promise.deliver(make_error(allocs.error()));
        });
        return promise;
      },
      [=](allocs_atom, encoded_atom, const std::string& pool) -> caf::result<encoded_array> {
        auto promise = self->make_response_promise<encoded_array>();
        start_allocs(self, pool, [promise](outcome<encoded_array> entries) mutable {
          if (entries)
            promise.deliver(std::move(*entries));
          else
            promise.deliver(make_error(entries.error()));
        });
        return promise;
      },
      [=](inspect_atom, const std::string& uri) -> caf::result<AllocInspect> {
        return route<AllocInspect, AllocInspect>(
            self, uri, [](const std::string&, AllocInspect& alloc) { return alloc; }, inspect_atom::value);
      },
      [=](keepalive_atom, const std::string& uri, int64_t interval_ms) -> caf::result<int64_t> {
        auto parsed = parse_pool_uri(uri);
        if (!parsed) return make_error(parsed.error());
        auto pool = self->state.pools.find(parsed->pool);
        if (pool == self->state.pools.end())
          return unknown_pool(self, parsed->pool, uri);
        auto promise = self->make_response_promise<int64_t>();
        self->request(pool->second, routed_timeout(self), keepalive_atom::value, parsed->local, interval_ms)
            .then([promise](int64_t granted) mutable { promise.deliver(granted); },
                  [promise](caf::error& err) mutable { promise.deliver(make_error(to_pool_error(err))); });
        return promise;
      },
      [=](exec_atom, exec_call call) -> caf::result<exec_answer> {
        auto parsed = parse_pool_uri(call.alloc);
        if (!parsed) return make_error(parsed.error());
        auto pool = self->state.pools.find(parsed->pool);
        if (pool == self->state.pools.end()) return unknown_pool(self, parsed->pool, call.alloc);
        call.alloc = parsed->local;
        auto extra = std::chrono::milliseconds(
            call.op == exec_op::wait ? std::clamp<int64_t>(call.timeout_ms, 0, max_exec_wait_ms) : 0);
        auto timeout = self->state.config.pools_keep_deadlines
                           ? caf::duration{caf::infinite}
                           : caf::duration{self->state.config.request_timeout + extra};
        auto promise = self->make_response_promise<exec_answer>();
        self->request(caf::actor_cast<exec_handler>(pool->second), timeout, exec_atom::value, std::move(call))
            .then([promise](exec_answer& answer) mutable { promise.deliver(std::move(answer)); },
                  [promise](caf::error& err) mutable { promise.deliver(make_error(to_pool_error(err))); });
        return promise;
      },
      [=](free_atom, const std::string& uri) -> caf::result<caf::ok_atom> {
        return route<caf::ok_atom, caf::ok_atom>(
            self, uri,
            [self, uri](const std::string& pool_id, caf::ok_atom ok) {
              // reflow freeTrackingAlloc: the freed resources return to the tracked offer.
              if (auto cache = self->state.caches.find(pool_id); cache != self->state.caches.end())
                cache->second.freed(uri);
              return ok;
            },
            free_atom::value);
      },
      [=](set_pools_atom, const std::vector<pool_actor>& handles) -> caf::result<caf::ok_atom> {
        auto promise = self->make_response_promise<caf::ok_atom>();
        auto generation = ++self->state.membership_generation;
        struct naming_round {
          std::vector<std::optional<std::string>> ids;
          std::size_t pending;
        };
        auto round = std::make_shared<naming_round>(naming_round{{}, handles.size()});
        round->ids.resize(handles.size());
        auto apply = [self, promise, generation, round, handles]() mutable {
          auto& st = self->state;
          if (generation != st.membership_generation) {
            promise.deliver(caf::ok_atom::value);  // a later set_pools superseded this one
            return;
          }
          std::map<std::string, pool_actor> pools;
          for (std::size_t i = 0; i < handles.size(); ++i) {
            if (!round->ids[i]) continue;
            if (!pools.emplace(*round->ids[i], handles[i]).second)
              spdlog::warn("mux: set_pools: pool id {} given twice, keeping the first", *round->ids[i]);
          }
          std::map<std::string, offer_cache> caches;
          if (st.config.caching)
            for (const auto& [id, _] : pools) {
              auto kept = st.caches.find(id);
              bool same_pool = kept != st.caches.end() && st.pools.count(id) && st.pools.at(id) == pools.at(id);
              caches.emplace(id, same_pool ? kept->second : offer_cache(st.config.cache_ttl_ms));
            }
          std::map<std::string, pushed_pool> pushed;
          for (auto& [id, pool] : st.pushed)
            if (auto now = pools.find(id); now != pools.end() && st.pools.count(id) && st.pools.at(id) == now->second)
              pushed.emplace(id, std::move(pool));
          st.pools = std::move(pools);
          st.caches = std::move(caches);
          st.pushed = std::move(pushed);
          pushed_changed(self);
          spdlog::debug("mux: {} pools", st.pools.size());
          promise.deliver(caf::ok_atom::value);
        };
        if (handles.empty()) {
          apply();
          return promise;
        }
        for (std::size_t i = 0; i < handles.size(); ++i) {
          self->request(handles[i], self->state.config.request_timeout, pool_id_atom::value)
              .then(
                  [round, i, apply](std::string& id) mutable {
                    if (!valid_pool_id(id))
                      spdlog::warn("mux: set_pools: pool id \"{}\" is not usable, leaving it out", id);
                    else
                      round->ids[i] = std::move(id);
                    if (--round->pending == 0) apply();
                  },
                  [round, apply](caf::error& err) mutable {
                    spdlog::warn("mux: set_pools: a pool did not tell its id: {}", to_pool_error(err).to_string());
                    if (--round->pending == 0) apply();
                  });
        }
        return promise;
      },
      [=](pools_atom) -> caf::result<std::vector<PoolStatus>> {
        if (all_pushed(self)) {
          std::vector<PoolStatus> statuses;
          statuses.reserve(self->state.pushed.size());
          for (const auto& [id, pool] : self->state.pushed) statuses.push_back(pushed_status(id, pool.latest));
          return statuses;
        }
        auto promise = self->make_response_promise<std::vector<PoolStatus>>();
        gather_statuses(
            self,
            [promise](std::vector<PoolStatus> statuses) mutable { promise.deliver(std::move(statuses)); });
        return promise;
      },
      [=](add_pool_atom, const std::string& id, const pool_actor& handle, offer_announcement& latest) {
        auto& st = self->state;
        if (!valid_pool_id(id) || !handle) {
          spdlog::warn("mux: add_pool: pool id \"{}\" is not usable, leaving it out", id);
          return;
        }
        auto known = st.pools.find(id);
        bool added = known == st.pools.end();
        bool same_pool = !added && known->second == handle;
        st.pools.insert_or_assign(id, handle);
        if (st.config.caching && !same_pool) st.caches.insert_or_assign(id, offer_cache(st.config.cache_ttl_ms));
        st.pushed.insert_or_assign(id, pushed_pool(std::move(latest)));
        pushed_changed(self);
        spdlog::debug("mux: pool {} {}; {} pools", id, added ? "added" : "replaced", st.pools.size());
      },
      [=](rm_pool_atom, const std::string& id) {
        auto& st = self->state;
        if (st.pools.erase(id) == 0) return;
        st.caches.erase(id);
        if (st.pushed.erase(id) > 0) pushed_changed(self);
        spdlog::debug("mux: pool {} removed; {} pools", id, st.pools.size());
      },
      [=](announce_atom, offer_announcement& a) {
        auto it = self->state.pushed.find(a.pool);
        if (it == self->state.pushed.end()) return;
        // A new run restarts seq; within a run, ignore anything older than what we hold.
        if (a.run == it->second.latest.run && a.seq < it->second.latest.seq) return;
        it->second.replace(std::move(a));
        pushed_changed(self);
      },
      [=](seen_atom, const std::vector<pool_seen>& seen) {
        auto& st = self->state;
        for (const auto& s : seen) {
          auto it = st.pushed.find(s.pool);
          if (it == st.pushed.end() || s.ts_ms <= it->second.latest.ts_ms) continue;
          // Only the time moves: the pool's encoded entries and the offers
          // array stay valid, and the pools array takes the new time in place.
          auto& pool = it->second;
          pool.latest.ts_ms = s.ts_ms;
          if (st.spliced_pools && !patch_last_seen(st.spliced_pools->bytes, pool.seen_slot, s.ts_ms))
            st.spliced_pools.reset();
        }
      },
      [=](size_atom) { return static_cast<int>(self->state.pools.size()); },
      [=](caching_atom, bool on) {
        auto& st = self->state;
        st.config.caching = on;
        st.caches.clear();
        if (on)
          for (const auto& [id, _] : st.pools) st.caches.emplace(id, offer_cache(st.config.cache_ttl_ms));
        spdlog::info("mux: caching {}", on ? "on" : "off");
        return caf::ok_atom::value;
      },
      [=](allocate_atom, Resources min, int64_t width, AllocMeta meta_template) -> caf::result<AllocInspect> {
        if (width < 0) return make_error(error_kind::invalid, "allocate: width must be >= 0");
        if (min.is_zero()) return nothing_asked("allocate: min", min);
        auto promise = self->make_response_promise<AllocInspect>();
        self->state.allocates.push_back({std::move(min), width, std::move(meta_template), promise});
        run_next_allocate(self);
        return promise;
      },
  };
}

}  // namespace

mux_actor spawn_mux_actor(caf::actor_system& sys, mux_config config) {
  return sys.spawn(mux_behavior, std::move(config));
}

}  // namespace poolbus
