#include "actors/api_actor.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <unordered_map>

#include "actors/error_bridge.hpp"
#include "policy/alloc_ownership.hpp"
#include "policy/deadline_table.hpp"
#include "policy/liveness.hpp"

namespace poolbus {
namespace {

struct api_state {
  api_actor_config config;
  // Calls waiting for the mux, by call number. One periodic sweep enforces
  // their outer deadline, instead of a CAF request timeout per call (each
  // one a wake-up of CAF's clock thread).
  std::unordered_map<uint64_t, std::function<void(const pool_error&)>> waiting;
  deadline_table deadlines;
  uint64_t next_call = 1;
  bool sweeping = false;
  static inline const char* name = "api";
};

using api_pointer = caf::stateful_actor<api_state>*;

// The actor clock in ms: deadlines need a steady clock, not the epoch.
int64_t now_ms(api_pointer self) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(self->clock().now().time_since_epoch()).count();
}

void reply(api_pointer self, reply_route route, std::string body) {
  route.push_back(std::move(body));
  self->state.config.sink->post({channel::api, std::move(route)});
}

void arm_sweep(api_pointer self) {
  if (self->state.sweeping || self->state.waiting.empty()) return;
  self->state.sweeping = true;
  self->delayed_send(self, std::chrono::milliseconds(liveness::api_sweep_ms), sweep_atom::value);
}

void on_sweep(api_pointer self) {
  auto& st = self->state;
  st.sweeping = false;
  auto now = now_ms(self);
  for (auto call : st.deadlines.expire(now)) {
    auto fail = std::move(st.waiting.at(call));
    st.waiting.erase(call);
    fail(timeout_error("the broker's mux", liveness::outer_deadline_ms(st.config.request_timeout_ms)));
  }
  arm_sweep(self);
}

// Asks the mux; `on_answer(Result&)` or `on_error(pool_error)` runs once,
// whichever comes first of the mux's answer and the outer deadline (the
// sweep's `timeout`). The mux's own deadlines (the proxies') come first; the
// outer one only guards against a lost reply, so the sweep's granularity is
// fine for it. `extra_ms` is time the call takes by design (exec_wait's wait).
template <class Result, class OnAnswer, class OnError, class... Args>
void call_mux(api_pointer self, int64_t extra_ms, OnAnswer on_answer, OnError on_error, Args&&... args) {
  auto& st = self->state;
  auto call = st.next_call++;
  st.deadlines.add(call,
                   deadline_after(now_ms(self), liveness::outer_deadline_ms(st.config.request_timeout_ms), extra_ms));
  st.waiting.emplace(call, on_error);
  arm_sweep(self);
  auto answered = [self, call] {
    if (self->state.waiting.erase(call) == 0) return false;  // already answered `timeout`
    self->state.deadlines.erase(call);
    return true;
  };
  self->request(st.config.mux, caf::infinite, std::forward<Args>(args)...)
      .then(
          [=](Result& result) mutable {
            if (answered()) on_answer(result);
          },
          [=](caf::error& err) mutable {
            if (answered()) on_error(to_pool_error(err));
          });
}

// Asks the mux and replies with its answer encoded by `encode`, or the error it gave.
template <class Result, class Encode, class... Args>
void ask_mux(api_pointer self, reply_route route, std::string id_raw, Encode encode, Args&&... args) {
  call_mux<Result>(
      self, 0, [=](Result& result) { reply(self, route, encode(id_raw, result)); },
      [=](const pool_error& error) { reply(self, route, encode_error_reply(id_raw, error)); },
      std::forward<Args>(args)...);
}

// An exec op: exec_wait's timeout_ms adds to its deadline (at most
// max_exec_wait_ms once decoded; clamped again so no value can overflow).
void ask_mux_exec(api_pointer self, reply_route route, std::string id_raw, exec_call call) {
  auto wait_ms = call.op == exec_op::wait ? std::clamp<int64_t>(call.timeout_ms, 0, max_exec_wait_ms) : 0;
  call_mux<exec_answer>(
      self, wait_ms, [=](exec_answer& answer) { reply(self, route, encode_exec_reply(id_raw, answer)); },
      [=](const pool_error& error) { reply(self, route, encode_error_reply(id_raw, error)); }, exec_atom::value,
      std::move(call));
}

// Ops that act on an existing alloc: with authentication on, only its owner
// (or an admin) may call them.
bool owner_only(api_op op) {
  switch (op) {
    case api_op::keepalive:
    case api_op::free:
    case api_op::exec_put:
    case api_op::exec_inspect:
    case api_op::execs:
    case api_op::exec_wait:
    case api_op::exec_logs:
    case api_op::exec_remove:
    case api_op::repo_get: return true;
    default: return false;
  }
}

// Security (a request with a caller identity, from a CURVE broker): new allocs
// belong to the caller; an owner-only op first inspects the alloc (its owner
// never changes, so checking before acting is safe) and is then re-sent
// without its caller, which nothing after this check reads. Returns true when
// the request was taken over here.
bool guard_ownership(api_pointer self, reply_route& route, api_request& req) {
  if (req.caller.empty()) return false;
  if (req.op == api_op::drain && role_of_identity(req.caller) != "admin") {
    spdlog::warn("security: {} may not drain {} (admins only)", req.caller, req.pool);
    reply(self, std::move(route),
          encode_error_reply(req.id_raw, {error_kind::unauthorized, "only an admin may drain a pool"}));
    return true;
  }
  if (req.op == api_op::accept || req.op == api_op::allocate) {
    req.meta.owner = req.caller;  // overrides whatever owner the client sent
    return false;
  }
  if (!owner_only(req.op)) return false;
  call_mux<AllocInspect>(
      self, 0,
      [=](AllocInspect& alloc) mutable {
        if (!may_act_on_alloc(alloc.meta.owner, req.caller)) {
          spdlog::warn("security: {} may not {} {} (owner {})", req.caller, to_string(req.op), req.uri,
                       alloc.meta.owner.empty() ? "none" : alloc.meta.owner);
          reply(self, std::move(route),
                encode_error_reply(req.id_raw, {error_kind::unauthorized, req.caller + " does not own " + req.uri}));
          return;
        }
        req.caller.clear();
        self->send(self, api_atom::value, std::move(route), std::move(req));
      },
      [=](const pool_error& error) { reply(self, route, encode_error_reply(req.id_raw, error)); }, inspect_atom::value,
      req.uri);
  return true;
}

std::string pools_reply(const std::string& id, encoded_array& pools) { return encode_pools_reply_spliced(id, pools); }
std::string offers_reply(const std::string& id, encoded_array& offers) {
  return encode_offers_reply_spliced(id, offers);
}
std::string offer_reply(const std::string& id, OfferInfo& offer) { return encode_offer_reply(id, offer); }
std::string alloc_reply(const std::string& id, AllocInspect& alloc) { return encode_alloc_reply(id, alloc); }
// The pools' own encoded entries, spliced: a 20,000-alloc list is never
// decoded nor encoded again on its way through the broker.
std::string allocs_reply(const std::string& id, encoded_array& allocs) {
  return encode_allocs_reply_spliced(id, allocs);
}
std::string keepalive_reply(const std::string& id, int64_t& granted) { return encode_keepalive_reply(id, granted); }
std::string queue_reply(const std::string& id, std::vector<queue_entry>& queue) {
  return encode_queue_reply(id, queue);
}
std::string quotas_reply(const std::string& id, std::vector<quota_usage>& quotas) {
  return encode_quotas_reply(id, quotas);
}
std::string pool_reply(const std::string& id, PoolStatus& pool) { return encode_pool_reply(id, pool); }

// allocate: `alloc` alone as reflow's reply, `allocs` too when `count` was
// given. A wait adds its wait_ms to the outer deadline.
void ask_mux_allocate(api_pointer self, reply_route route, std::string id_raw, api_request& req) {
  bool gang = req.place.gang;
  call_mux<std::vector<AllocInspect>>(
      self, std::clamp<int64_t>(req.place.wait_ms, 0, max_wait_ms),
      [=](std::vector<AllocInspect>& allocs) {
        reply(self, route, gang ? encode_gang_reply(id_raw, allocs) : encode_alloc_reply(id_raw, allocs.front()));
      },
      [=](const pool_error& error) { reply(self, route, encode_error_reply(id_raw, error)); }, allocate_atom::value,
      std::move(req.place), std::move(req.meta));
}
std::string ok_reply(const std::string& id, caf::ok_atom&) { return encode_ok_reply(id); }

// One client request, decoded: to the mux, and its answer back along `route`.
void dispatch(api_pointer self, reply_route& route, api_request& req) {
  if (guard_ownership(self, route, req)) return;
  const auto& id = req.id_raw;
  if (exec_op_of(req.op)) return ask_mux_exec(self, std::move(route), id, req.exec);
  switch (req.op) {
    case api_op::ping: return reply(self, std::move(route), encode_ok_reply(id));
    case api_op::pools:
      return ask_mux<encoded_array>(self, std::move(route), id, pools_reply, pools_atom::value, encoded_atom::value);
    case api_op::offers:
      return ask_mux<encoded_array>(self, std::move(route), id, offers_reply, offers_atom::value, encoded_atom::value);
    case api_op::offer: return ask_mux<OfferInfo>(self, std::move(route), id, offer_reply, offer_atom::value, req.uri);
    case api_op::accept:
      return ask_mux<AllocInspect>(self, std::move(route), id, alloc_reply, accept_atom::value, req.uri, req.meta);
    case api_op::allocate: return ask_mux_allocate(self, std::move(route), id, req);
    case api_op::queue:
      return ask_mux<std::vector<queue_entry>>(self, std::move(route), id, queue_reply, queue_atom::value);
    case api_op::quotas:
      return ask_mux<std::vector<quota_usage>>(self, std::move(route), id, quotas_reply, quotas_atom::value);
    case api_op::drain:
      return ask_mux<PoolStatus>(self, std::move(route), id, pool_reply, drain_atom::value, req.pool, req.drain);
    case api_op::allocs:
      return ask_mux<encoded_array>(self, std::move(route), id, allocs_reply, allocs_atom::value, encoded_atom::value,
                                    req.pool);
    case api_op::inspect:
      return ask_mux<AllocInspect>(self, std::move(route), id, alloc_reply, inspect_atom::value, req.uri);
    case api_op::keepalive:
      return ask_mux<int64_t>(self, std::move(route), id, keepalive_reply, keepalive_atom::value, req.uri,
                              req.interval_ms);
    case api_op::free: return ask_mux<caf::ok_atom>(self, std::move(route), id, ok_reply, free_atom::value, req.uri);
    default: return reply(self, std::move(route), encode_error_reply(id, {error_kind::invalid, "unknown op"}));
  }
}

caf::behavior api_behavior(api_pointer self, api_actor_config config) {
  self->state.config = std::move(config);
  return {
      [=](api_atom, reply_route& route, api_request& req) { dispatch(self, route, req); },
      [=](sweep_atom) { on_sweep(self); },
  };
}

}  // namespace

caf::actor spawn_api_actor(caf::actor_system& sys, api_actor_config config) {
  return sys.spawn(api_behavior, std::move(config));
}

}  // namespace poolbus
