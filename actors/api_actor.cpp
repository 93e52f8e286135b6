#include "actors/api_actor.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <map>

#include "actors/error_bridge.hpp"
#include "policy/alloc_ownership.hpp"

namespace poolbus {
namespace {

struct api_state {
  api_actor_config config;
  // Calls waiting for the mux, by call number (so also in deadline order):
  // one periodic sweep enforces their outer deadline, instead of a CAF
  // request timeout per call (each one a wake-up of CAF's clock thread).
  struct waiting_call {
    caf::actor_clock::time_point deadline;
    std::function<void(const caf::error&)> fail;
  };
  std::map<uint64_t, waiting_call> waiting;
  uint64_t next_call = 1;
  bool sweeping = false;
  static inline const char* name = "api";
};

using api_pointer = caf::stateful_actor<api_state>*;

void reply(api_pointer self, reply_route route, std::string body) {
  route.push_back(std::move(body));
  self->state.config.sink->post({channel::api, std::move(route)});
}

constexpr auto api_sweep_period = std::chrono::milliseconds(250);

// The api's own deadline on a call to the mux: it only guards against a lost
// reply, so it lies past every deadline inside (the mux's routing, the proxy's
// request, a retried allocate: up to three worker deadlines) plus a second of
// slack; `extra_ms` is time the call may take by design (exec_wait's wait).
std::chrono::milliseconds outer_deadline(const api_actor_config& config, int64_t extra_ms = 0) {
  return std::chrono::milliseconds(config.request_timeout_ms * 3 + 1000 + extra_ms);
}

void arm_sweep(api_pointer self) {
  if (self->state.sweeping || self->state.waiting.empty()) return;
  self->state.sweeping = true;
  self->delayed_send(self, api_sweep_period, sweep_atom::value);
}

// Asks the mux and encodes its answer with `encode`, or the error it gave.
template <class Result, class Encode, class... Args>
void ask_mux(api_pointer self, reply_route route, std::string id_raw, Encode encode, Args&&... args) {
  // The mux's own deadlines (per pool) come first; this outer one only guards
  // against a lost reply, so the sweep's granularity is fine for it.
  auto& st = self->state;
  auto deadline = outer_deadline(st.config);
  auto call = st.next_call++;
  st.waiting.emplace(call, api_state::waiting_call{self->clock().now() + deadline, [=](const caf::error& err) {
                                                     reply(self, route, encode_error_reply(id_raw, to_pool_error(err)));
                                                   }});
  arm_sweep(self);
  self->request(st.config.mux, caf::infinite, std::forward<Args>(args)...)
      .then(
          [=](Result& result) mutable {
            if (self->state.waiting.erase(call) == 0) return;  // already answered `timeout`
            reply(self, std::move(route), encode(id_raw, result));
          },
          [=](caf::error& err) mutable {
            if (self->state.waiting.erase(call) == 0) return;
            reply(self, std::move(route), encode_error_reply(id_raw, to_pool_error(err)));
          });
}

// An exec op: asks the mux with its own deadline (exec_wait's timeout_ms on
// top of the usual one), outside the sweep, whose deadlines are all alike.
void ask_mux_exec(api_pointer self, reply_route route, std::string id_raw, exec_call call) {
  // timeout_ms is at most max_exec_wait_ms once decoded; clamped again here,
  // so no value can overflow the deadline (CAF counts it in nanoseconds).
  auto wait_ms = call.op == exec_op::wait ? std::clamp<int64_t>(call.timeout_ms, 0, max_exec_wait_ms) : 0;
  auto deadline = outer_deadline(self->state.config, wait_ms);
  self->request(self->state.config.mux, deadline, exec_atom::value, std::move(call))
      .then([=](exec_answer& answer) mutable { reply(self, std::move(route), encode_exec_reply(id_raw, answer)); },
            [=](caf::error& err) mutable {
              reply(self, std::move(route), encode_error_reply(id_raw, to_pool_error(err)));
            });
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
    case api_op::repo_get:
      return true;
    default:
      return false;
  }
}

// Security (a request with a caller identity, from a CURVE broker): new allocs
// belong to the caller; an owner-only op first inspects the alloc (its owner
// never changes, so checking before acting is safe) and is then re-sent
// without its caller, which nothing after this check reads. Returns true when
// the request was taken over here.
bool guard_ownership(api_pointer self, reply_route& route, api_request& req) {
  if (req.caller.empty()) return false;
  if (req.op == api_op::accept || req.op == api_op::allocate) {
    req.meta.owner = req.caller;  // overrides whatever owner the client sent
    return false;
  }
  if (!owner_only(req.op)) return false;
  auto deadline = outer_deadline(self->state.config);
  self->request(self->state.config.mux, deadline, inspect_atom::value, req.uri)
      .then(
          [=](AllocInspect& alloc) mutable {
            if (!may_act_on_alloc(alloc.meta.owner, req.caller)) {
              spdlog::warn("security: {} may not {} {} (owner {})", req.caller, to_string(req.op), req.uri,
                           alloc.meta.owner.empty() ? "none" : alloc.meta.owner);
              reply(self, std::move(route),
                    encode_error_reply(req.id_raw, {error_kind::unauthorized,
                                                    req.caller + " does not own " + req.uri}));
              return;
            }
            req.caller.clear();
            self->send(self, api_atom::value, std::move(route), std::move(req));
          },
          [=](caf::error& err) mutable {
            reply(self, std::move(route), encode_error_reply(req.id_raw, to_pool_error(err)));
          });
  return true;
}

caf::behavior api_behavior(api_pointer self, api_actor_config config) {
  self->state.config = std::move(config);
  return {
      [=](api_atom, reply_route& route, api_request& req) {
        if (guard_ownership(self, route, req)) return;
        const auto& id = req.id_raw;
        if (exec_op_of(req.op)) {
          ask_mux_exec(self, std::move(route), id, req.exec);
          return;
        }
        switch (req.op) {
          case api_op::ping:
            reply(self, std::move(route), encode_ok_reply(id));
            return;
          case api_op::pools:
            ask_mux<encoded_array>(
                self, std::move(route), id,
                [](const std::string& i, encoded_array& pools) { return encode_pools_reply_spliced(i, pools); },
                pools_atom::value, encoded_atom::value);
            return;
          case api_op::offers:
            ask_mux<encoded_array>(self, std::move(route), id,
                    [](const std::string& i, encoded_array& offers) { return encode_offers_reply_spliced(i, offers); },
                    offers_atom::value, encoded_atom::value);
            return;
          case api_op::offer:
            ask_mux<OfferInfo>(self, std::move(route), id,
                    [](const std::string& i, OfferInfo& offer) { return encode_offer_reply(i, offer); },
                    offer_atom::value, req.uri);
            return;
          case api_op::accept:
            ask_mux<AllocInspect>(self, std::move(route), id,
                    [](const std::string& i, AllocInspect& alloc) { return encode_alloc_reply(i, alloc); },
                    accept_atom::value, req.uri, req.meta);
            return;
          case api_op::allocate:
            ask_mux<AllocInspect>(self, std::move(route), id,
                    [](const std::string& i, AllocInspect& alloc) { return encode_alloc_reply(i, alloc); },
                    allocate_atom::value, req.meta.want, req.width, req.meta);
            return;
          case api_op::allocs:
            // The pools' own encoded entries, spliced: a 20,000-alloc list is
            // never decoded nor encoded again on its way through the broker.
            ask_mux<encoded_array>(self, std::move(route), id,
                    [](const std::string& i, encoded_array& allocs) { return encode_allocs_reply_spliced(i, allocs); },
                    allocs_atom::value, encoded_atom::value, req.pool);
            return;
          case api_op::inspect:
            ask_mux<AllocInspect>(self, std::move(route), id,
                    [](const std::string& i, AllocInspect& alloc) { return encode_alloc_reply(i, alloc); },
                    inspect_atom::value, req.uri);
            return;
          case api_op::keepalive:
            ask_mux<int64_t>(self, std::move(route), id,
                    [](const std::string& i, int64_t& granted) { return encode_keepalive_reply(i, granted); },
                    keepalive_atom::value, req.uri, req.interval_ms);
            return;
          case api_op::free:
            ask_mux<caf::ok_atom>(self, std::move(route), id, [](const std::string& i, caf::ok_atom&) { return encode_ok_reply(i); },
                    free_atom::value, req.uri);
            return;
        }
        reply(self, std::move(route), encode_error_reply(id, {error_kind::invalid, "unknown op"}));
      },
      [=](sweep_atom) {
        auto& st = self->state;
        st.sweeping = false;
        auto now = self->clock().now();
        while (!st.waiting.empty() && st.waiting.begin()->second.deadline <= now) {
          auto fail = std::move(st.waiting.begin()->second.fail);
          st.waiting.erase(st.waiting.begin());
          fail(caf::make_error(caf::sec::request_timeout));
        }
        arm_sweep(self);
      },
  };
}

}  // namespace

caf::actor spawn_api_actor(caf::actor_system& sys, api_actor_config config) {
  return sys.spawn(api_behavior, std::move(config));
}

}  // namespace poolbus
