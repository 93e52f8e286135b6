#include "actors/io_scheduler.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/execution_unit.hpp>
#include <caf/resumable.hpp>

namespace poolbus {
namespace {

// What a running actor hands the actors it makes ready: back to the queue.
class queue_unit final : public caf::execution_unit {
 public:
  queue_unit(caf::actor_system& sys, io_scheduler& owner) : caf::execution_unit(&sys), owner_(owner) {}
  void exec_later(caf::resumable* job) override { owner_.enqueue(job); }

 private:
  io_scheduler& owner_;
};

}  // namespace

caf::actor_system::module* io_scheduler::make(caf::actor_system& sys, caf::detail::type_list<>) {
  return new io_scheduler(sys);
}

io_scheduler::io_scheduler(caf::actor_system& sys) : abstract_coordinator(sys) {}

io_scheduler* io_scheduler::of(caf::actor_system& sys) { return dynamic_cast<io_scheduler*>(&sys.scheduler()); }

void io_scheduler::attach(std::function<void()> wake) {
  std::lock_guard<std::mutex> guard(mutex_);
  hosted_ = true;
  host_id_ = std::this_thread::get_id();
  wake_host_ = std::move(wake);
  host_woken_ = false;
}

void io_scheduler::detach() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    hosted_ = false;
    host_id_ = {};
    wake_host_ = nullptr;
  }
  ready_.notify_one();
}

void io_scheduler::enqueue(caf::resumable* job) {
  std::function<void()> wake;
  bool own_thread = false;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    jobs_.push_back(job);
    if (!hosted_) {
      own_thread = true;
    } else if (std::this_thread::get_id() != host_id_ && !host_woken_) {
      // The host runs the queue after every wake-up: one wake per burst.
      host_woken_ = true;
      wake = wake_host_;
    }
  }
  if (wake) wake();
  if (own_thread) ready_.notify_one();
}

bool io_scheduler::run_ready() {
  std::deque<caf::resumable*> batch;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    host_woken_ = false;
    batch.swap(jobs_);
  }
  for (auto* job : batch) resume(job);
  std::lock_guard<std::mutex> guard(mutex_);
  return !jobs_.empty();
}

void io_scheduler::resume(caf::resumable* job) {
  queue_unit unit(system(), *this);
  switch (job->resume(&unit, max_throughput_)) {
    case caf::resumable::resume_later: enqueue(job); break;  // keeps its reference
    case caf::resumable::done:
    case caf::resumable::awaiting_message: caf::intrusive_ptr_release(job); break;
    case caf::resumable::shutdown_execution_unit: break;
  }
}

void io_scheduler::run_own_thread() {
  for (;;) {
    std::deque<caf::resumable*> batch;
    {
      std::unique_lock<std::mutex> guard(mutex_);
      ready_.wait(guard, [&] { return stopping_ || (!hosted_ && !jobs_.empty()); });
      if (hosted_ || jobs_.empty()) return;  // stopping, and nothing left that is ours to run
      batch.swap(jobs_);
    }
    for (auto* job : batch) resume(job);
  }
}

void io_scheduler::start() {
  timer_ = std::thread([this] {
    system().thread_started();
    clock_.run_dispatch_loop();
    system().thread_terminates();
  });
  own_ = std::thread([this] {
    system().thread_started();
    run_own_thread();
    system().thread_terminates();
  });
  abstract_coordinator::start();
}

// The actor system calls this once its actors are done: the utility actors
// go, then the clock (which delivers delayed messages), then the own thread
// once it has run what is left.
void io_scheduler::stop() {
  stop_actors();
  clock_.cancel_dispatch_loop();
  timer_.join();
  {
    std::lock_guard<std::mutex> guard(mutex_);
    stopping_ = true;
  }
  ready_.notify_one();
  own_.join();
  std::deque<caf::resumable*> left;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    left.swap(jobs_);
  }
  for (auto* job : left) cleanup_and_release(job);
}

}  // namespace poolbus
