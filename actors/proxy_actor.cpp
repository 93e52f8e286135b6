#include "actors/proxy_actor.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>

#include "actors/error_bridge.hpp"
#include "policy/deadline_table.hpp"
#include "policy/liveness.hpp"

namespace poolbus {
namespace {

using completion = std::function<void(outcome<worker_reply>)>;

struct pending_request {
  worker_op op;
  completion complete;
};

struct proxy_state {
  proxy_config config;
  uint64_t next_rid = 1;
  std::unordered_map<uint64_t, pending_request> pending;  // by rid
  deadline_table deadlines;                               // of the pending rids
  // Accepts answered `timeout`, by rid, with when: a late success is undone.
  std::map<uint64_t, int64_t> abandoned_accepts;
  bool sweeping = false;
  static inline const char* name = "proxy";
};

using proxy_pointer = proxy_actor::stateful_pointer<proxy_state>;

int64_t now_ms(proxy_pointer self) { return self->state.config.clock.now_ms(self->clock()); }

void arm_sweep(proxy_pointer self) {
  if (self->state.sweeping || self->state.pending.empty()) return;
  self->state.sweeping = true;
  self->delayed_send(self, std::chrono::milliseconds(liveness::proxy_sweep_ms(self->state.config.request_timeout_ms)),
                     sweep_atom::value);
}

template <class T>
void deliver(caf::typed_response_promise<T>& promise, T&& value) {  // the outcome<T> one: error_bridge
  promise.deliver(std::move(value));
}

// Sends `request` to the worker; `on_reply` turns a successful reply into T
// (or an outcome<T>). `extra_ms` lengthens this request's deadline (exec_wait's own timeout).
template <class T, class Convert>
caf::result<T> forward(proxy_pointer self, worker_request request, Convert on_reply, int64_t extra_ms = 0) {
  auto promise = self->template make_response_promise<T>();
  auto& st = self->state;
  request.rid = st.next_rid++;
  st.deadlines.add(request.rid, deadline_after(now_ms(self), st.config.request_timeout_ms, extra_ms));
  st.pending.emplace(request.rid, pending_request{request.op, [promise, on_reply](outcome<worker_reply> reply) mutable {
                                                    if (!reply)
                                                      promise.deliver(make_error(reply.error()));
                                                    else if (!reply->ok)
                                                      promise.deliver(make_error(reply->error));
                                                    else
                                                      deliver(promise, on_reply(*reply));
                                                  }});
  st.config.sink->post({channel::workers, {st.config.pool, encode_worker_request(request)}});
  arm_sweep(self);
  return promise;
}

worker_request request_of(worker_op op, std::string alloc_id = {}) {
  worker_request r;
  r.op = op;
  r.alloc_id = std::move(alloc_id);
  return r;
}

// A reply to an accept already answered `timeout`: the alloc it made is
// nobody's, so it is freed (fire and forget; the free's reply is unknown too).
void undo_late_accept(proxy_pointer self, const worker_reply& reply) {
  auto& st = self->state;
  st.abandoned_accepts.erase(reply.rid);
  if (!reply.ok || reply.alloc.id.empty()) return;
  spdlog::info("proxy {}: accept answered after its deadline: freeing {}", st.config.pool, reply.alloc.id);
  auto free = request_of(worker_op::free, local_id_of(reply.alloc.id));
  free.rid = st.next_rid++;
  st.config.sink->post({channel::workers, {st.config.pool, encode_worker_request(free)}});
}

void on_reply(proxy_pointer self, worker_reply& reply) {
  auto& st = self->state;
  auto it = st.pending.find(reply.rid);
  if (it == st.pending.end()) {
    if (st.abandoned_accepts.count(reply.rid)) return undo_late_accept(self, reply);
    spdlog::debug("proxy {}: reply for unknown or expired request {}", st.config.pool, reply.rid);
    return;
  }
  auto complete = std::move(it->second.complete);
  st.pending.erase(it);
  st.deadlines.erase(reply.rid);
  complete(std::move(reply));
}

void on_sweep(proxy_pointer self) {
  auto& st = self->state;
  st.sweeping = false;
  auto now = now_ms(self);
  for (auto rid : st.deadlines.expire(now)) {
    auto request = std::move(st.pending.at(rid));
    st.pending.erase(rid);
    if (request.op == worker_op::accept) st.abandoned_accepts.emplace(rid, now);
    request.complete(timeout_error("pool " + st.config.pool, st.config.request_timeout_ms));
  }
  // rids only grow: the oldest abandoned accepts come first.
  while (!st.abandoned_accepts.empty() && now - st.abandoned_accepts.begin()->second > liveness::late_accept_window_ms)
    st.abandoned_accepts.erase(st.abandoned_accepts.begin());
  arm_sweep(self);
}

void on_lost(proxy_pointer self) {
  auto pending = std::move(self->state.pending);
  self->state.pending.clear();
  for (auto& [rid, request] : pending)
    request.complete(pool_error{error_kind::unavailable, "pool " + self->state.config.pool + " stopped answering"});
  self->quit();
}

proxy_actor::behavior_type proxy_behavior(proxy_pointer self, proxy_config config) {
  self->state.config = std::move(config);
  return {
      [=](accept_atom, const std::string& offer_id, const AllocMeta& meta) {
        auto r = request_of(worker_op::accept);
        r.offer_id = offer_id;
        r.meta = meta;
        return forward<AllocInspect>(self, std::move(r), [](const worker_reply& w) { return w.alloc; });
      },
      [=](allocs_atom, encoded_atom) {
        return forward<encoded_array>(self, request_of(worker_op::allocs), [](worker_reply& w) {
          auto entries = std::move(w.allocs_entries);
          if (!w.allocs.empty()) append_entries(entries, encode_alloc_entries(w.allocs));
          return entries;
        });
      },
      [=](inspect_atom, const std::string& alloc_id) {
        return forward<AllocInspect>(self, request_of(worker_op::inspect, alloc_id),
                                     [](const worker_reply& w) { return w.alloc; });
      },
      [=](keepalive_atom, const std::string& alloc_id, int64_t interval_ms) {
        auto r = request_of(worker_op::keepalive, alloc_id);
        r.interval_ms = interval_ms;
        return forward<int64_t>(self, std::move(r), [](const worker_reply& w) { return w.interval_ms; });
      },
      [=](free_atom, const std::string& alloc_id) {
        return forward<caf::ok_atom>(self, request_of(worker_op::free, alloc_id),
                                     [](const worker_reply&) { return caf::ok_atom::value; });
      },
      [=](drain_atom, bool on) {
        auto r = request_of(worker_op::drain);
        r.drain = on;
        return forward<caf::ok_atom>(self, std::move(r), [](const worker_reply&) { return caf::ok_atom::value; });
      },
      [=](exec_atom, const exec_call& call) {
        auto r = request_of(*worker_op_from_string(to_string(call.op)), call.alloc);
        r.exec = call;
        return forward<exec_answer>(
            self, std::move(r), [](const worker_reply& w) { return w.exec; },
            call.op == exec_op::wait ? std::clamp<int64_t>(call.timeout_ms, 0, max_exec_wait_ms) : 0);
      },
      [=](wreply_atom, worker_reply& reply) { on_reply(self, reply); },
      [=](sweep_atom) { on_sweep(self); },
      [=](lost_atom) { on_lost(self); },
  };
}

}  // namespace

proxy_actor spawn_proxy_actor(caf::actor_system& sys, proxy_config config) {
  return sys.spawn(proxy_behavior, std::move(config));
}

}  // namespace poolbus
