// io_scheduler with a real host thread standing in for the I/O thread: actors
// run on the scheduler's own thread until the host attaches, on the host while
// it is attached (woken from other threads, nothing lost), on the own thread
// again once it detaches; delayed messages arrive; the system ends cleanly.
#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "actors/io_scheduler.hpp"

using namespace poolbus;

namespace {

using where_atom = caf::atom_constant<caf::atom("where")>;
using later_atom = caf::atom_constant<caf::atom("later")>;

// Answers with the thread it runs on; relays `later` after a delay.
caf::behavior reporter(caf::event_based_actor* self) {
  return {
      [](where_atom) { return std::hash<std::thread::id>{}(std::this_thread::get_id()); },
      [self](later_atom, caf::actor to) {
        self->delayed_send(to, std::chrono::milliseconds(20), later_atom::value, caf::actor{});
      },
  };
}

// The I/O thread's part, in miniature: attach, run what is ready whenever
// woken (or when more is ready), detach when told to end.
struct host_thread {
  io_scheduler& scheduler;
  std::mutex mutex;
  std::condition_variable woken;
  bool wake = false;
  std::atomic<bool> ending{false};
  std::atomic<size_t> id_hash{0};
  std::atomic<bool> attached{false};
  std::thread thread;

  explicit host_thread(io_scheduler& s) : scheduler(s) {
    thread = std::thread([this] {
      id_hash = std::hash<std::thread::id>{}(std::this_thread::get_id());
      scheduler.attach([this] {
        std::lock_guard<std::mutex> guard(mutex);
        wake = true;
        woken.notify_one();
      });
      attached = true;
      bool more = true;  // what was made ready before the attach
      while (!ending) {
        if (!more) {
          std::unique_lock<std::mutex> guard(mutex);
          woken.wait_for(guard, std::chrono::milliseconds(50), [this] { return wake; });
          wake = false;
        }
        more = scheduler.run_ready();
      }
      scheduler.detach();
    });
    while (!attached) std::this_thread::yield();
  }
  ~host_thread() {
    if (thread.joinable()) stop();
  }
  void stop() {
    ending = true;
    thread.join();
  }
};

size_t where(caf::scoped_actor& self, const caf::actor& a) {
  size_t out = 0;
  self->request(a, std::chrono::seconds(5), where_atom::value)
      .receive([&](size_t id) { out = id; }, [](caf::error& e) { FAIL("no answer: " << to_string(e)); });
  return out;
}

}  // namespace

TEST_CASE("io_scheduler: actors run on the host while it is attached, on their own thread otherwise") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg.load<io_scheduler>()};
  auto* scheduler = io_scheduler::of(sys);
  REQUIRE(scheduler != nullptr);
  caf::scoped_actor self{sys};
  auto a = sys.spawn(reporter);
  size_t own = where(self, a);
  CHECK(own != std::hash<std::thread::id>{}(std::this_thread::get_id()));

  host_thread host(*scheduler);
  // From another thread (this one) into the hosted actors, many times: each
  // answer comes from the host, none is lost to a missed wake-up.
  for (int i = 0; i < 200; ++i) REQUIRE(where(self, a) == host.id_hash.load());

  // Delayed messages come from the clock's thread and wake the host too.
  self->send(a, later_atom::value, caf::actor_cast<caf::actor>(self));
  bool arrived = false;
  self->receive([&](later_atom, const caf::actor&) { arrived = true; },
                caf::after(std::chrono::seconds(5)) >> [] {});
  CHECK(arrived);

  host.stop();
  CHECK(where(self, a) == own);  // the own thread took over
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

TEST_CASE("io_scheduler: actors made ready before the host attaches are run by it") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg.load<io_scheduler>()};
  caf::scoped_actor self{sys};
  std::vector<caf::actor> actors;
  for (int i = 0; i < 50; ++i) actors.push_back(sys.spawn(reporter));
  for (auto& a : actors) self->send(a, where_atom::value);
  host_thread host(*io_scheduler::of(sys));
  for (auto& a : actors) self->send(a, where_atom::value);
  int answers = 0;
  for (int i = 0; i < 100; ++i)
    self->receive([&](size_t) { ++answers; }, caf::after(std::chrono::seconds(5)) >> [] {});
  CHECK(answers == 100);
  host.stop();
  for (auto& a : actors) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}
