// exec actor: one per exec, owned (spawned linked) by its alloc actor. It
// starts the exec's process when the alloc admits it, hears its exit from the
// process supervisor, collects its outputs into the alloc's repository, keeps
// its record on disk, answers inspect / wait (long-poll: waiting promises, never
// a blocked thread) / logs / remove, and reports every change to its alloc and
// every life event (started, completed, lost) to the pool.
//
// Invariant: the record on disk is saved before anyone hears of a state change,
// and every exec_wait promise is answered exactly once (the exec completed, its
// deadline passed, or the exec/alloc went away).
#pragma once

#include <caf/stateful_actor.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "actors/exec_api.hpp"
#include "exec/process_supervisor.hpp"
#include "actors/wall_clock.hpp"
#include "policy/deadline_table.hpp"
#include "policy/exec_lifecycle.hpp"
#include "store/alloc_users.hpp"
#include "store/content_repository.hpp"
#include "store/exec_records.hpp"

namespace poolbus {

// The outputs of a successful exec as its collector found them: the files, or
// the error that fails the exec.
struct exec_outputs {
  std::map<std::string, ExecResultFile> files;
  std::string error;  // empty: all collected

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, exec_outputs& x) {
    return f(x.files, x.error);
  }
};

using exec_actor = exec_handler::extend<caf::reacts_to<exec_start_atom>,               // admitted: start the process
                                        caf::reacts_to<exec_exit_atom, process_exit>,  // from the supervisor's callback
                                        caf::reacts_to<exec_timeout_atom>,  // a waiter's deadline may have passed
                                        caf::reacts_to<exec_sigkill_atom>,  // the alloc is gone: answer waiters, quit
                                        caf::reacts_to<exec_outputs_atom, exec_outputs>>;  // from its output collector

struct exec_actor_config {
  exec_record record;  // a new exec (waiting) or one restored from disk
  exec_runtime runtime;
  std::shared_ptr<exec_records> records;
  std::shared_ptr<content_repository> repo;
  caf::actor alloc;   // receives (exec_update_atom, ExecInspect) and (exec_gone_atom, id)
  caf::actor events;  // receives (exec_event_atom, exec_event): the pool
  std::string pool;
  wall_clock clock = wall_clock::real();
  exec_user user;                // the alloc's (store/alloc_users)
  int64_t disk_limit_bytes = 0;  // the alloc's disk; 0 = none
};

struct exec_actor_state {
  exec_actor_config config;
  std::optional<exec_lifecycle> life;
  uint64_t next_waiter = 1;
  std::map<uint64_t, caf::typed_response_promise<exec_answer>> waiters;  // exec_wait long-polls
  deadline_table wait_deadlines;                                         // of the waiters: each one's timeout_ms
  std::optional<caf::typed_response_promise<exec_answer>> removal;       // exec_remove of a running exec
  bool gone = false;                                                     // removed, or its alloc is gone
  std::optional<exec_termination> collecting;                            // exited well; its outputs are being hashed
  int64_t exited_ms = 0;
  std::shared_ptr<std::atomic<bool>> cancel_collection = std::make_shared<std::atomic<bool>>(false);
  static inline const char* name = "exec_actor";
};
exec_actor::behavior_type exec_actor_behavior(exec_actor::stateful_pointer<exec_actor_state> self,
                                              exec_actor_config config);

}  // namespace poolbus
