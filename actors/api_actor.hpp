// api actor: the broker's front desk. It takes decoded client requests (with
// the reply route they came by), asks the mux, and posts exactly one reply
// body back along that route. Pure dispatch: no state, no policy.
//
// Invariant: every request it receives gets one reply, at the latest when its
// outer deadline passes (`timeout`).
#pragma once

#include <caf/fwd.hpp>

#include "actors/mux_actor.hpp"
#include "policy/liveness.hpp"
#include "schemas/api_messages.hpp"
#include "schemas/frames.hpp"

namespace poolbus {

struct api_actor_config {
  mux_actor mux;
  frame_sink_ptr sink;                                                // replies go out on channel::api
  int64_t request_timeout_ms = liveness::default_request_timeout_ms;  // the broker's deadline for a worker's answer
};

// Accepts (api_atom, reply_route, api_request).
caf::actor spawn_api_actor(caf::actor_system& sys, api_actor_config config);

}  // namespace poolbus
