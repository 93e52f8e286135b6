#include "actors/api_actor.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/error_bridge.hpp"

namespace poolbus {
namespace {

struct api_state {
  api_actor_config config;
  static inline const char* name = "api";
};

using api_pointer = caf::stateful_actor<api_state>*;

void reply(api_pointer self, reply_route route, std::string body) {
  route.push_back(std::move(body));
  self->state.config.sink->post({channel::api, std::move(route)});
}

// Asks the mux and encodes its answer with `encode`, or the error it gave.
template <class Result, class Encode, class... Args>
void ask_mux(api_pointer self, reply_route route, std::string id_raw, Encode encode, Args&&... args) {
  // The mux's own deadlines (per pool) come first; this outer one only guards against a lost reply.
  auto deadline = std::chrono::milliseconds(self->state.config.request_timeout_ms * 3 + 1000);
  self->request(self->state.config.mux, deadline, std::forward<Args>(args)...)
      .then(
          [=](Result& result) mutable { reply(self, std::move(route), encode(id_raw, result)); },
          [=](caf::error& err) mutable {
            reply(self, std::move(route), encode_error_reply(id_raw, to_pool_error(err)));
          });
}

caf::behavior api_behavior(api_pointer self, api_actor_config config) {
  self->state.config = std::move(config);
  return {
      [=](api_atom, reply_route& route, api_request& req) {
        const auto& id = req.id_raw;
        switch (req.op) {
          case api_op::ping:
            reply(self, std::move(route), encode_ok_reply(id));
            return;
          case api_op::pools:
            ask_mux<std::vector<PoolStatus>>(
                self, std::move(route), id,
                [](const std::string& i, std::vector<PoolStatus>& pools) { return encode_pools_reply(i, pools); },
                pools_atom::value);
            return;
          case api_op::offers:
            ask_mux<std::vector<OfferInfo>>(self, std::move(route), id,
                    [](const std::string& i, std::vector<OfferInfo>& offers) { return encode_offers_reply(i, offers); },
                    offers_atom::value);
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
          case api_op::allocs: {
            auto pool = req.pool;
            ask_mux<std::vector<AllocInspect>>(self, std::move(route), id,
                    [pool](const std::string& i, std::vector<AllocInspect>& allocs) {
                      if (!pool.empty())
                        allocs.erase(std::remove_if(allocs.begin(), allocs.end(),
                                                    [&](const AllocInspect& a) { return a.pool != pool; }),
                                     allocs.end());
                      return encode_allocs_reply(i, allocs);
                    },
                    allocs_atom::value);
            return;
          }
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
  };
}

}  // namespace

caf::actor spawn_api_actor(caf::actor_system& sys, api_actor_config config) {
  return sys.spawn(api_behavior, std::move(config));
}

}  // namespace poolbus
