// process_supervisor: runs exec commands as child processes (posix_spawn, each
// the leader of its own process group, stdin /dev/null, stdout/stderr to
// files), reaps them on its own monitor thread (pidfd + wait4 for the kernel's
// rusage), enforces memory limits with an RSS watcher over each process group,
// and kills whole groups (SIGTERM, grace, SIGKILL). No CAF: exits are reported
// through a callback, which the exec actor turns into a message. Nothing here
// blocks its caller: waits and SIGKILL escalation happen on the monitor thread.
//
// Invariant: every spawned process's exit is reported exactly once, and once
// its leader exits nothing of its process group is left running. The worker
// is made a child subreaper, so orphaned grandchildren are reaped here too.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "schemas/outcome.hpp"

namespace poolbus {

struct process_spec {
  std::vector<std::string> argv;            // argv[0]: a path, or a name looked up in env's PATH
  std::map<std::string, std::string> env;   // the whole environment (PATH defaulted when absent)
  std::string working_dir;                  // absolute
  std::string stdout_path;                  // absolute; created/truncated
  std::string stderr_path;
  std::string group;                        // who owns it (an alloc): terminate_group kills by this
  int64_t mem_limit_bytes = 0;              // 0 = no limit
};

struct process_exit {
  int pid = 0;
  bool exited = false;  // exit_code valid; else killed by `signal`
  int exit_code = 0;
  int signal = 0;
  bool oom = false;     // the RSS watcher stopped it
  bool killed = false;  // terminate/terminate_group stopped it
  int64_t max_rss_bytes = 0;
  int64_t cpu_user_ms = 0;
  int64_t cpu_sys_ms = 0;

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, process_exit& x) {
    return f(x.pid, x.exited, x.exit_code, x.signal, x.oom, x.killed, x.max_rss_bytes, x.cpu_user_ms, x.cpu_sys_ms);
  }
};

class process_supervisor {
 public:
  using exit_callback = std::function<void(const process_exit&)>;

  // How often the RSS watcher samples /proc while a limited process runs.
  static constexpr int64_t rss_sample_ms = 50;
  // What enforces resources.mem (for the README and logs).
  static constexpr const char* memory_enforcement = "rss-watcher (sum of /proc/<pid>/stat RSS over the process group)";

  process_supervisor();
  ~process_supervisor();  // kills every process still running, then stops the monitor
  process_supervisor(const process_supervisor&) = delete;
  process_supervisor& operator=(const process_supervisor&) = delete;

  // Starts the process; `on_exit` runs once, on the monitor thread, when it
  // has exited. Errors: `invalid` when the
  // program cannot be found or run (the message names it), `internal` else.
  outcome<int> spawn(const process_spec& spec, exit_callback on_exit);

  // SIGTERM to the process's group now, SIGKILL after grace_ms; returns at once.
  void terminate(int pid, int64_t grace_ms);
  // Every process of `group`: SIGTERM now, SIGKILL after grace_ms (by the
  // monitor thread); returns at once. `on_gone` runs once, on the monitor
  // thread, when none of their process groups has a live member and the dead
  // are reaped (or, should something survive SIGKILL, 2 s after the grace,
  // with an error logged). Returns false, and never calls on_gone, when the
  // group has no process. Their exits are not reported (the group's owner is
  // going away and tells its execs itself).
  bool terminate_group(const std::string& group, int64_t grace_ms, std::function<void()> on_gone);

  size_t running() const;
  // Whether a process of `group` is still tracked (running, or not yet reaped).
  bool has_group(const std::string& group) const;
  // /proc/<pid>/stat start time (clock ticks since boot), -1 when gone.
  static int64_t start_time_of(int pid);
  // SIGKILLs process group `pid` when its leader is still the process that
  // started at `start_time` (a record from an earlier worker run).
  static bool kill_stale_group(int pid, int64_t start_time);
  // Live (non-zombie) members of process group `pgid`.
  static std::vector<int> live_group_members(int pgid);

 private:
  struct tracked {
    std::string group;
    int64_t mem_limit_bytes = 0;
    exit_callback on_exit;
    int pidfd = -1;
    bool oom = false;
    bool killed = false;
    bool report_exit = true;
    int64_t kill_at_ms = 0;  // 0 = no SIGKILL scheduled
  };
  // A terminate_group waiting for its process groups to empty.
  struct group_kill {
    std::string group;
    std::vector<int> pgids;
    int64_t give_up_at_ms = 0;
    std::function<void()> on_gone;
  };
  // How long a group may outlive its SIGKILL before on_gone runs regardless.
  static constexpr int64_t sigkill_wait_ms = 2000;

  void monitor_loop();
  // The group kills whose groups are empty (their on_gone, to call unlocked);
  // for the rest, pidfds of their live members to wait on (`unwatched` when a
  // member has none, so the wait must be short).
  std::vector<std::function<void()>> settle_group_kills(std::vector<int>& member_fds, bool& unwatched);
  // Reaps every child that exited (wait4 WNOHANG); returns the reports to deliver.
  std::vector<std::pair<exit_callback, process_exit>> reap_locked();
  void watch_memory_locked();
  void wake();

  mutable std::mutex mutex_;
  std::map<int, tracked> processes_;  // by pid (= pgid)
  std::vector<group_kill> group_kills_;
  int wake_fd_ = -1;
  bool stopping_ = false;
  std::thread monitor_;
};

}  // namespace poolbus
