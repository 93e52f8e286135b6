// pool_actor: the typed interface every pool speaks, reflow's `Pool` (plus the
// alloc operations reflow reaches through `Pool.Alloc(id)`). A worker's pool
// actor and reflow's Mux over many pools (actors/reflow_mux_actor.hpp)
// implement it, so the reflow mux and its tests work over either. (The
// broker's mux speaks the client API instead: actors/mux_actor.hpp.)
//
// Ids: a pool answers with local ids ("1" for its offer, the alloc's own id);
// the mux answers with URIs "<pool>/<id>". Errors are caf::error values made
// by make_error(pool_error) (actors/error_bridge.hpp), so their kind survives.
#pragma once

#include <caf/typed_actor.hpp>
#include <caf/replies_to.hpp>

#include <string>
#include <vector>

#include "actors/atoms.hpp"
#include "schemas/alloc.hpp"

namespace poolbus {

using pool_actor =
    caf::typed_actor<caf::replies_to<pool_id_atom>::with<std::string>, caf::replies_to<status_atom>::with<PoolStatus>,
                     caf::replies_to<offers_atom>::with<std::vector<OfferInfo>>,
                     caf::replies_to<offer_atom, std::string>::with<OfferInfo>,
                     caf::replies_to<accept_atom, std::string, AllocMeta>::with<AllocInspect>,
                     caf::replies_to<allocs_atom>::with<std::vector<AllocInspect>>,
                     caf::replies_to<inspect_atom, std::string>::with<AllocInspect>,
                     // interval_ms requested -> interval_ms granted
                     caf::replies_to<keepalive_atom, std::string, int64_t>::with<int64_t>,
                     caf::replies_to<free_atom, std::string>::with<caf::ok_atom>>;

// alloc_actor: reflow's `Alloc` for one alloc (keepalive, inspect, free). The
// keepalive actor drives any handle of this type: the client library's
// remote alloc (actors/remote_alloc_actor.hpp), or a test's stand-in.
using alloc_actor =
    caf::typed_actor<caf::replies_to<keepalive_atom, int64_t>::with<int64_t>,
                     caf::replies_to<inspect_atom>::with<AllocInspect>, caf::replies_to<free_atom>::with<caf::ok_atom>>;

}  // namespace poolbus
