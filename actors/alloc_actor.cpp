#include "actors/alloc_actor.hpp"

#include <spdlog/spdlog.h>

#include <caf/all.hpp>

#include "actors/error_bridge.hpp"

namespace poolbus {
namespace {

caf::error gone_error(const alloc_actor_state& st) {
  return make_error(error_kind::not_exist, "alloc " + st.uri + " was freed or collected");
}

}  // namespace

local_alloc_actor::behavior_type alloc_actor_behavior(local_alloc_actor::stateful_pointer<alloc_actor_state> self,
                                                      pool_actor pool, std::string local_id, std::string uri) {
  self->state.pool = std::move(pool);
  self->state.local_id = std::move(local_id);
  self->state.uri = std::move(uri);
  return {
      [=](keepalive_atom, int64_t interval_ms) -> caf::result<int64_t> {
        auto& st = self->state;
        if (!st.pool) return gone_error(st);
        return self->delegate(st.pool, keepalive_atom::value, st.local_id, interval_ms);
      },
      [=](inspect_atom) -> caf::result<AllocInspect> {
        auto& st = self->state;
        if (!st.pool) return gone_error(st);
        return self->delegate(st.pool, inspect_atom::value, st.local_id);
      },
      [=](free_atom) -> caf::result<caf::ok_atom> {
        auto& st = self->state;
        if (!st.pool) return gone_error(st);
        return self->delegate(st.pool, free_atom::value, st.local_id);
      },
      [=](kill_atom) {
        // Drop the pool handle: nothing is forwarded any more, and no reference
        // cycle keeps either actor alive. The actor ends when its last handle
        // is dropped, or with its pool (they are linked).
        spdlog::debug("alloc actor {}: alloc gone", self->state.uri);
        self->state.pool = nullptr;
      },
  };
}

}  // namespace poolbus
