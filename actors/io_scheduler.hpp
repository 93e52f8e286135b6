// io_scheduler: a CAF scheduler whose worker is the process's I/O thread, so
// a message read from a socket reaches its actor, and the actor's reply its
// socket, without waking another thread (two wake-ups fewer per hop than a
// scheduler thread beside the I/O thread). The I/O thread attaches, then runs
// ready actors between socket reads; before it attaches and after it detaches
// (startup, shutdown) a thread of the scheduler's own runs them.
// Invariant: a ready actor sits in the one queue once and is resumed by one
// thread at a time; whatever is still queued at stop is cleaned up.
#pragma once

#include <caf/actor_system.hpp>
#include <caf/detail/thread_safe_actor_clock.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace poolbus {

class io_scheduler final : public caf::scheduler::abstract_coordinator {
 public:
  // For caf::actor_system_config::load<io_scheduler>().
  static caf::actor_system::module* make(caf::actor_system& sys, caf::detail::type_list<>);
  explicit io_scheduler(caf::actor_system& sys);

  // The scheduler of `sys` when it is an io_scheduler, else null.
  static io_scheduler* of(caf::actor_system& sys);

  // Called on the host thread: from now on it runs the actors; `wake` (any
  // thread) makes it call run_ready() soon.
  void attach(std::function<void()> wake);
  // Runs the actors ready now (not those they make ready); whether more are.
  bool run_ready();
  // Called on the host thread as it stops hosting: the own thread takes over.
  void detach();

  void enqueue(caf::resumable* job) override;
  caf::detail::thread_safe_actor_clock& clock() noexcept override { return clock_; }

 protected:
  void start() override;
  void stop() override;

 private:
  void run_own_thread();
  void resume(caf::resumable* job);

  std::mutex mutex_;
  std::condition_variable ready_;  // the own thread waits on it while not hosted
  std::deque<caf::resumable*> jobs_;
  bool hosted_ = false;
  std::thread::id host_id_;
  std::function<void()> wake_host_;
  bool host_woken_ = false;  // a wake since the host last took jobs: no second one
  bool stopping_ = false;
  std::thread own_;
  caf::detail::thread_safe_actor_clock clock_;
  std::thread timer_;
};

}  // namespace poolbus
