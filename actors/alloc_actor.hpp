// alloc actor: one per alloc on a worker that runs execs, spawned by its pool
// on the alloc's first exec op (or at restore when execs run). Keepalive,
// inspect and free are the pool's ops (it owns the lease table, which keeps
// collection and keepalive atomic); the alloc actor serves the alloc's execs.
// Invariant: once its pool tells it the alloc is gone (freed or collected) it
// stops serving and answers not_exist to everything, and its execs stop too.
//
// Execs: the alloc actor owns one exec actor per exec (actors/exec_actor.hpp),
// admits them in order while their resources fit the alloc's (policy/
// exec_admission.hpp), answers exec_put / execs / repo_get itself and hands
// inspect / wait / logs / remove to the exec's actor. Exec records and the
// content-addressed repository live in the alloc's directory, so a restarted
// worker brings them back.
#pragma once

#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "actors/exec_actor.hpp"
#include "actors/exec_api.hpp"
#include "actors/pool_api.hpp"
#include "policy/exec_admission.hpp"

namespace poolbus {

// The pool's own handle on an alloc actor: the alloc's exec ops, and the
// pool's "your alloc is gone" notice.
using local_alloc_actor = caf::typed_actor<caf::reacts_to<kill_atom>,
                                           exec_message,  // every exec op of this alloc
                                           caf::reacts_to<exec_update_atom, ExecInspect>,  // from its exec actors
                                           caf::reacts_to<exec_gone_atom, std::string>>;

// What the alloc actor needs for execs (runtime.processes null: no execs here).
struct alloc_exec_context {
  exec_runtime runtime;
  Resources resources;  // the alloc's: execs are admitted within them
  caf::actor events;    // receives (exec_event_atom, exec_event): the pool
  std::string pool;
};

struct alloc_exec_entry {
  exec_actor actor;
  ExecConfig config;
  ExecInspect last;  // as its actor last reported it
};

struct alloc_actor_state {
  pool_actor pool;       // reset once the alloc is gone
  std::string local_id;  // the alloc's id within its pool
  std::string uri;       // "<pool>/<local_id>", for logs and errors
  alloc_exec_context execs_context;
  std::optional<exec_admission> admission;
  std::shared_ptr<exec_records> records;
  std::shared_ptr<content_repository> repo;
  std::optional<exec_user> user;                  // once its directory is prepared (store/alloc_users)
  std::map<std::string, alloc_exec_entry> execs;  // by exec id
  static inline const char* name = "alloc_actor";
};

// Spawn with self->spawn<caf::linked>(alloc_actor_behavior, pool, local_id, uri, context)
// from the pool, so the alloc actor ends with its pool.
local_alloc_actor::behavior_type alloc_actor_behavior(local_alloc_actor::stateful_pointer<alloc_actor_state> self,
                                                      pool_actor pool, std::string local_id, std::string uri,
                                                      alloc_exec_context context);

}  // namespace poolbus
