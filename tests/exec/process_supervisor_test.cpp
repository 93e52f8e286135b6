#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <future>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "exec/process_supervisor.hpp"
#include "exec/test_sandbox.hpp"

using namespace poolbus;
namespace fs = std::filesystem;

namespace {

// A scratch dir and a supervisor; exits land in `exits` (by pid).
struct supervised {
  fs::path dir =
      fs::temp_directory_path() / ("poolbus-ps-" + std::to_string(::getpid()) + "-" +
                                   std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  process_supervisor supervisor{testing::test_sandbox()};
  std::mutex mutex;
  std::condition_variable changed;
  std::map<int, process_exit> exits;

  supervised() { fs::create_directories(dir); }
  ~supervised() { fs::remove_all(dir); }

  process_spec spec(std::vector<std::string> argv, int64_t mem = 0) {
    process_spec s;
    s.argv = std::move(argv);
    s.working_dir = dir.string();
    s.stdout_path = (dir / "out").string();
    s.stderr_path = (dir / "err").string();
    s.group = "alloc-1";
    s.mem_limit_bytes = mem;
    return s;
  }
  int start(const process_spec& s) {
    auto pid = supervisor.spawn(s, [this](const process_exit& e) {
      std::lock_guard lock(mutex);
      exits[e.pid] = e;
      changed.notify_all();
    });
    REQUIRE(pid.ok());
    return *pid;
  }
  std::optional<process_exit> wait_exit(int pid, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex);
    if (!changed.wait_for(lock, limit, [&] { return exits.count(pid) != 0; })) return std::nullopt;
    return exits[pid];
  }
  // terminate_group, then a wait (bounded by `limit`) for its on_gone; the
  // milliseconds until on_gone, or nullopt when it never came.
  std::optional<int64_t> terminate_and_wait(const std::string& group, int64_t grace_ms,
                                            std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    auto started = std::chrono::steady_clock::now();
    auto gone = std::make_shared<std::promise<void>>();
    REQUIRE(supervisor.terminate_group(group, grace_ms, [gone] { gone->set_value(); }));
    if (gone->get_future().wait_for(limit) != std::future_status::ready) return std::nullopt;
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  }
  // A pid an exec wrote (as its PID namespace numbers it), as the host numbers it.
  int read_host_pid(const char* name, int leader) { return testing::host_pid(leader, read_pid(name)); }
  int read_pid(const char* name) {
    int pid = 0;
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
         pid == 0 && std::chrono::steady_clock::now() < deadline;) {
      std::istringstream(read(name)) >> pid;
      if (pid == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return pid;
  }
  std::string read(const char* name) {
    std::ifstream in(dir / name);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
};

bool pid_alive(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return false;
  std::string line;
  std::getline(in, line);
  auto close = line.rfind(')');
  return close != std::string::npos && line.substr(close + 2, 1) != "Z";
}

}  // namespace

TEST_CASE("process supervisor: exit code, output files, cwd, env, profile") {
  supervised s;
  auto spec = s.spec({"sh", "-c", "echo out; echo err >&2; pwd; echo $FOO; exit 3"});
  spec.env = {{"FOO", "bar"}};
  auto pid = s.start(spec);
  auto exit = s.wait_exit(pid);
  REQUIRE(exit);
  CHECK(exit->exited);
  CHECK(exit->exit_code == 3);
  CHECK(exit->max_rss_bytes > 0);
  CHECK(s.read("out") == "out\n" + fs::canonical(s.dir).string() + "\nbar\n");
  CHECK(s.read("err") == "err\n");
}

TEST_CASE("process supervisor: killed by a signal, even with SIGTERM blocked in the worker") {
  supervised s;
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, &old);  // as the worker's shutdown latch does
  auto pid = s.start(s.spec({"sleep", "30"}));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  s.supervisor.terminate(pid, 2000);
  auto exit = s.wait_exit(pid, std::chrono::seconds(1));  // SIGTERM does it, no need for the SIGKILL
  REQUIRE(exit);
  CHECK(!exit->exited);
  CHECK(exit->signal == SIGTERM);
  CHECK(exit->killed);
}

TEST_CASE("process supervisor: a SIGTERM sent the moment an exec starts is never lost") {
  // The init holds the forwarded signals until its handlers (and, in a PID
  // namespace, its PID 1's) are in place: none may fall into that gap.
  supervised s;
  for (int i = 0; i < 20; ++i) {
    auto pid = s.start(s.spec({"sleep", "30"}));
    s.supervisor.terminate(pid, 10000);
    auto exit = s.wait_exit(pid, std::chrono::seconds(5));  // the SIGKILL would come only after 10 s
    REQUIRE(exit);
    CHECK(exit->signal == SIGTERM);
  }
}

TEST_CASE("process supervisor: a missing program is a clear invalid error") {
  supervised s;
  auto pid = s.supervisor.spawn(s.spec({"no-such-program-here"}), [](const process_exit&) {});
  REQUIRE(!pid.ok());
  CHECK(pid.error().kind == error_kind::invalid);
  CHECK_THAT(pid.error().message, Catch::Contains("no-such-program-here"));
  auto path = s.supervisor.spawn(s.spec({"./nope"}), [](const process_exit&) {});
  REQUIRE(!path.ok());
  CHECK(s.supervisor.running() == 0);
}

TEST_CASE("process supervisor: the RSS watcher stops a process over its memory (oom)") {
  supervised s;
  auto pid = s.start(s.spec({"python3", "-c", "import time; x = bytearray(300 << 20); time.sleep(20)"}, 64 << 20));
  auto exit = s.wait_exit(pid);
  REQUIRE(exit);
  CHECK(exit->oom);
  CHECK(exit->signal == SIGKILL);
}

TEST_CASE("process supervisor: terminate_group kills the whole process tree and leaves no orphan") {
  supervised s;
  auto pid = s.start(s.spec({"sh", "-c", "sleep 30 & echo $! > child; sleep 30"}));
  int child = s.read_host_pid("child", pid);
  REQUIRE(child > 0);
  REQUIRE(pid_alive(child));
  REQUIRE(s.terminate_and_wait("alloc-1", 2000));
  CHECK(!pid_alive(pid));
  CHECK(!pid_alive(child));
  CHECK(s.supervisor.running() == 0);
}

TEST_CASE("process supervisor: when the leader exits, the rest of its group is killed") {
  supervised s;
  // The leader exits once the test has seen its child (the "go" file).
  auto pid = s.start(s.spec({"sh", "-c", "sleep 30 & echo $! > child; while [ ! -e go ]; do sleep 0.01; done"}));
  int child = s.read_host_pid("child", pid);
  REQUIRE(child > 0);
  REQUIRE(pid_alive(child));
  std::ofstream(s.dir / "go").put('\n');
  auto exit = s.wait_exit(pid);
  REQUIRE(exit);
  for (int i = 0; i < 100 && pid_alive(child); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(!pid_alive(child));
}

// A process that is no longer even a zombie: reaped.
bool pid_reaped(int pid) { return !fs::exists("/proc/" + std::to_string(pid)); }

TEST_CASE("process supervisor: terminate_group of a group with no process returns false at once") {
  supervised s;
  bool called = false;
  CHECK(!s.supervisor.terminate_group("alloc-none", 300, [&] { called = true; }));
  CHECK(!called);
}

TEST_CASE("process supervisor: terminate_group returns at once; on_gone comes when SIGTERM ends the group") {
  supervised s;
  auto pid = s.start(s.spec({"sleep", "30"}));
  auto gone_after = s.terminate_and_wait("alloc-1", 5000);
  REQUIRE(gone_after);
  CHECK(*gone_after < 2000);  // SIGTERM sufficed: no wait for the 5 s grace
  CHECK(pid_reaped(pid));
  CHECK(s.supervisor.running() == 0);
}

TEST_CASE("process supervisor: a group ignoring SIGTERM is SIGKILLed at the deadline, without blocking the caller") {
  supervised s;
  auto pid = s.start(s.spec({"sh", "-c", "trap '' TERM; sleep 30 & echo $! > child; wait"}));
  int child = s.read_host_pid("child", pid);
  REQUIRE(child > 0);
  auto gone = std::make_shared<std::promise<void>>();
  auto gone_at = gone->get_future();
  auto started = std::chrono::steady_clock::now();
  REQUIRE(s.supervisor.terminate_group("alloc-1", 300, [gone] { gone->set_value(); }));
  auto returned_after = std::chrono::steady_clock::now() - started;
  CHECK(returned_after < std::chrono::milliseconds(100));  // the caller does not wait for the group
  // Both ignore SIGTERM: nothing is gone before the grace is over.
  CHECK(gone_at.wait_for(std::chrono::milliseconds(150)) == std::future_status::timeout);
  CHECK(pid_alive(pid));
  CHECK(pid_alive(child));
  REQUIRE(gone_at.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  auto gone_after = std::chrono::steady_clock::now() - started;
  CHECK(gone_after >= std::chrono::milliseconds(300));
  CHECK(gone_after < std::chrono::milliseconds(2300));
  CHECK(pid_reaped(pid));
  CHECK(pid_reaped(child));  // the grandchild too (the supervisor is its subreaper)
  CHECK(s.supervisor.running() == 0);
  // The group's exits are not reported: its owner is going away.
  std::lock_guard lock(s.mutex);
  CHECK(s.exits.count(pid) == 0);
}

// Live processes whose command line holds `marker` (host /proc, any namespace).
std::vector<int> processes_with(const std::string& marker) {
  std::vector<int> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), {});
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(marker) != std::string::npos && cmdline.find("pool-exec-init") == std::string::npos &&
        pid_alive(std::stoi(name)))
      found.push_back(std::stoi(name));
  }
  return found;
}

bool root() { return ::geteuid() == 0; }

TEST_CASE("process supervisor: a daemon that left the process group (setsid) dies with its exec") {
  supervised s;
  if (!s.supervisor.pid_namespaces()) {
    WARN("LOUD SKIP: no PID namespaces here (not root?): " << s.supervisor.describe());
    return;
  }
  auto pid = s.start(s.spec({"sh", "-c", "setsid -f sleep 3031; (setsid sh -c 'sleep 3032 & exit' &); sleep 30"}));
  for (int i = 0; i < 500 && (processes_with("sleep 3031").empty() || processes_with("sleep 3032").empty()); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(!processes_with("sleep 3031").empty());
  REQUIRE(!processes_with("sleep 3032").empty());
  REQUIRE(s.terminate_and_wait("alloc-1", 2000));
  CHECK(!pid_alive(pid));
  CHECK(processes_with("sleep 3031").empty());
  CHECK(processes_with("sleep 3032").empty());
}

TEST_CASE("process supervisor: the command runs as the spec's user, sees only its namespace, logs capped") {
  supervised s;
  if (!root() || !s.supervisor.pid_namespaces()) {
    WARN("LOUD SKIP: needs root and PID namespaces: " << s.supervisor.describe());
    return;
  }
  REQUIRE(::chown(s.dir.c_str(), 881500, 881500) == 0);
  auto spec = s.spec({"sh", "-c", "id -u; id -G; ls /proc | grep -c '^[0-9]'; head -c 5000 /dev/zero | tr '\\0' a"});
  spec.uid = spec.gid = 881500;
  spec.log_cap_bytes = 100;
  auto exit = s.wait_exit(s.start(spec));
  REQUIRE(exit);
  CHECK(exit->exited);
  CHECK(exit->exit_code == 0);
  auto out = s.read("out");
  std::istringstream lines(out);
  std::string uid, groups, visible;
  std::getline(lines, uid);
  std::getline(lines, groups);
  std::getline(lines, visible);
  CHECK(uid == "881500");
  CHECK(groups == "881500");       // no supplementary group of the worker's
  CHECK(std::stoi(visible) <= 5);  // init, sh, ls, grep: nothing of the host
  CHECK(out.size() < 100 + 64);
  CHECK(out.find("log capped at 100 bytes") != std::string::npos);
}

TEST_CASE("process supervisor: a command the exec's user may not run is an error, not an exit code") {
  supervised s;
  if (!root()) {
    WARN("LOUD SKIP: needs root");
    return;
  }
  auto script = s.dir / "secret.sh";
  std::ofstream(script) << "#!/bin/sh\necho ran\n";
  fs::permissions(script, fs::perms::owner_all);
  auto spec = s.spec({script.string()});
  spec.uid = spec.gid = 881501;
  auto exit = s.wait_exit(s.start(spec));
  REQUIRE(exit);
  CHECK(exit->error.find("cannot run") != std::string::npos);
  CHECK(exit->error.find("Permission denied") != std::string::npos);
}

TEST_CASE("process supervisor: writing more than the disk limit stops the exec (disk)") {
  supervised s;
  auto spec = s.spec({"sh", "-c", "for i in 1 2 3; do head -c 600000 /dev/zero > f$i; done; exec sleep 30"});
  spec.disk_root = s.dir.string();
  spec.disk_limit_bytes = 1 << 20;
  auto exit = s.wait_exit(s.start(spec));
  REQUIRE(exit);
  CHECK(exit->disk);
  CHECK(exit->signal == SIGKILL);
  // One file past the limit is refused by the kernel (RLIMIT_FSIZE): disk too.
  spec.argv = {"sh", "-c", "exec truncate -s 2M big"};
  exit = s.wait_exit(s.start(spec));
  REQUIRE(exit);
  CHECK(exit->disk);
}

TEST_CASE("process supervisor: with a memory cgroup the kernel enforces the limit (oom)") {
  process_supervisor probe{testing::test_sandbox(true)};
  if (!probe.has_cgroup("memory")) {
    WARN("LOUD SKIP: no writable cgroup v1 memory hierarchy: " << probe.describe());
    return;
  }
  supervised s;
  process_supervisor& supervisor = probe;
  std::mutex mutex;
  std::condition_variable changed;
  std::optional<process_exit> got;
  auto spec = s.spec({"python3", "-c", "import time; x = bytearray(300 << 20); time.sleep(20)"}, 64 << 20);
  auto pid = supervisor.spawn(spec, [&](const process_exit& e) {
    std::lock_guard lock(mutex);
    got = e;
    changed.notify_all();
  });
  REQUIRE(pid.ok());
  std::unique_lock lock(mutex);
  REQUIRE(changed.wait_for(lock, std::chrono::seconds(10), [&] { return got.has_value(); }));
  CHECK(got->oom);
  CHECK(got->signal == SIGKILL);
}
