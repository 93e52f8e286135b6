// connection_threads: httplib's task queue for pool-dash, a thread per open
// connection up to `max_threads` (the rest wait for one to end). httplib's
// own pool has a fixed few threads, and each live page holds one for as long
// as its event stream is open: 200 browsers would starve every other request.
#pragma once

#include <httplib.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

namespace poolbus {

class connection_threads : public httplib::TaskQueue {
 public:
  static constexpr size_t default_max_threads = 1024;

  explicit connection_threads(size_t max_threads = default_max_threads);
  void enqueue(std::function<void()> fn) override;
  // Waits (up to a few seconds) for the connections to end: stop the hub first.
  void shutdown() override;

 private:
  // Shared with the threads, which may outlive this queue after a shutdown
  // that timed out (a connection stuck in a write).
  struct threads {
    size_t max_threads;
    std::mutex mutex;
    std::condition_variable idle;
    std::deque<std::function<void()>> waiting;
    size_t running = 0;
  };
  static void serve(std::shared_ptr<threads> t, std::function<void()> fn);

  std::shared_ptr<threads> threads_;
};

}  // namespace poolbus
