#include "actors/reflow_mux_actor.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "actors/error_bridge.hpp"
#include "policy/allocate_queue.hpp"

namespace poolbus {
namespace {

struct reflow_mux_state {
  reflow_mux_config config;
  std::map<std::string, pool_actor> pools;    // by pool id
  std::map<std::string, offer_cache> caches;  // by pool id, only while caching
  uint64_t membership_generation = 0;         // the latest set_pools wins
  std::unique_ptr<allocate_queue> allocates;
  static inline const char* name = "reflow_mux";
};

using mux_pointer = reflow_mux_actor::stateful_pointer<reflow_mux_state>;

int64_t now_ms(mux_pointer self) { return self->state.config.clock.now_ms(self->clock()); }

caf::duration routed_timeout(mux_pointer self) { return caf::duration{self->state.config.request_timeout}; }

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

// Asks every pool `Request` within the gather deadline; `convert(id, answer)`
// makes its part. One part more than there are pools, settled after the
// loop: parts settled synchronously (caches) then never run `done` while the
// loop still walks the membership.
template <class T, class Answer, class Convert, class Request>
void gather(mux_pointer self, Request request, Convert convert, std::function<void(std::vector<T>)> done,
            std::function<std::optional<std::vector<T>>(const std::string&)> from_memory = {}) {
  auto round = std::make_shared<gather_round<T>>();
  round->parts.resize(self->state.pools.size() + 1);
  round->pending = self->state.pools.size() + 1;
  round->done = std::move(done);
  std::size_t i = 0;
  for (const auto& [id, handle] : self->state.pools) {
    auto part = i++;
    if (from_memory)
      if (auto known = from_memory(id)) {
        round->settle(part, std::move(known));
        continue;
      }
    self->request(handle, self->state.config.gather_deadline, request)
        .then([round, part, id = id, convert](Answer& answer) { round->settle(part, convert(id, answer)); },
              [round, part, id = id](caf::error& err) {
                spdlog::debug("reflow mux: pool {} left out: {}", id, to_pool_error(err).to_string());
                round->settle(part, std::nullopt);
              });
  }
  round->settle(i, std::nullopt);
}

// Offers of every pool with LOCAL ids and `pool` set. With caching, a pool
// whose cache is still valid is not asked.
void gather_local_offers(mux_pointer self, std::function<void(std::vector<OfferInfo>)> done) {
  gather<OfferInfo, std::vector<OfferInfo>>(
      self, offers_atom::value,
      [self](const std::string& id, std::vector<OfferInfo>& offers) {
        for (auto& o : offers) o.pool = id;
        auto& caches = self->state.caches;
        if (auto cache = caches.find(id); cache != caches.end())
          offers = cache->second.refresh(std::move(offers), now_ms(self));
        return std::optional<std::vector<OfferInfo>>(std::move(offers));
      },
      std::move(done),
      [self](const std::string& id) -> std::optional<std::vector<OfferInfo>> {
        auto& caches = self->state.caches;
        auto cache = caches.find(id);
        if (cache == caches.end() || cache->second.needs_refresh(now_ms(self))) return std::nullopt;
        return cache->second.offers();
      });
}

void gather_statuses(mux_pointer self, std::function<void(std::vector<PoolStatus>)> done) {
  gather<PoolStatus, PoolStatus>(
      self, status_atom::value,
      [](const std::string&, PoolStatus& s) { return std::optional<std::vector<PoolStatus>>({s}); }, std::move(done));
}

// reflow's Mux: a URI naming a pool it does not hold is not_exist.
caf::error unknown_pool(const std::string& pool, const std::string& uri) {
  return make_error(error_kind::not_exist, "pool " + pool + " of " + uri + " is not in the mux");
}

// Accepts `local_offer` on pool `pool_id`, tracking it in the pool's offer
// cache when caching knows the offer (reflow CachingPool).
void accept_on_pool(mux_pointer self, const std::string& pool_id, const std::string& local_offer, AllocMeta meta,
                    allocate_queue::accept_answer settle) {
  auto& st = self->state;
  auto pool = st.pools.find(pool_id);
  if (pool == st.pools.end())
    return settle(make_pool_error(error_kind::not_exist, "pool " + pool_id + " is not in the mux"));
  std::optional<offer_cache::accept_ticket> ticket;
  if (auto cache = st.caches.find(pool_id); cache != st.caches.end() && cache->second.find(local_offer)) {
    auto reserved = cache->second.begin_accept(local_offer, meta.want);
    if (!reserved) return settle(reserved.error());  // the tracked offer can't cover it: don't bother the pool
    ticket = *reserved;
  }
  auto on_result = [self, pool_id, ticket, settle](outcome<AllocInspect> result) {
    auto& caches = self->state.caches;
    if (auto cache = caches.find(pool_id); ticket && cache != caches.end()) {
      if (result)
        cache->second.finish_accept(*ticket, *result);
      else
        cache->second.fail_accept(*ticket);
    }
    settle(std::move(result));
  };
  self->request(pool->second, routed_timeout(self), accept_atom::value, local_offer, std::move(meta))
      .then([on_result](AllocInspect& alloc) { on_result(std::move(alloc)); },
            [on_result](caf::error& err) { on_result(to_pool_error(err)); });
}

// Routes a request named by URI to its pool: `invalid` for a bad URI,
// `not_exist` for an unknown pool; `convert` maps the pool's answer.
template <class T, class Answer, class Convert, class... Args>
caf::result<T> route(mux_pointer self, const std::string& uri, Convert convert, Args... args) {
  auto parsed = parse_pool_uri(uri);
  if (!parsed) return make_error(parsed.error());
  auto pool = self->state.pools.find(parsed->pool);
  if (pool == self->state.pools.end()) return unknown_pool(parsed->pool, uri);
  auto promise = self->template make_response_promise<T>();
  auto pool_id = parsed->pool;
  self->request(pool->second, routed_timeout(self), args..., parsed->local)
      .then([promise, convert, pool_id](Answer& answer) mutable { promise.deliver(convert(pool_id, answer)); },
            [promise](caf::error& err) mutable { promise.deliver(make_error(to_pool_error(err))); });
  return promise;
}

caf::result<int64_t> keepalive(mux_pointer self, const std::string& uri, int64_t interval_ms) {
  auto parsed = parse_pool_uri(uri);
  if (!parsed) return make_error(parsed.error());
  auto pool = self->state.pools.find(parsed->pool);
  if (pool == self->state.pools.end()) return unknown_pool(parsed->pool, uri);
  auto promise = self->make_response_promise<int64_t>();
  self->request(pool->second, routed_timeout(self), keepalive_atom::value, parsed->local, interval_ms)
      .then([promise](int64_t granted) mutable { promise.deliver(granted); },
            [promise](caf::error& err) mutable { promise.deliver(make_error(to_pool_error(err))); });
  return promise;
}

PoolStatus sum_of(const std::vector<PoolStatus>& statuses) {
  PoolStatus total;
  for (const auto& s : statuses) {
    total.resources = total.resources.add(s.resources);
    total.available = total.available.add(s.available);
    total.allocs += s.allocs;
    total.last_seen_ms = std::max(total.last_seen_ms, s.last_seen_ms);
  }
  return total;
}

// The new membership from the ids the handles told: caches kept for a pool
// whose handle is unchanged, fresh ones for new pools.
void apply_membership(mux_pointer self, const std::vector<pool_actor>& handles,
                      const std::vector<std::optional<std::string>>& ids) {
  auto& st = self->state;
  std::map<std::string, pool_actor> pools;
  for (std::size_t i = 0; i < handles.size(); ++i)
    if (ids[i] && !pools.emplace(*ids[i], handles[i]).second)
      spdlog::warn("reflow mux: set_pools: pool id {} given twice, keeping the first", *ids[i]);
  std::map<std::string, offer_cache> caches;
  if (st.config.caching)
    for (const auto& [id, handle] : pools) {
      auto kept = st.caches.find(id);
      bool same_pool = kept != st.caches.end() && st.pools.count(id) && st.pools.at(id) == handle;
      caches.emplace(id, same_pool ? kept->second : offer_cache(st.config.cache_ttl_ms));
    }
  st.pools = std::move(pools);
  st.caches = std::move(caches);
  spdlog::debug("reflow mux: {} pools", st.pools.size());
}

caf::result<caf::ok_atom> set_pools(mux_pointer self, const std::vector<pool_actor>& handles) {
  auto promise = self->make_response_promise<caf::ok_atom>();
  auto generation = ++self->state.membership_generation;
  struct naming_round {
    std::vector<std::optional<std::string>> ids;
    std::size_t pending;
  };
  auto round = std::make_shared<naming_round>(
      naming_round{std::vector<std::optional<std::string>>(handles.size()), handles.size() + 1});
  auto named = [self, promise, generation, round, handles]() mutable {
    if (--round->pending > 0) return;
    if (generation == self->state.membership_generation) apply_membership(self, handles, round->ids);
    promise.deliver(caf::ok_atom::value);  // also when a later set_pools superseded this one
  };
  for (std::size_t i = 0; i < handles.size(); ++i)
    self->request(handles[i], self->state.config.request_timeout, pool_id_atom::value)
        .then(
            [round, i, named](std::string& id) mutable {
              if (valid_pool_id(id))
                round->ids[i] = std::move(id);
              else
                spdlog::warn("reflow mux: set_pools: pool id \"{}\" is not usable, leaving it out", id);
              named();
            },
            [named](caf::error& err) mutable {
              spdlog::warn("reflow mux: set_pools: a pool did not tell its id: {}", to_pool_error(err).to_string());
              named();
            });
  named();  // the extra count: membership applies after the loop, even with no handles
  return promise;
}

caf::result<caf::ok_atom> set_caching(mux_pointer self, bool on) {
  auto& st = self->state;
  st.config.caching = on;
  st.caches.clear();
  if (on)
    for (const auto& [id, _] : st.pools) st.caches.emplace(id, offer_cache(st.config.cache_ttl_ms));
  spdlog::info("reflow mux: caching {}", on ? "on" : "off");
  return caf::ok_atom::value;
}

std::unique_ptr<allocate_queue> make_allocate_queue(mux_pointer self) {
  allocate_queue::hooks io;
  io.gather_offers = [self](const placement&, std::function<void(std::vector<OfferInfo>)> done) {
    gather_local_offers(self, std::move(done));  // reflow's Mux knows no labels
  };
  io.accept = [self](const OfferInfo& offer, AllocMeta meta, allocate_queue::accept_answer done) {
    accept_on_pool(self, offer.pool, offer.id, std::move(meta), std::move(done));
  };
  return std::make_unique<allocate_queue>(std::move(io), self->state.config.seed);
}

OfferInfo named_by_uri(const std::string& pool_id, OfferInfo offer) {
  offer.id = make_pool_uri(pool_id, offer.id);
  offer.pool = pool_id;
  return offer;
}

caf::result<std::vector<OfferInfo>> all_offers(mux_pointer self) {
  auto promise = self->make_response_promise<std::vector<OfferInfo>>();
  gather_local_offers(self, [promise](std::vector<OfferInfo> offers) mutable {
    for (auto& o : offers) o.id = make_pool_uri(o.pool, o.id);
    promise.deliver(std::move(offers));
  });
  return promise;
}

caf::result<AllocInspect> accept(mux_pointer self, const std::string& uri, AllocMeta meta) {
  auto parsed = parse_pool_uri(uri);
  if (!parsed) return make_error(parsed.error());
  if (!self->state.pools.count(parsed->pool)) return unknown_pool(parsed->pool, uri);
  if (meta.want.is_zero()) return make_error(nothing_asked("want", meta.want));
  auto promise = self->make_response_promise<AllocInspect>();
  accept_on_pool(self, parsed->pool, parsed->local, std::move(meta),
                 [promise](outcome<AllocInspect> result) mutable { deliver(promise, std::move(result)); });
  return promise;
}

caf::result<AllocInspect> allocate(mux_pointer self, Resources min, int64_t width, AllocMeta meta_template) {
  placement want;
  want.min = std::move(min);
  want.width = width;
  if (auto refused = placement_refusal(want)) return make_error(*refused);
  auto promise = self->make_response_promise<AllocInspect>();
  self->state.allocates->push(std::move(want), std::move(meta_template),
                              [promise](outcome<std::vector<AllocInspect>> result) mutable {
                                if (result)
                                  promise.deliver(std::move(result->front()));
                                else
                                  promise.deliver(make_error(result.error()));
                              });
  return promise;
}

template <class T>
caf::result<T> gathered(mux_pointer self, void (*gather_fn)(mux_pointer, std::function<void(T)>)) {
  auto promise = self->make_response_promise<T>();
  gather_fn(self, [promise](T value) mutable { promise.deliver(std::move(value)); });
  return promise;
}

void gather_allocs(mux_pointer self, std::function<void(std::vector<AllocInspect>)> done) {
  gather<AllocInspect, std::vector<AllocInspect>>(
      self, allocs_atom::value,
      [](const std::string&, std::vector<AllocInspect>& allocs) { return std::optional(std::move(allocs)); },
      std::move(done));
}

void gather_status_sum(mux_pointer self, std::function<void(PoolStatus)> done) {
  gather_statuses(self, [done](std::vector<PoolStatus> statuses) { done(sum_of(statuses)); });
}

reflow_mux_actor::behavior_type reflow_mux_behavior(mux_pointer self, reflow_mux_config config) {
  self->state.config = std::move(config);
  self->state.allocates = make_allocate_queue(self);
  auto same = [](const std::string&, auto& answer) { return answer; };
  return {
      [=](pool_id_atom) { return std::string{}; },
      [=](status_atom) { return gathered<PoolStatus>(self, gather_status_sum); },
      [=](pools_atom) { return gathered<std::vector<PoolStatus>>(self, gather_statuses); },
      [=](offers_atom) { return all_offers(self); },
      [=](allocs_atom) { return gathered<std::vector<AllocInspect>>(self, gather_allocs); },
      [=](offer_atom, const std::string& uri) {
        return route<OfferInfo, OfferInfo>(
            self, uri, [](const std::string& pool, OfferInfo& o) { return named_by_uri(pool, o); }, offer_atom::value);
      },
      [=](accept_atom, const std::string& uri, AllocMeta meta) { return accept(self, uri, std::move(meta)); },
      [=](inspect_atom, const std::string& uri) {
        return route<AllocInspect, AllocInspect>(self, uri, same, inspect_atom::value);
      },
      [=](keepalive_atom, const std::string& uri, int64_t interval_ms) { return keepalive(self, uri, interval_ms); },
      [=](free_atom, const std::string& uri) {
        return route<caf::ok_atom, caf::ok_atom>(
            self, uri,
            [self, uri](const std::string& pool, caf::ok_atom ok) {
              // reflow freeTrackingAlloc: the freed resources return to the tracked offer.
              if (auto cache = self->state.caches.find(pool); cache != self->state.caches.end())
                cache->second.freed(uri);
              return ok;
            },
            free_atom::value);
      },
      [=](set_pools_atom, const std::vector<pool_actor>& handles) { return set_pools(self, handles); },
      [=](size_atom) { return static_cast<int>(self->state.pools.size()); },
      [=](caching_atom, bool on) { return set_caching(self, on); },
      [=](allocate_atom, Resources min, int64_t width, AllocMeta meta_template) {
        return allocate(self, std::move(min), width, std::move(meta_template));
      },
  };
}

}  // namespace

reflow_mux_actor spawn_reflow_mux_actor(caf::actor_system& sys, reflow_mux_config config) {
  return sys.spawn(reflow_mux_behavior, std::move(config));
}

}  // namespace poolbus
