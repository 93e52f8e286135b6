// process_supervisor: runs exec commands as child processes, each under
// pool-exec-init (apps/pool-exec-init: its own user, PID and mount namespace,
// capped logs, bounded file size; posix_spawn'ed as the leader of its own
// process group, stdin /dev/null), in cgroups of its own where the machine has
// writable v1 hierarchies (memory limit the kernel enforces, pids limit,
// freezer). It reaps them on its own monitor thread (pidfd + wait4 for the
// kernel's rusage), watches memory (the cgroup's OOM count, or an RSS sum over
// the process group where there is no memory cgroup) and disk (the alloc's
// directory against its limit, and the worker's free-space floor), and kills
// whole groups (SIGTERM, grace, SIGKILL). No CAF: exits are reported through a
// callback, which the exec actor turns into a message. Nothing here blocks its
// caller: waits and SIGKILL escalation happen on the monitor thread.
//
// Invariant: every spawned process's exit is reported exactly once, and once
// its leader exits nothing of it is left running: not its process group, not
// its PID namespace, not its cgroup. The worker is made a child subreaper, so
// orphaned grandchildren are reaped here too.
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

// How execs are confined, fixed when the worker starts.
struct sandbox_config {
  std::string init_path;      // pool-exec-init
  bool pid_namespace = true;  // wanted; off where the kernel refuses (the probe says why)
  std::string cgroup_name;    // our subtree in each v1 hierarchy (e.g. "poolbus-w1"); empty: none
  std::string cgroup_root = "/sys/fs/cgroup";
  std::string floor_path;   // the worker's state dir: its filesystem keeps floor_bytes free
  int64_t floor_bytes = 0;  // 0 = no floor
};

struct process_spec {
  std::vector<std::string> argv;           // argv[0]: a path, or a name looked up in env's PATH
  std::map<std::string, std::string> env;  // the whole environment (PATH defaulted when absent)
  std::string working_dir;                 // absolute
  std::string stdout_path;                 // absolute; created/truncated
  std::string stderr_path;
  std::string group;             // who owns it (an alloc): terminate_group kills by this
  int64_t mem_limit_bytes = 0;   // 0 = no limit
  int64_t uid = -1, gid = -1;    // the command's user and group; -1 = the worker's
  std::string tmp_dir;           // mounted on /tmp and /var/tmp (with a PID namespace)
  int64_t log_cap_bytes = 0;     // per log file; 0 = no cap
  std::string disk_root;         // the alloc's directory: all it writes counts here
  int64_t disk_limit_bytes = 0;  // bound on disk_root and on any one file; 0 = none
};

struct process_exit {
  int pid = 0;
  bool exited = false;  // exit_code valid; else killed by `signal`
  int exit_code = 0;
  int signal = 0;
  bool oom = false;     // over its memory: the kernel (cgroup) or the RSS watcher stopped it
  bool disk = false;    // its alloc wrote more than its disk, or the worker's floor was reached
  bool killed = false;  // terminate/terminate_group stopped it
  std::string error;    // the sandbox could not start the command (no exit status then)
  int64_t max_rss_bytes = 0;
  int64_t cpu_user_ms = 0;
  int64_t cpu_sys_ms = 0;

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, process_exit& x) {
    return f(x.pid, x.exited, x.exit_code, x.signal, x.oom, x.disk, x.killed, x.error, x.max_rss_bytes, x.cpu_user_ms,
             x.cpu_sys_ms);
  }
};

class process_supervisor {
 public:
  using exit_callback = std::function<void(const process_exit&)>;

  // How often memory (the cgroup's OOM count, or the RSS sum) is sampled while a limited process runs.
  static constexpr int64_t rss_sample_ms = 50;
  // How often the alloc directories of running execs are measured against their disk.
  static constexpr int64_t disk_sample_ms = 500;
  // Processes one exec may have at once (pids cgroup): a fork bomb stops there.
  static constexpr int64_t exec_pids_max = 4096;

  explicit process_supervisor(sandbox_config sandbox);
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

  // One line for the worker's start-up log: what confines the execs here.
  std::string describe() const;
  bool pid_namespaces() const { return pid_namespace_; }
  bool has_cgroup(const std::string& controller) const;

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
    std::string disk_root;
    int64_t disk_limit_bytes = 0;
    std::vector<std::string> cgroups;  // its own directory in each hierarchy we use
    exit_callback on_exit;
    int pidfd = -1;
    int status_fd = -1;  // pool-exec-init's "error: ..." line, if any
    bool oom = false;
    bool disk = false;
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
  // The sandbox's cgroup directories for a new process (limits written), or an error.
  outcome<std::vector<std::string>> make_cgroups(const process_spec& spec);
  std::vector<std::string> init_argv(const process_spec& spec, const std::string& program,
                                     const std::map<std::string, std::string>& env,
                                     const std::vector<std::string>& cgroups) const;
  // SIGKILL to the process group and to everything in its cgroups (frozen first).
  void kill_everything_locked(int pid, const tracked& p);
  // Removes a finished process's cgroups (retried later while they are busy).
  void remove_cgroups_locked(std::vector<std::string> dirs);
  void watch_disk_locked();
  // The group kills whose groups are empty (their on_gone, to call unlocked);
  // for the rest, pidfds of their live members to wait on (`unwatched` when a
  // member has none, so the wait must be short).
  std::vector<std::function<void()>> settle_group_kills(std::vector<int>& member_fds, bool& unwatched);
  // Reaps every child that exited (wait4 WNOHANG); returns the reports to deliver.
  std::vector<std::pair<exit_callback, process_exit>> reap_locked();
  void watch_memory_locked();
  void wake();

  sandbox_config sandbox_;
  bool pid_namespace_ = false;
  std::map<std::string, std::string> cgroup_dirs_;  // controller -> our subtree
  uint64_t next_cgroup_ = 0;
  std::vector<std::string> stale_cgroups_;  // to rmdir once empty
  int64_t next_disk_sample_ms_ = 0;

  mutable std::mutex mutex_;
  std::map<int, tracked> processes_;  // by pid (= pgid)
  std::vector<group_kill> group_kills_;
  int wake_fd_ = -1;
  bool stopping_ = false;
  std::thread monitor_;
};

}  // namespace poolbus
