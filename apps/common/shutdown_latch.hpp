// shutdown_latch: how a program learns it should stop: SIGINT/SIGTERM (taken
// by a dedicated sigwait thread, never an async signal handler) or a
// trigger() from inside (e.g. a worker that stopped idle). wait() returns the
// exit code of whichever came first.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

namespace poolbus {

class shutdown_latch {
 public:
  // Blocks SIGINT, SIGTERM and SIGPIPE in the calling thread, so every thread
  // started afterwards inherits the mask. Construct first thing in main().
  shutdown_latch();
  ~shutdown_latch();

  void trigger(int exit_code);
  int wait();
  // nullopt when nothing happened within `timeout`.
  std::optional<int> wait_for(std::chrono::milliseconds timeout);

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::optional<int> exit_code_;
  std::thread signal_thread_;
};

}  // namespace poolbus
