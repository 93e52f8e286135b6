#include "actors/proxy_actor.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>

#include "actors/error_bridge.hpp"

namespace poolbus {
namespace {

struct pending_request {
  int64_t deadline_ms;
  std::function<void(outcome<worker_reply>)> complete;
};

struct proxy_state {
  proxy_config config;
  offer_announcement last;
  bool announced = false;
  uint64_t next_rid = 1;
  // Ordered by rid (deadlines differ: exec_wait adds its own timeout).
  std::map<uint64_t, pending_request> pending;
  bool sweeping = false;
  static inline const char* name = "proxy";
};

using proxy_pointer = proxy_actor::stateful_pointer<proxy_state>;

int64_t now_ms(proxy_pointer self) { return self->state.config.clock.now_ms(self->clock()); }

int64_t sweep_period_ms(const proxy_config& c) {
  return std::max<int64_t>(1, std::min<int64_t>(100, c.request_timeout_ms / 10));
}

void arm_sweep(proxy_pointer self) {
  if (self->state.sweeping) return;
  self->state.sweeping = true;
  self->delayed_send(self, std::chrono::milliseconds(sweep_period_ms(self->state.config)), sweep_atom::value);
}

template <class T>
void deliver(caf::typed_response_promise<T>& promise, T&& value) {
  promise.deliver(std::move(value));
}

template <class T>
void deliver(caf::typed_response_promise<T>& promise, outcome<T>&& value) {
  if (value)
    promise.deliver(std::move(*value));
  else
    promise.deliver(make_error(value.error()));
}

// now_ms + timeout_ms + extra_ms, saturating instead of overflowing.
int64_t deadline_ms(int64_t now_ms, int64_t timeout_ms, int64_t extra_ms) {
  int64_t out = now_ms;
  for (int64_t add : {timeout_ms, extra_ms}) out = add > INT64_MAX - out ? INT64_MAX : out + std::max<int64_t>(0, add);
  return out;
}

// Sends `request` to the worker; `on_reply` turns a successful reply into T
// (or an outcome<T>). `extra_ms` lengthens this request's deadline (exec_wait's own timeout).
template <class T, class Convert>
caf::result<T> forward(proxy_pointer self, worker_request request, Convert on_reply, int64_t extra_ms = 0) {
  auto promise = self->template make_response_promise<T>();
  auto& st = self->state;
  request.rid = st.next_rid++;
  st.pending.emplace(request.rid, pending_request{deadline_ms(now_ms(self), st.config.request_timeout_ms, extra_ms),
                                                  [promise, on_reply](outcome<worker_reply> reply) mutable {
                                                    if (!reply) {
                                                      promise.deliver(make_error(reply.error()));
                                                    } else if (!reply->ok) {
                                                      promise.deliver(make_error(reply->error));
                                                    } else {
                                                      deliver(promise, on_reply(*reply));
                                                    }
                                                  }});
  st.config.sink->post({channel::workers, {st.config.pool, encode_worker_request(request)}});
  arm_sweep(self);
  return promise;
}

void fail_all(proxy_pointer self, const pool_error& error) {
  auto pending = std::move(self->state.pending);
  self->state.pending.clear();
  for (auto& [rid, request] : pending) request.complete(error);
}

proxy_actor::behavior_type proxy_behavior(proxy_pointer self, proxy_config config) {
  self->state.config = std::move(config);
  self->state.last.pool = self->state.config.pool;
  return {
      [=](pool_id_atom) { return self->state.config.pool; },
      [=](status_atom) {
        const auto& a = self->state.last;
        return PoolStatus{self->state.config.pool, a.resources, a.available, a.allocs, a.ts_ms};
      },
      [=](offers_atom) {
        std::vector<OfferInfo> offers;
        for (const auto& o : self->state.last.offers) offers.push_back(OfferInfo{"1", o.pool, o.available});
        return offers;
      },
      [=](offer_atom, const std::string& id) -> caf::result<OfferInfo> {
        // A pool extends at most one offer, local id "1" (reflow's ResourcePool).
        const auto& offers = self->state.last.offers;
        if (id == "1" && !offers.empty()) return OfferInfo{"1", offers.front().pool, offers.front().available};
        return make_error(error_kind::not_exist, "pool " + self->state.config.pool + " has no offer " + id);
      },
      [=](accept_atom, const std::string& offer_id, const AllocMeta& meta) {
        worker_request r;
        r.op = worker_op::accept;
        r.offer_id = offer_id;
        r.meta = meta;
        return forward<AllocInspect>(self, std::move(r), [](const worker_reply& w) { return w.alloc; });
      },
      [=](allocs_atom) {
        worker_request r;
        r.op = worker_op::allocs;
        return forward<std::vector<AllocInspect>>(self, std::move(r), [](worker_reply& w) {
          if (w.allocs_entries.count == 0) return outcome<std::vector<AllocInspect>>(std::move(w.allocs));
          return decode_alloc_entries(w.allocs_entries);
        });
      },
      [=](allocs_atom, encoded_atom) {
        worker_request r;
        r.op = worker_op::allocs;
        return forward<encoded_array>(self, std::move(r), [](worker_reply& w) {
          auto entries = std::move(w.allocs_entries);
          if (!w.allocs.empty()) append_entries(entries, encode_alloc_entries(w.allocs));
          return entries;
        });
      },
      [=](inspect_atom, const std::string& alloc_id) {
        worker_request r;
        r.op = worker_op::inspect;
        r.alloc_id = alloc_id;
        return forward<AllocInspect>(self, std::move(r), [](const worker_reply& w) { return w.alloc; });
      },
      [=](keepalive_atom, const std::string& alloc_id, int64_t interval_ms) {
        worker_request r;
        r.op = worker_op::keepalive;
        r.alloc_id = alloc_id;
        r.interval_ms = interval_ms;
        return forward<int64_t>(self, std::move(r), [](const worker_reply& w) { return w.interval_ms; });
      },
      [=](free_atom, const std::string& alloc_id) {
        worker_request r;
        r.op = worker_op::free;
        r.alloc_id = alloc_id;
        return forward<caf::ok_atom>(self, std::move(r), [](const worker_reply&) { return caf::ok_atom::value; });
      },
      [=](exec_atom, const exec_call& call) {
        worker_request r;
        r.op = *worker_op_from_string(to_string(call.op));
        r.alloc_id = call.alloc;
        r.exec = call;
        return forward<exec_answer>(
            self, std::move(r), [](const worker_reply& w) { return w.exec; },
            call.op == exec_op::wait ? std::clamp<int64_t>(call.timeout_ms, 0, max_exec_wait_ms) : 0);
      },
      [=](announce_atom, offer_announcement& a) {
        auto& last = self->state.last;
        // A new run restarts seq; within a run, ignore anything older than what we hold.
        if (self->state.announced && a.run == last.run && a.seq < last.seq) return;
        last = std::move(a);
        self->state.announced = true;
      },
      [=](wreply_atom, worker_reply& reply) {
        auto it = self->state.pending.find(reply.rid);
        if (it == self->state.pending.end()) {
          spdlog::debug("proxy {}: reply for unknown or expired request {}", self->state.config.pool, reply.rid);
          return;
        }
        auto complete = std::move(it->second.complete);
        self->state.pending.erase(it);
        complete(std::move(reply));
      },
      [=](sweep_atom) {
        auto& st = self->state;
        st.sweeping = false;
        auto now = now_ms(self);
        // Deadlines are not in rid order (an exec_wait has its own), so look at all.
        for (auto it = st.pending.begin(); it != st.pending.end();) {
          if (it->second.deadline_ms > now) {
            ++it;
            continue;
          }
          auto complete = std::move(it->second.complete);
          it = st.pending.erase(it);
          complete(pool_error{error_kind::timeout, "pool " + st.config.pool + " did not answer in time (" +
                                                       std::to_string(st.config.request_timeout_ms) + " ms)"});
        }
        if (!st.pending.empty()) arm_sweep(self);
      },
      [=](lost_atom) {
        fail_all(self, pool_error{error_kind::unavailable, "pool " + self->state.config.pool + " stopped answering"});
        self->quit();
      },
  };
}

}  // namespace

proxy_actor spawn_proxy_actor(caf::actor_system& sys, proxy_config config) {
  return sys.spawn(proxy_behavior, std::move(config));
}

}  // namespace poolbus
