// The atoms of every actor interface in poolbus. Kept in one light header
// (caf/atom.hpp only) so message vocabularies compile fast. CAF 0.17 atoms
// carry at most 10 characters.
#pragma once

#include <caf/atom.hpp>

namespace poolbus {

using pool_id_atom = caf::atom_constant<caf::atom("pool_id")>;
using offers_atom = caf::atom_constant<caf::atom("offers")>;
using offer_atom = caf::atom_constant<caf::atom("offer")>;
using accept_atom = caf::atom_constant<caf::atom("accept")>;
using allocs_atom = caf::atom_constant<caf::atom("allocs")>;
using inspect_atom = caf::atom_constant<caf::atom("inspect")>;
using keepalive_atom = caf::atom_constant<caf::atom("keepalive")>;
using free_atom = caf::atom_constant<caf::atom("free")>;
using status_atom = caf::atom_constant<caf::atom("status")>;
using idle_stop_atom = caf::atom_constant<caf::atom("idle_stop")>;
using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;
using changed_atom = caf::atom_constant<caf::atom("changed")>;
using alloc_event_atom = caf::atom_constant<caf::atom("alloc_evt")>;
using pools_atom = caf::atom_constant<caf::atom("pools")>;
using set_pools_atom = caf::atom_constant<caf::atom("set_pools")>;
using size_atom = caf::atom_constant<caf::atom("size")>;
using caching_atom = caf::atom_constant<caf::atom("caching")>;
using allocate_atom = caf::atom_constant<caf::atom("allocate")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;
using lost_atom = caf::atom_constant<caf::atom("lost")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using kill_atom = caf::atom_constant<caf::atom("kill")>;
using announce_atom = caf::atom_constant<caf::atom("announce")>;
using wreply_atom = caf::atom_constant<caf::atom("wreply")>;
using wrequest_atom = caf::atom_constant<caf::atom("wrequest")>;
using api_atom = caf::atom_constant<caf::atom("api")>;
using sweep_atom = caf::atom_constant<caf::atom("sweep")>;
using heartbeat_atom = caf::atom_constant<caf::atom("heartbeat")>;
using seen_atom = caf::atom_constant<caf::atom("seen")>;
using hello_atom = caf::atom_constant<caf::atom("hello")>;
// The broker's waiting queue, quotas and drains (the second wave's ops).
using queue_atom = caf::atom_constant<caf::atom("queue")>;
using quotas_atom = caf::atom_constant<caf::atom("quotas")>;
using drain_atom = caf::atom_constant<caf::atom("drain")>;
using expire_atom = caf::atom_constant<caf::atom("expire")>;
// A list answered as its encoded entries (schemas/encoded_entries.hpp).
using encoded_atom = caf::atom_constant<caf::atom("encoded")>;

}  // namespace poolbus
