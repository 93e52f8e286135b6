#include "apps/common/shutdown_latch.hpp"

#include <pthread.h>
#include <signal.h>

#include <spdlog/spdlog.h>

namespace poolbus {
namespace {
sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR2);  // internal: wakes the signal thread at destruction
  return set;
}
}  // namespace

shutdown_latch::shutdown_latch() {
  auto set = stop_signals();
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal_thread_ = std::thread([this] {
    auto waited = stop_signals();
    int sig = 0;
    if (sigwait(&waited, &sig) != 0 || sig == SIGUSR2) return;
    spdlog::info("received {}, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    trigger(0);
  });
}

shutdown_latch::~shutdown_latch() {
  pthread_kill(signal_thread_.native_handle(), SIGUSR2);
  signal_thread_.join();
}

void shutdown_latch::trigger(int exit_code) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (exit_code_) return;
    exit_code_ = exit_code;
  }
  cv_.notify_all();
}

int shutdown_latch::wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [this] { return exit_code_.has_value(); });
  return *exit_code_;
}

std::optional<int> shutdown_latch::wait_for(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait_for(lock, timeout, [this] { return exit_code_.has_value(); });
  return exit_code_;
}

}  // namespace poolbus
