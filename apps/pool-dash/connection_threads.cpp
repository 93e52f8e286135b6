#include "apps/pool-dash/connection_threads.hpp"

#include <chrono>
#include <thread>

namespace poolbus {

connection_threads::connection_threads(size_t max_threads) : threads_(std::make_shared<threads>()) {
  threads_->max_threads = max_threads ? max_threads : 1;
}

void connection_threads::enqueue(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(threads_->mutex);
  if (threads_->running >= threads_->max_threads) {
    threads_->waiting.push_back(std::move(fn));
    return;
  }
  ++threads_->running;
  std::thread(serve, threads_, std::move(fn)).detach();
}

void connection_threads::serve(std::shared_ptr<threads> t, std::function<void()> fn) {
  for (;;) {
    fn();
    std::lock_guard<std::mutex> lock(t->mutex);
    if (t->waiting.empty()) {
      --t->running;
      t->idle.notify_all();
      return;
    }
    fn = std::move(t->waiting.front());
    t->waiting.pop_front();
  }
}

void connection_threads::shutdown() {
  std::unique_lock<std::mutex> lock(threads_->mutex);
  threads_->idle.wait_for(lock, std::chrono::seconds(5), [&] { return threads_->running == 0; });
}

}  // namespace poolbus
