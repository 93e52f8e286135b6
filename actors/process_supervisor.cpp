#include "actors/process_supervisor.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstring>
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
      return make_pool_error(error_kind::invalid,
                             "cannot run \"" + program + "\": " + std::strerror(errno));
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

}  // namespace

process_supervisor::process_supervisor() {
  // Orphaned grandchildren of an exec come to us rather than to init, so
  // they are reaped here and a killed process tree leaves no zombie behind.
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
    spdlog::warn("process supervisor: cannot become a child subreaper: {}", std::strerror(errno));
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
    { std::lock_guard lock(gone_mutex); ++left; }
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
  for (auto& [pid, p] : processes_)
    if (p.pidfd >= 0) ::close(p.pidfd);
  if (wake_fd_ >= 0) ::close(wake_fd_);
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

  std::vector<char*> argv;
  for (const auto& arg : spec.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (const auto& [name, value] : env) env_strings.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, spec.stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, spec.stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addchdir_np(&actions, spec.working_dir.c_str());
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Own process group (killed as a whole); no signal blocked or ignored, whatever
  // the worker's threads block (they block SIGTERM/SIGINT/SIGPIPE for the latch).
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);

  pid_t pid = 0;
  int rc;
  {
    // Held from spawn to registration, so the monitor cannot reap the child
    // (and drop its exit) before it is known.
    std::lock_guard lock(mutex_);
    rc = ::posix_spawn(&pid, program->c_str(), &actions, &attr, argv.data(), envp.data());
    if (rc == 0) {
      tracked t;
      t.group = spec.group;
      t.mem_limit_bytes = spec.mem_limit_bytes;
      t.on_exit = std::move(on_exit);
      t.pidfd = open_pidfd(pid);
      processes_.emplace(pid, std::move(t));
    }
  }
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    auto kind = (rc == ENOENT || rc == EACCES || rc == ENOEXEC || rc == E2BIG || rc == ENOTDIR || rc == ELOOP)
                    ? error_kind::invalid
                    : error_kind::internal;
    return make_pool_error(kind, "cannot run \"" + spec.argv.front() + "\": " + std::strerror(rc));
  }
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

bool process_supervisor::terminate_group(const std::string& group, int64_t grace_ms,
                                         std::function<void()> on_gone) {
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
      if (leaders.count(pgid)) alive = true;
      else
        for (int pid : live_group_members(pgid)) stragglers.push_back(pid);
    }
    alive = alive || !stragglers.empty();
    if (alive && now < kill.give_up_at_ms) {
      for (int pid : stragglers) {
        int fd = open_pidfd(pid);
        if (fd >= 0) member_fds.push_back(fd);
        else unwatched = true;
      }
      waiting.push_back(std::move(kill));
      continue;
    }
    if (alive) spdlog::error("process supervisor: group {} survived SIGKILL; giving up on it", kill.group);
    else spdlog::debug("process supervisor: group {} is gone", kill.group);
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
    report.oom = it->second.oom;
    report.killed = it->second.killed;
    report.max_rss_bytes = static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
    report.cpu_user_ms = ms_of(usage.ru_utime);
    report.cpu_sys_ms = ms_of(usage.ru_stime);
    // The leader is gone: nothing of its group may outlive it.
    ::kill(-pid, SIGKILL);
    if (it->second.pidfd >= 0) ::close(it->second.pidfd);
    if (it->second.report_exit) reports.emplace_back(std::move(it->second.on_exit), report);
    processes_.erase(it);
  }
  return reports;
}

void process_supervisor::watch_memory_locked() {
  bool limited = false;
  for (const auto& [pid, p] : processes_) limited = limited || p.mem_limit_bytes > 0;
  if (!limited) return;
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
      bool limited = false, missing_pidfd = false;
      int64_t next_kill = 0;
      for (const auto& [pid, p] : processes_) {
        if (p.pidfd >= 0) fds.push_back({p.pidfd, POLLIN, 0});
        else missing_pidfd = true;
        limited = limited || p.mem_limit_bytes > 0;
        if (p.kill_at_ms > 0 && (next_kill == 0 || p.kill_at_ms < next_kill)) next_kill = p.kill_at_ms;
      }
      for (const auto& kill : group_kills_)
        if (next_kill == 0 || kill.give_up_at_ms < next_kill) next_kill = kill.give_up_at_ms;
      if (!processes_.empty()) timeout_ms = 1000;  // orphaned grandchildren are reaped at least this often
      if (limited || missing_pidfd) timeout_ms = static_cast<int>(rss_sample_ms);
      if (unwatched) timeout_ms = 10;  // a group-kill straggler without a pidfd: look again soon
      if (next_kill > 0)
        timeout_ms = std::max<int>(0, std::min<int64_t>(timeout_ms < 0 ? 1000 : timeout_ms, next_kill - monotonic_ms()));
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
          ::kill(-pid, SIGKILL);
          p.kill_at_ms = 0;
        }
      watch_memory_locked();
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
