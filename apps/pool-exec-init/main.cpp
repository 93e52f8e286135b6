// pool-exec-init: the sandbox every exec runs in, started by the worker's
// process supervisor (exec/process_supervisor) as the leader of the exec's
// process group. It is its own small program, not code after fork() in the
// multi-threaded worker, so it may allocate, log and wait like any program.
//
//   pool-exec-init [--pidns] [--uid N --gid N] [--fsize BYTES] [--log-cap BYTES]
//                  [--cgroup DIR]... [--tmp DIR] [--env NAME=VALUE]...
//                  -- PROGRAM ARGV0 [ARG...]
//
// fd 1 and 2 are the exec's log files, fd 3 the supervisor's status pipe (one
// line "error: ..." when the command could not be started), and the working
// directory is the exec's. The command's environment comes as --env flags:
// this program itself runs as root with an empty environment, so a client's
// LD_PRELOAD or LD_LIBRARY_PATH never reaches a privileged process.
//
// What it guarantees (docs/security.md):
// - the command runs as --uid/--gid with no supplementary groups, with every
//   file it writes bounded by --fsize (RLIMIT_FSIZE);
// - with --pidns it is in a PID and mount namespace of its own, whose init
//   (this program's child) kills everything left in it when the command ends
//   or when this process dies (PR_SET_PDEATHSIG): nothing escapes, setsid or
//   not; /proc there shows only the namespace, /tmp and /var/tmp are --tmp;
// - its stdout/stderr pass through pipes copied here into the log files, at
//   most --log-cap bytes each, so no exec can fill a disk with its logs;
// - SIGTERM/SIGINT/SIGHUP sent to this process reach the command;
// - this process exits as the command did (its code, or its signal).
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <string>
#include <vector>

namespace {

constexpr int status_fd = 3;
constexpr size_t copy_chunk = 1 << 16;
// How often the log copier checks whether the command has ended, and how long it
// drains the pipes after that (twice) before it gives up on a holder.
constexpr int child_check_ms = 100;
constexpr int drain_after_exit_ms = 100;

struct options {
  bool pidns = false;
  bool probe = false;
  long uid = -1, gid = -1;
  int64_t fsize = 0;    // 0 = unlimited
  int64_t log_cap = 0;  // 0 = unlimited
  std::vector<std::string> cgroups;
  std::string tmp;
  std::string program;
  std::vector<char*> argv;  // null-terminated
  std::vector<char*> env;   // null-terminated
};

void report(const std::string& line) {
  std::string text = line + "\n";
  [[maybe_unused]] auto n = ::write(status_fd, text.data(), text.size());
}

[[noreturn]] void fail(const std::string& what) {
  report("error: " + what);
  std::fprintf(stderr, "pool-exec-init: %s\n", what.c_str());
  _exit(127);
}

std::string errno_text(const std::string& doing) { return doing + ": " + std::strerror(errno); }

int64_t number(const char* text, const char* flag) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < 0) fail(std::string("bad number for ") + flag);
  return v;
}

options parse(int argc, char** argv) {
  options o;
  int i = 1;
  auto value = [&](const char* flag) -> char* {
    if (i + 1 >= argc) fail(std::string(flag) + " needs a value");
    return argv[++i];
  };
  for (; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") break;
    if (a == "--pidns")
      o.pidns = true;
    else if (a == "--probe")
      o.probe = true;
    else if (a == "--uid")
      o.uid = number(value("--uid"), "--uid");
    else if (a == "--gid")
      o.gid = number(value("--gid"), "--gid");
    else if (a == "--fsize")
      o.fsize = number(value("--fsize"), "--fsize");
    else if (a == "--log-cap")
      o.log_cap = number(value("--log-cap"), "--log-cap");
    else if (a == "--cgroup")
      o.cgroups.push_back(value("--cgroup"));
    else if (a == "--tmp")
      o.tmp = value("--tmp");
    else if (a == "--env")
      o.env.push_back(value("--env"));
    else
      fail("unknown argument " + a);
  }
  if (o.probe) return o;
  if (i + 2 >= argc) fail("usage: pool-exec-init [options] -- PROGRAM ARGV0 [ARG...]");
  o.program = argv[i + 1];
  for (int j = i + 2; j < argc; ++j) o.argv.push_back(argv[j]);
  o.argv.push_back(nullptr);
  o.env.push_back(nullptr);
  return o;
}

void join_cgroups(const options& o) {
  auto pid = std::to_string(::getpid());
  for (const auto& dir : o.cgroups) {
    int fd = ::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, pid.data(), pid.size()) < 0) fail(errno_text("join cgroup " + dir));
    ::close(fd);
  }
}

// In the new mount namespace (as its root): a /proc of this PID namespace only,
// and the alloc's own temp directory on /tmp and /var/tmp.
void set_up_mounts(const options& o) {
  // The temp dir may itself lie under /tmp: hold it before anything is mounted there.
  int tmp = o.tmp.empty() ? -1 : ::open(o.tmp.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (!o.tmp.empty() && tmp < 0) fail(errno_text("open the alloc's tmp"));
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) fail(errno_text("make / private"));
  if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) fail(errno_text("mount /proc"));
  if (tmp < 0) return;
  auto source = "/proc/self/fd/" + std::to_string(tmp);
  for (const char* target : {"/tmp", "/var/tmp"}) {
    struct stat st {};
    if (::stat(target, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (::mount(source.c_str(), target, nullptr, MS_BIND, nullptr) != 0)
      fail(errno_text(std::string("bind ") + target));
  }
  ::close(tmp);
}

// The command itself: drop to its user, bound its files, and exec.
[[noreturn]] void run_command(const options& o, int out, int err) {
  if (::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) fail(errno_text("dup2"));
  if (out > 2) ::close(out);
  if (err > 2) ::close(err);
  ::fcntl(status_fd, F_SETFD, FD_CLOEXEC);  // the command cannot write status lines
  if (o.fsize > 0) {
    rlimit limit{static_cast<rlim_t>(o.fsize), static_cast<rlim_t>(o.fsize)};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) fail(errno_text("setrlimit FSIZE"));
  }
  if (o.gid >= 0) {
    if (::setgroups(0, nullptr) != 0) fail(errno_text("setgroups"));
    if (::setgid(static_cast<gid_t>(o.gid)) != 0) fail(errno_text("setgid"));
  }
  if (o.uid >= 0 && ::setuid(static_cast<uid_t>(o.uid)) != 0) fail(errno_text("setuid"));
  ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  // Default actions first: a signal held pending since the start acts on unblock.
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE, SIGCHLD}) ::signal(sig, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execve(o.program.c_str(), o.argv.data(), o.env.data());
  fail(errno_text("cannot run \"" + o.program + "\""));
}

volatile sig_atomic_t forward_to = 0;  // whom a caught signal goes to (-1: everything in the namespace)

void forward(int sig) {
  if (forward_to != 0) ::kill(forward_to, sig);
}

constexpr int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

sigset_t forwarded_set() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : forwarded) sigaddset(&set, sig);
  return set;
}

// Held from the start until forward_signals: a SIGTERM that comes before the
// handlers (or, to a namespace's PID 1, before it has one) waits instead of
// being lost; PID 1 ignores a default-action signal from its parent namespace.
void hold_signals() {
  auto set = forwarded_set();
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
}

void forward_signals() {
  struct sigaction sa {};
  sa.sa_handler = forward;
  sigemptyset(&sa.sa_mask);
  for (int sig : forwarded) ::sigaction(sig, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  auto set = forwarded_set();
  ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
}

// The namespace's init (PID 1): runs the command, reaps everything, and when the
// command ends kills the rest of the namespace; hands the command's wait status
// to its parent through `status_out`.
[[noreturn]] void namespace_init(const options& o, int out, int err, int status_out) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  set_up_mounts(o);
  pid_t command = ::fork();
  if (command < 0) fail(errno_text("fork"));
  if (command == 0) {
    ::close(status_out);
    run_command(o, out, err);
  }
  ::close(out);
  ::close(err);
  forward_to = -1;  // from PID 1, kill(-1) reaches every other process of the namespace
  forward_signals();
  int command_status = 0;
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0 && errno == EINTR) continue;
    if (pid < 0) break;  // ECHILD: the namespace is empty
    if (pid == command) {
      command_status = status;
      ::kill(-1, SIGKILL);
    }
  }
  [[maybe_unused]] auto n = ::write(status_out, &command_status, sizeof command_status);
  _exit(0);
}

// Copies both pipes into the log files (fd 1 and 2), each up to the cap, until
// both are closed, or until shortly after `child` has ended (without a PID
// namespace, a process that left the group may hold a pipe open for ever).
// Output past the cap is read and dropped, after one notice. Returns the
// child's wait status.
int copy_logs(int out_pipe, int err_pipe, int64_t cap, pid_t child) {
  struct stream {
    int in, out;
    int64_t written = 0;
    bool capped = false;
  } streams[2] = {{out_pipe, 1}, {err_pipe, 2}};
  std::vector<char> buffer(copy_chunk);
  int status = 0;
  bool reaped = false;
  int after_exit_polls = 0;  // polls of drain_after_exit_ms once the child has ended
  for (;;) {
    if (!reaped) {
      pid_t got = ::waitpid(child, &status, WNOHANG);
      reaped = got == child;
    }
    pollfd fds[2];
    nfds_t n = 0;
    for (auto& s : streams)
      if (s.in >= 0) fds[n++] = {s.in, POLLIN, 0};
    if (n == 0 || (reaped && after_exit_polls++ >= 2)) break;
    int ready = ::poll(fds, n, reaped ? drain_after_exit_ms : child_check_ms);
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    for (auto& s : streams) {
      if (s.in < 0) continue;
      bool readable = false;
      for (nfds_t i = 0; i < n; ++i)
        if (fds[i].fd == s.in && fds[i].revents != 0) readable = true;
      if (!readable) continue;
      auto got = ::read(s.in, buffer.data(), buffer.size());
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (got <= 0) {
        ::close(s.in);
        s.in = -1;
        continue;
      }
      int64_t room = cap > 0 ? cap - s.written : got;
      int64_t keep = std::min<int64_t>(got, std::max<int64_t>(room, 0));
      for (int64_t done = 0; done < keep;) {
        auto w = ::write(s.out, buffer.data() + done, static_cast<size_t>(keep - done));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) break;  // the disk refused: keep draining, never block the command
        done += w;
      }
      s.written += keep;
      if (keep < got && !s.capped) {
        s.capped = true;
        std::string notice = "\n[pool-exec-init: log capped at " + std::to_string(cap) + " bytes]\n";
        [[maybe_unused]] auto w = ::write(s.out, notice.data(), notice.size());
      }
    }
  }
  while (!reaped) {
    pid_t got = ::waitpid(child, &status, 0);
    reaped = got == child || (got < 0 && errno != EINTR);
  }
  return status;
}

// Exits as the command did: its exit code, or the same signal.
[[noreturn]] void exit_like(int status) {
  if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
  int sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
  ::signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
  ::prctl(PR_SET_DUMPABLE, 0);  // no core file of the command's in the exec directory
  rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  ::kill(::getpid(), sig);
  _exit(128 + sig);
}

int probe() {
  if (::unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) {
    std::fprintf(stderr, "%s\n", errno_text("unshare(CLONE_NEWPID|CLONE_NEWNS)").c_str());
    return 1;
  }
  pid_t child = ::fork();
  if (child < 0) return 1;
  if (child == 0) {
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
      std::fprintf(stderr, "%s\n", errno_text("mount /proc in a new namespace").c_str());
      _exit(1);
    }
    _exit(::getpid() == 1 ? 0 : 1);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace

int main(int argc, char** argv) {
  auto o = parse(argc, argv);
  hold_signals();
  if (o.probe) return probe();
  join_cgroups(o);
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) fail(errno_text("pipe"));
  if (o.pidns && ::unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) fail(errno_text("unshare"));
  int status_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) fail(errno_text("pipe"));
  pid_t child = ::fork();
  if (child < 0) fail(errno_text("fork"));
  if (child == 0) {
    ::close(out[0]);
    ::close(err[0]);
    ::close(status_pipe[0]);
    if (o.pidns) namespace_init(o, out[1], err[1], status_pipe[1]);
    ::close(status_pipe[1]);
    run_command(o, out[1], err[1]);
  }
  ::close(out[1]);
  ::close(err[1]);
  ::close(status_pipe[1]);
  forward_to = child;
  forward_signals();
  int status = copy_logs(out[0], err[0], o.log_cap, child);
  if (o.pidns) {
    int command_status = 0;
    if (::read(status_pipe[0], &command_status, sizeof command_status) == sizeof command_status)
      status = command_status;
  }
  ::close(status_pipe[0]);
  exit_like(status);
}
