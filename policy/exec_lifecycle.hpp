// exec_lifecycle: the rules of one exec, without processes or actors: what a
// valid ExecConfig is, when a re-put is the same exec, and the state machine
// waiting -> running -> complete (or waiting -> complete when it cannot start,
// running -> lost when the worker restarted under it). Invariant: every
// transition stamps its time once, and a complete or lost exec never changes.
#pragma once

#include <map>
#include <string>

#include "schemas/exec.hpp"

namespace poolbus {

// `invalid` naming the first problem: empty argv or program, a NUL byte in an
// argument or the environment, an env name that is empty or holds '=', an
// output path that is empty, absolute, holds "..", "." or NUL, or repeats, or
// an argv + env larger than exec_args_limit_bytes.
constexpr size_t exec_args_limit_bytes = 256 << 10;
constexpr size_t exec_outputs_limit = 1000;
outcome<void> validate_exec_config(const ExecConfig& config);

// exec_put of an id that exists: ok when the configs are equal (idempotent),
// else `precondition` naming the id.
outcome<void> check_same_config(const std::string& id, const ExecConfig& existing, const ExecConfig& requested);

// How the exec's process ended, as the process supervisor saw it.
struct exec_termination {
  bool exited = false;  // true: exit_code holds the status; false: killed by `signal`
  int exit_code = 0;
  int signal = 0;
  bool oom = false;     // stopped for using more than its resources.mem
  bool disk = false;    // stopped for writing more than its alloc's disk
  bool killed = false;  // stopped on request (free, collection, remove)
  ExecProfile profile;
};

class exec_lifecycle {
 public:
  // A new exec, waiting for admission.
  exec_lifecycle(std::string id, std::string alloc_uri, Resources resources, int64_t now_ms);
  // An exec read back from its record.
  explicit exec_lifecycle(ExecInspect restored) : inspect_(std::move(restored)) {}

  const ExecInspect& inspect() const { return inspect_; }
  exec_state state() const { return inspect_.state; }
  bool done() const { return state() == exec_state::complete || state() == exec_state::lost; }

  // waiting -> running. precondition from any other state.
  outcome<void> start(int64_t now_ms);
  // waiting|running -> complete with `error` and no exit status (it could not start).
  outcome<void> fail(const std::string& error, int64_t now_ms);
  // running -> complete with the exit status and profile. Returns whether the
  // exec succeeded (exit 0, no signal), i.e. whether its outputs should be collected.
  outcome<bool> finish(const exec_termination& how, int64_t now_ms);
  // After a successful finish: the collected outputs (result.files), or the
  // error of the first missing one (then the exec failed).
  void set_result(std::map<std::string, ExecResultFile> files);
  void set_output_error(const std::string& error);
  // running -> lost (the worker restarted while it ran).
  outcome<void> lose(int64_t now_ms);

 private:
  ExecInspect inspect_;
};

}  // namespace poolbus
