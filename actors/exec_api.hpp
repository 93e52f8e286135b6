// The exec vocabulary of the actors: atoms and the one typed message every
// hop of an exec op speaks (mux -> proxy -> worker -> pool -> alloc -> exec
// actor): (exec_atom, exec_call) -> exec_answer. Errors are pool_errors made
// with make_error (actors/error_bridge.hpp). Kept light: atoms and schemas only.
#pragma once

#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <memory>
#include <string>

#include "schemas/exec.hpp"

namespace poolbus {

class process_supervisor;
class alloc_users;

using exec_atom = caf::atom_constant<caf::atom("exec")>;
using exec_exit_atom = caf::atom_constant<caf::atom("exec_exit")>;     // process_exit from the supervisor
using exec_update_atom = caf::atom_constant<caf::atom("exec_upd")>;    // exec actor -> alloc: new ExecInspect
using exec_event_atom = caf::atom_constant<caf::atom("exec_evt")>;     // exec_event to the pool's subscribers
using exec_gone_atom = caf::atom_constant<caf::atom("exec_gone")>;     // exec actor -> alloc: removed
using exec_start_atom = caf::atom_constant<caf::atom("exec_start")>;   // alloc -> exec actor: admitted
using exec_timeout_atom = caf::atom_constant<caf::atom("exec_tmo")>;   // exec actor: a wait's deadline
using exec_sigkill_atom = caf::atom_constant<caf::atom("exec_kill")>;  // alloc gone: stop serving
using exec_outputs_atom = caf::atom_constant<caf::atom("exec_outs")>;  // the outputs, hashed off the actor's thread

// The message of an exec op.
using exec_message = caf::replies_to<exec_atom, exec_call>::with<exec_answer>;
using exec_handler = caf::typed_actor<exec_message>;

// What a worker needs to run execs: the process supervisor, where alloc
// directories live, how long a killed exec gets between SIGTERM and SIGKILL,
// which user each alloc's execs run as, and the cap of each log file.
struct exec_runtime {
  std::shared_ptr<process_supervisor> processes;  // null: the pool runs no execs
  std::string allocs_dir;                         // <state dir>/allocs
  int64_t kill_grace_ms = 2000;
  std::shared_ptr<alloc_users> users;  // null: the worker's own user
  int64_t log_cap_bytes = 64 << 20;
};

}  // namespace poolbus
