// child_process: a program the benchmark starts (broker, worker, simulated
// workers) and always stops: the destructor sends SIGTERM, then SIGKILL after
// a deadline, and reaps it. Also reads a process's CPU time and RSS from /proc.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace poolbus::bench {

class child_process {
 public:
  // Starts argv[0] with argv; its stdout and stderr go to log_path (appended).
  child_process(std::vector<std::string> argv, const std::string& log_path);
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();  // false once it has exited
  void stop();     // SIGTERM, up to 3 s, then SIGKILL; idempotent

 private:
  std::string name_;
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// utime + stime of a process, in seconds (/proc/<pid>/stat).
double cpu_seconds(pid_t pid);
// VmRSS of a process, in bytes (/proc/<pid>/status).
int64_t rss_bytes(pid_t pid);
// A TCP port on 127.0.0.1 that was free a moment ago.
int free_loopback_port();
// This program's own executable (for its sub-modes).
std::string self_exe();

}  // namespace poolbus::bench
