// exec_setup: the worker's exec flags and what they become: the sandbox of the
// process supervisor (pool-exec-init beside this binary, cgroups named after
// the pool), which user each alloc's execs run as, and a state directory no
// exec can read (docs/security.md).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <memory>
#include <string>

#include "actors/exec_api.hpp"
#include "schemas/outcome.hpp"

namespace poolbus {

// Per-alloc uids used when a root worker is given no --exec-uids / --exec-user.
constexpr int64_t default_exec_uid_first = 880000;
constexpr int64_t default_exec_uid_last = 889999;

struct exec_flags {
  std::string uids;                    // "FROM-TO"
  std::string user;                    // a user name or uid (root only): one user for every alloc
  int64_t log_cap_bytes = 64ll << 20;  // per log file
  int64_t floor_bytes = 256ll << 20;   // free space kept under the state dir
};

void add_exec_flags(CLI::App& app, exec_flags& flags);

// Makes `state_dir` and everything in it unreadable to execs: umask 077 for
// what the worker creates from now on, 0711 on the directory (an exec may pass
// through to its own working directory, not list), 0600 on the store's files.
outcome<void> protect_state_dir(const std::string& state_dir);

// The exec runtime of a worker: its process supervisor and users. Errors are
// the one-line reasons pool-worker prints before it exits 1.
outcome<exec_runtime> make_exec_runtime(const exec_flags& flags, const std::string& pool_id,
                                        const std::string& state_dir);

}  // namespace poolbus
