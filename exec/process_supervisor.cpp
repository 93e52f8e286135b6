#include "exec/process_supervisor.hpp"

#include "store/content_repository.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <set>
#include <sstream>

namespace poolbus {
namespace {

int64_t monotonic_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

int64_t ms_of(const timeval& tv) { return static_cast<int64_t>(tv.tv_sec) * 1000 + tv.tv_usec / 1000; }

int open_pidfd(int pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

// Fields of /proc/<pid>/stat after the "(comm)": state, ppid, pgrp, ..., as strings.
bool read_stat(int pid, std::vector<std::string>& fields) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  std::getline(in, line);
  auto close = line.rfind(')');
  if (close == std::string::npos) return false;
  std::istringstream rest(line.substr(close + 1));
  fields.clear();
  for (std::string f; rest >> f;) fields.push_back(std::move(f));
  return fields.size() > 22;
}
// Indexes into read_stat's fields (stat field number - 3).
constexpr size_t stat_state = 0, stat_pgrp = 2, stat_starttime = 19, stat_rss = 21;

// Calls visit(pid, fields) for every process in /proc.
template <class Visit>
void for_each_process(Visit visit) {
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return;
  std::vector<std::string> fields;
  while (auto* entry = ::readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || pid <= 0) continue;
    if (read_stat(static_cast<int>(pid), fields)) visit(static_cast<int>(pid), fields);
  }
  ::closedir(dir);
}

// argv[0] as execve wants it: a name without '/' is looked up in PATH.
outcome<std::string> resolve_program(const std::string& program, const std::string& path_var,
                                     const std::string& working_dir) {
  if (program.find('/') != std::string::npos) {
    std::string full = program.front() == '/' ? program : working_dir + "/" + program;
    if (::access(full.c_str(), X_OK) != 0)
      return make_pool_error(error_kind::invalid, "cannot run \"" + program + "\": " + std::strerror(errno));
    return full;
  }
  size_t start = 0;
  while (start <= path_var.size()) {
    size_t colon = path_var.find(':', start);
    if (colon == std::string::npos) colon = path_var.size();
    std::string dir = path_var.substr(start, colon - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + program;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
    start = colon + 1;
  }
  return make_pool_error(error_kind::invalid, "cannot run \"" + program + "\": program not found in PATH " + path_var);
}

bool write_text(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream all;
  all << in.rdbuf();
  return all.str();
}

std::vector<int> cgroup_members(const std::string& dir) {
  std::vector<int> pids;
  std::istringstream in(read_text(dir + "/cgroup.procs"));
  for (int pid; in >> pid;) pids.push_back(pid);
  return pids;
}

// The kernel's count of OOM kills in a v1 memory cgroup ("oom_kill N").
int64_t oom_kills(const std::string& memory_dir) {
  std::istringstream in(read_text(memory_dir + "/memory.oom_control"));
  for (std::string key; in >> key;) {
    int64_t value = 0;
    in >> value;
    if (key == "oom_kill") return value;
  }
  return 0;
}

int64_t free_bytes(const std::string& path) {
  struct statvfs vfs {};
  if (::statvfs(path.c_str(), &vfs) != 0) return -1;
  return static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize);
}

// Runs `argv` and waits for it (before the monitor thread exists, so nothing
// else reaps it); its exit code, or -1.
int run_and_wait(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

constexpr const char* cgroup_controllers[] = {"memory", "pids", "freezer"};

}  // namespace

process_supervisor::process_supervisor(sandbox_config sandbox) : sandbox_(std::move(sandbox)) {
  // Orphaned grandchildren of an exec come to us rather than to init, so
  // they are reaped here and a killed process tree leaves no zombie behind.
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
    spdlog::warn("process supervisor: cannot become a child subreaper: {}", std::strerror(errno));
  // Before the monitor thread exists: its wait4(-1) would take the probe's exit.
  pid_namespace_ = sandbox_.pid_namespace && run_and_wait({sandbox_.init_path, "--probe"}) == 0;
  if (!sandbox_.cgroup_name.empty())
    for (const char* controller : cgroup_controllers) {
      auto dir = sandbox_.cgroup_root + "/" + controller + "/" + sandbox_.cgroup_name;
      if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) continue;
      if (::access((dir + "/cgroup.procs").c_str(), W_OK) != 0) continue;
      cgroup_dirs_[controller] = dir;
      // Leftovers of an earlier run of this worker: nothing of them may live on.
      std::error_code ec;
      for (const auto& leaf : std::filesystem::directory_iterator(dir, ec))
        if (leaf.is_directory(ec)) {
          for (int pid : cgroup_members(leaf.path().string())) ::kill(pid, SIGKILL);
          stale_cgroups_.push_back(leaf.path().string());
        }
    }
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  monitor_ = std::thread([this] { monitor_loop(); });
}

process_supervisor::~process_supervisor() {
  std::vector<std::string> groups;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [pid, p] : processes_) groups.push_back(p.group);
  }
  // Kill what is left and wait (on the monitor thread's word) until it is gone.
  std::mutex gone_mutex;
  std::condition_variable gone_changed;
  size_t left = 0;
  std::sort(groups.begin(), groups.end());
  groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
  for (const auto& group : groups) {
    {
      std::lock_guard lock(gone_mutex);
      ++left;
    }
    bool pending = terminate_group(group, 500, [&] {
      std::lock_guard lock(gone_mutex);
      --left;
      gone_changed.notify_all();
    });
    if (!pending) {
      std::lock_guard lock(gone_mutex);
      --left;
    }
  }
  {
    std::unique_lock lock(gone_mutex);
    gone_changed.wait(lock, [&] { return left == 0; });
  }
  std::vector<group_kill> unfinished;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    unfinished = std::exchange(group_kills_, {});
  }
  wake();
  monitor_.join();
  // Nothing is left running: whoever still waits for a group may go on.
  for (auto& kill : unfinished)
    if (kill.on_gone) kill.on_gone();
  for (auto& [pid, p] : processes_) {
    if (p.pidfd >= 0) ::close(p.pidfd);
    if (p.status_fd >= 0) ::close(p.status_fd);
  }
  remove_cgroups_locked({});
  for (const auto& [controller, dir] : cgroup_dirs_) ::rmdir(dir.c_str());  // busy if another run shares it
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

bool process_supervisor::has_cgroup(const std::string& controller) const { return cgroup_dirs_.count(controller) > 0; }

std::string process_supervisor::describe() const {
  std::string text = pid_namespace_ ? "PID and mount namespace per exec" : "no PID namespace (not root, or refused)";
  text += has_cgroup("memory") ? "; memory limit by the kernel (cgroup v1 memory)"
                               : "; memory limit by the RSS watcher (sum of /proc RSS over the process group)";
  text += has_cgroup("pids") ? "; pids limit " + std::to_string(exec_pids_max) : "; no pids limit";
  text += has_cgroup("freezer") ? "; freeze-then-kill" : "";
  return text;
}

outcome<std::vector<std::string>> process_supervisor::make_cgroups(const process_spec& spec) {
  std::vector<std::string> dirs;
  if (cgroup_dirs_.empty()) return dirs;
  std::string leaf;
  {
    std::lock_guard lock(mutex_);
    leaf = "x" + std::to_string(++next_cgroup_);
  }
  auto undo = [&](const std::string& why) {
    for (const auto& d : dirs) ::rmdir(d.c_str());
    return make_pool_error(error_kind::internal, "cannot set up the exec's cgroup: " + why);
  };
  for (const auto& [controller, root] : cgroup_dirs_) {
    auto dir = root + "/" + leaf;
    if (::mkdir(dir.c_str(), 0755) != 0) return undo(std::strerror(errno));
    dirs.push_back(dir);
    if (controller == "pids" && !write_text(dir + "/pids.max", std::to_string(exec_pids_max))) return undo("pids.max");
    if (controller == "memory" && spec.mem_limit_bytes > 0) {
      if (!write_text(dir + "/memory.limit_in_bytes", std::to_string(spec.mem_limit_bytes)))
        return undo("memory.limit_in_bytes");
      write_text(dir + "/memory.memsw.limit_in_bytes", std::to_string(spec.mem_limit_bytes));  // no swap escape
    }
  }
  return dirs;
}

std::vector<std::string> process_supervisor::init_argv(const process_spec& spec, const std::string& program,
                                                       const std::map<std::string, std::string>& env,
                                                       const std::vector<std::string>& cgroups) const {
  std::vector<std::string> args{sandbox_.init_path};
  for (const auto& [name, value] : env) args.insert(args.end(), {"--env", name + "=" + value});
  if (pid_namespace_) args.push_back("--pidns");
  if (pid_namespace_ && !spec.tmp_dir.empty()) args.insert(args.end(), {"--tmp", spec.tmp_dir});
  if (spec.uid >= 0) args.insert(args.end(), {"--uid", std::to_string(spec.uid)});
  if (spec.gid >= 0) args.insert(args.end(), {"--gid", std::to_string(spec.gid)});
  if (spec.disk_limit_bytes > 0) args.insert(args.end(), {"--fsize", std::to_string(spec.disk_limit_bytes)});
  if (spec.log_cap_bytes > 0) args.insert(args.end(), {"--log-cap", std::to_string(spec.log_cap_bytes)});
  for (const auto& dir : cgroups) args.insert(args.end(), {"--cgroup", dir});
  args.push_back("--");
  args.push_back(program);
  args.insert(args.end(), spec.argv.begin(), spec.argv.end());
  return args;
}

void process_supervisor::kill_everything_locked(int pid, const tracked& p) {
  ::kill(-pid, SIGKILL);
  std::string freezer;
  for (const auto& dir : p.cgroups)
    if (dir.rfind(sandbox_.cgroup_root + "/freezer/", 0) == 0) freezer = dir;
  // Frozen, nothing in the cgroup can fork between the listing and the kill.
  if (!freezer.empty()) write_text(freezer + "/freezer.state", "FROZEN");
  for (const auto& dir : p.cgroups)
    for (int member : cgroup_members(dir)) ::kill(member, SIGKILL);
  if (!freezer.empty()) write_text(freezer + "/freezer.state", "THAWED");
}

void process_supervisor::remove_cgroups_locked(std::vector<std::string> dirs) {
  for (auto& d : stale_cgroups_) dirs.push_back(std::move(d));
  stale_cgroups_.clear();
  for (auto& d : dirs) {
    if (::rmdir(d.c_str()) == 0 || errno == ENOENT) continue;
    for (int member : cgroup_members(d)) ::kill(member, SIGKILL);
    stale_cgroups_.push_back(std::move(d));  // busy until its last member is reaped
  }
}

void process_supervisor::wake() {
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

size_t process_supervisor::running() const {
  std::lock_guard lock(mutex_);
  return processes_.size();
}

bool process_supervisor::has_group(const std::string& group) const {
  std::lock_guard lock(mutex_);
  for (const auto& [pid, p] : processes_)
    if (p.group == group) return true;
  return false;
}

outcome<int> process_supervisor::spawn(const process_spec& spec, exit_callback on_exit) {
  if (spec.argv.empty() || spec.argv.front().empty())
    return make_pool_error(error_kind::invalid, "cannot run an empty command");
  auto env = spec.env;
  if (!env.count("PATH")) env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  auto program = resolve_program(spec.argv.front(), env["PATH"], spec.working_dir);
  if (!program) return program.error();
  auto cgroups = make_cgroups(spec);
  if (!cgroups) return cgroups.error();

  // The init runs privileged: an empty environment (the command's comes as flags).
  auto args = init_argv(spec, *program, env, *cgroups);
  std::vector<char*> argv;
  for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  int status_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    std::lock_guard lock(mutex_);
    remove_cgroups_locked(*cgroups);
    return make_pool_error(error_kind::internal, std::string("cannot make a pipe: ") + std::strerror(errno));
  }

  // The log files belong to the worker (0600): the command writes them only
  // through pool-exec-init's pipes and cannot read another exec's.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, spec.stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, spec.stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, status_pipe[1], 3);
  posix_spawn_file_actions_addchdir_np(&actions, spec.working_dir.c_str());
  posix_spawn_file_actions_addclosefrom_np(&actions, 4);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Own process group (killed as a whole); every signal at its default, whatever
  // the worker's threads block (SIGTERM/SIGINT/SIGPIPE for the latch). The
  // signals the init forwards start blocked: one sent before its handlers are
  // in place waits for them (pool-exec-init unblocks them).
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t held, all;
  sigemptyset(&held);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) sigaddset(&held, sig);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &held);
  posix_spawnattr_setsigdefault(&attr, &all);

  pid_t pid = 0;
  int rc;
  {
    // Held from spawn to registration, so the monitor cannot reap the child
    // (and drop its exit) before it is known.
    std::lock_guard lock(mutex_);
    rc = ::posix_spawn(&pid, sandbox_.init_path.c_str(), &actions, &attr, argv.data(), envp);
    if (rc == 0) {
      tracked t;
      t.group = spec.group;
      t.mem_limit_bytes = spec.mem_limit_bytes;
      t.disk_root = spec.disk_root;
      t.disk_limit_bytes = spec.disk_limit_bytes;
      t.cgroups = *cgroups;
      t.on_exit = std::move(on_exit);
      t.pidfd = open_pidfd(pid);
      t.status_fd = status_pipe[0];
      processes_.emplace(pid, std::move(t));
    } else {
      ::close(status_pipe[0]);
      remove_cgroups_locked(*cgroups);
    }
  }
  ::close(status_pipe[1]);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0)
    return make_pool_error(error_kind::internal, "cannot start the exec sandbox: " + std::string(std::strerror(rc)));
  spdlog::debug("process supervisor: started {} as pid {} (group {})", spec.argv.front(), pid, spec.group);
  wake();
  return static_cast<int>(pid);
}

void process_supervisor::terminate(int pid, int64_t grace_ms) {
  {
    std::lock_guard lock(mutex_);
    auto it = processes_.find(pid);
    if (it == processes_.end()) return;
    it->second.killed = true;
    it->second.kill_at_ms = monotonic_ms() + grace_ms;
    ::kill(-pid, SIGTERM);
    ::kill(-pid, SIGCONT);
  }
  wake();
}

bool process_supervisor::terminate_group(const std::string& group, int64_t grace_ms, std::function<void()> on_gone) {
  {
    std::lock_guard lock(mutex_);
    auto kill_at = monotonic_ms() + grace_ms;
    group_kill kill;
    kill.group = group;
    for (auto& [pid, p] : processes_) {
      if (p.group != group) continue;
      p.killed = true;
      p.report_exit = false;
      // The monitor thread SIGKILLs at the deadline (an earlier one stands).
      if (p.kill_at_ms == 0 || p.kill_at_ms > kill_at) p.kill_at_ms = kill_at;
      kill.pgids.push_back(pid);
      ::kill(-pid, SIGTERM);
      ::kill(-pid, SIGCONT);
    }
    if (kill.pgids.empty()) return false;
    kill.give_up_at_ms = kill_at + sigkill_wait_ms;
    kill.on_gone = std::move(on_gone);
    group_kills_.push_back(std::move(kill));
  }
  spdlog::debug("process supervisor: terminating group {} (grace {} ms)", group, grace_ms);
  wake();
  return true;
}

std::vector<std::function<void()>> process_supervisor::settle_group_kills(std::vector<int>& member_fds,
                                                                          bool& unwatched) {
  std::vector<group_kill> kills;
  std::set<int> leaders;  // pgids whose leader is not yet reaped: its pidfd wakes the monitor
  {
    std::lock_guard lock(mutex_);
    if (group_kills_.empty()) return {};
    kills = std::exchange(group_kills_, {});
    for (const auto& [pid, p] : processes_) leaders.insert(pid);
  }
  // /proc is scanned unlocked: spawn need not wait for it.
  std::vector<std::function<void()>> gone;
  std::vector<group_kill> waiting;
  auto now = monotonic_ms();
  for (auto& kill : kills) {
    bool alive = false;
    std::vector<int> stragglers;  // members left after their leader was reaped
    for (int pgid : kill.pgids) {
      if (leaders.count(pgid))
        alive = true;
      else
        for (int pid : live_group_members(pgid)) stragglers.push_back(pid);
    }
    alive = alive || !stragglers.empty();
    if (alive && now < kill.give_up_at_ms) {
      for (int pid : stragglers) {
        int fd = open_pidfd(pid);
        if (fd >= 0)
          member_fds.push_back(fd);
        else
          unwatched = true;
      }
      waiting.push_back(std::move(kill));
      continue;
    }
    if (alive)
      spdlog::error("process supervisor: group {} survived SIGKILL; giving up on it", kill.group);
    else
      spdlog::debug("process supervisor: group {} is gone", kill.group);
    gone.push_back(std::move(kill.on_gone));
  }
  std::lock_guard lock(mutex_);
  for (auto& kill : waiting) group_kills_.push_back(std::move(kill));
  return gone;
}

std::vector<std::pair<process_supervisor::exit_callback, process_exit>> process_supervisor::reap_locked() {
  std::vector<std::pair<exit_callback, process_exit>> reports;
  for (;;) {
    int status = 0;
    struct rusage usage {};
    pid_t pid = ::wait4(-1, &status, WNOHANG, &usage);
    if (pid <= 0) break;
    auto it = processes_.find(pid);
    if (it == processes_.end()) continue;  // an orphaned grandchild: reaped, nothing to report
    process_exit report;
    report.pid = pid;
    report.exited = WIFEXITED(status);
    report.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
    report.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    auto& p = it->second;
    for (const auto& dir : p.cgroups)
      if (dir.rfind(sandbox_.cgroup_root + "/memory/", 0) == 0 && oom_kills(dir) > 0) p.oom = true;
    report.oom = p.oom;
    // RLIMIT_FSIZE (the alloc's disk) stopped a file from growing past it.
    report.disk = p.disk || (report.signal == SIGXFSZ && p.disk_limit_bytes > 0);
    report.killed = p.killed;
    char line[512];
    auto got = p.status_fd >= 0 ? ::read(p.status_fd, line, sizeof line - 1) : -1;
    if (got > 0) {
      std::string text(line, static_cast<size_t>(got));
      if (text.rfind("error: ", 0) == 0) report.error = text.substr(7, text.find('\n') - 7);
    }
    report.max_rss_bytes = static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
    report.cpu_user_ms = ms_of(usage.ru_utime);
    report.cpu_sys_ms = ms_of(usage.ru_stime);
    // The leader is gone: nothing of its group or its cgroups may outlive it.
    kill_everything_locked(pid, p);
    if (p.pidfd >= 0) ::close(p.pidfd);
    if (p.status_fd >= 0) ::close(p.status_fd);
    remove_cgroups_locked(p.cgroups);
    if (p.report_exit) reports.emplace_back(std::move(p.on_exit), report);
    processes_.erase(it);
  }
  return reports;
}

void process_supervisor::watch_memory_locked() {
  bool limited = false;
  for (const auto& [pid, p] : processes_) limited = limited || p.mem_limit_bytes > 0;
  if (!limited) return;
  if (has_cgroup("memory")) {
    // The kernel enforces the limit; once it had to kill, the whole exec goes
    // (one outcome: signal 9, "oom"), not just the process it picked.
    for (auto& [pid, p] : processes_) {
      if (p.mem_limit_bytes <= 0 || p.oom) continue;
      for (const auto& dir : p.cgroups)
        if (dir.rfind(cgroup_dirs_.at("memory"), 0) == 0 && oom_kills(dir) > 0) {
          spdlog::info("process supervisor: pid {} went over its {} bytes: killed (oom)", pid, p.mem_limit_bytes);
          p.oom = true;
          kill_everything_locked(pid, p);
        }
    }
    return;
  }
  static const long page = ::sysconf(_SC_PAGESIZE);
  std::map<int, int64_t> rss_by_group;
  for_each_process([&](int, const std::vector<std::string>& fields) {
    int pgrp = std::atoi(fields[stat_pgrp].c_str());
    if (processes_.count(pgrp)) rss_by_group[pgrp] += std::atoll(fields[stat_rss].c_str()) * page;
  });
  for (auto& [pid, p] : processes_) {
    if (p.mem_limit_bytes <= 0 || p.oom) continue;
    auto rss = rss_by_group[pid];
    if (rss <= p.mem_limit_bytes) continue;
    spdlog::info("process supervisor: pid {} group uses {} bytes, over its {}: killed (oom)", pid, rss,
                 p.mem_limit_bytes);
    p.oom = true;
    ::kill(-pid, SIGKILL);
  }
}

void process_supervisor::watch_disk_locked() {
  auto now = monotonic_ms();
  if (now < next_disk_sample_ms_) return;
  next_disk_sample_ms_ = now + disk_sample_ms;
  bool below_floor = false;
  if (sandbox_.floor_bytes > 0 && !processes_.empty()) {
    auto left = free_bytes(sandbox_.floor_path);
    below_floor = left >= 0 && left < sandbox_.floor_bytes;
    if (below_floor)
      spdlog::warn("process supervisor: {} bytes free under {}, below the floor of {}: stopping every exec", left,
                   sandbox_.floor_path, sandbox_.floor_bytes);
  }
  std::map<std::string, int64_t> usage;  // by alloc directory, measured once per sample
  for (auto& [pid, p] : processes_) {
    if (p.disk || (p.disk_limit_bytes <= 0 && !below_floor)) continue;
    bool over = below_floor;
    if (!over && p.disk_limit_bytes > 0 && !p.disk_root.empty()) {
      auto found = usage.find(p.disk_root);
      if (found == usage.end()) found = usage.emplace(p.disk_root, bytes_under(p.disk_root, p.disk_limit_bytes)).first;
      over = found->second > p.disk_limit_bytes;
      if (over)
        spdlog::info("process supervisor: pid {}: its alloc holds over {} bytes on disk: killed (disk)", pid,
                     p.disk_limit_bytes);
    }
    if (!over) continue;
    p.disk = true;
    kill_everything_locked(pid, p);
  }
}

void process_supervisor::monitor_loop() {
  // Pidfds of group-kill stragglers (members whose leader is reaped), and
  // whether one could not be watched: waited on by the next poll only.
  std::vector<int> member_fds;
  bool unwatched = false;
  for (;;) {
    std::vector<pollfd> fds{{wake_fd_, POLLIN, 0}};
    for (int fd : member_fds) fds.push_back({fd, POLLIN, 0});
    int timeout_ms = -1;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
      bool limited = false, missing_pidfd = false, disk_watched = sandbox_.floor_bytes > 0;
      int64_t next_kill = 0;
      for (const auto& [pid, p] : processes_) {
        if (p.pidfd >= 0)
          fds.push_back({p.pidfd, POLLIN, 0});
        else
          missing_pidfd = true;
        limited = limited || p.mem_limit_bytes > 0;
        disk_watched = disk_watched || p.disk_limit_bytes > 0;
        if (p.kill_at_ms > 0 && (next_kill == 0 || p.kill_at_ms < next_kill)) next_kill = p.kill_at_ms;
      }
      for (const auto& kill : group_kills_)
        if (next_kill == 0 || kill.give_up_at_ms < next_kill) next_kill = kill.give_up_at_ms;
      if (!processes_.empty()) timeout_ms = 1000;  // orphaned grandchildren are reaped at least this often
      if (!processes_.empty() && disk_watched) timeout_ms = static_cast<int>(disk_sample_ms);
      if (!stale_cgroups_.empty()) timeout_ms = 100;  // a busy cgroup: try its rmdir again soon
      if (limited || missing_pidfd) timeout_ms = static_cast<int>(rss_sample_ms);
      if (unwatched) timeout_ms = 10;  // a group-kill straggler without a pidfd: look again soon
      if (next_kill > 0)
        timeout_ms =
            std::max<int>(0, std::min<int64_t>(timeout_ms < 0 ? 1000 : timeout_ms, next_kill - monotonic_ms()));
    }
    ::poll(fds.data(), fds.size(), timeout_ms);
    for (int fd : member_fds) ::close(fd);
    member_fds.clear();
    unwatched = false;
    uint64_t drained;
    [[maybe_unused]] auto n = ::read(wake_fd_, &drained, sizeof drained);
    std::vector<std::pair<exit_callback, process_exit>> reports;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
      reports = reap_locked();
      auto now = monotonic_ms();
      for (auto& [pid, p] : processes_)
        if (p.kill_at_ms > 0 && now >= p.kill_at_ms) {
          kill_everything_locked(pid, p);
          p.kill_at_ms = 0;
        }
      watch_memory_locked();
      watch_disk_locked();
      if (!stale_cgroups_.empty()) remove_cgroups_locked({});
    }
    for (auto& [callback, report] : reports)
      if (callback) callback(report);
    auto gone = settle_group_kills(member_fds, unwatched);
    if (gone.empty()) continue;
    {
      // Members that died since the reap above are zombies (our children, as
      // subreaper): reap them before telling anyone the group is gone.
      std::lock_guard lock(mutex_);
      reports = reap_locked();
    }
    for (auto& [callback, report] : reports)
      if (callback) callback(report);
    for (auto& on_gone : gone)
      if (on_gone) on_gone();
  }
  for (int fd : member_fds) ::close(fd);
}

int64_t process_supervisor::start_time_of(int pid) {
  std::vector<std::string> fields;
  if (!read_stat(pid, fields)) return -1;
  return std::atoll(fields[stat_starttime].c_str());
}

bool process_supervisor::kill_stale_group(int pid, int64_t start_time) {
  if (pid <= 0 || start_time < 0 || start_time_of(pid) != start_time) return false;
  return ::kill(-pid, SIGKILL) == 0;
}

std::vector<int> process_supervisor::live_group_members(int pgid) {
  std::vector<int> members;
  for_each_process([&](int pid, const std::vector<std::string>& fields) {
    if (std::atoi(fields[stat_pgrp].c_str()) == pgid && fields[stat_state] != "Z") members.push_back(pid);
  });
  return members;
}

}  // namespace poolbus
