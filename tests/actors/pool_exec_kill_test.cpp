// The pool actor frees and collects allocs whose execs ignore SIGTERM without
// blocking: with a real process supervisor, real time (a 300 ms grace) and one
// scheduler thread, as the worker runs it.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <caf/all.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

#include "actors/error_bridge.hpp"
#include "actors/pool_actor.hpp"
#include "exec/process_supervisor.hpp"
#include "exec/test_sandbox.hpp"

using namespace poolbus;
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

constexpr int64_t grace_ms = 300;

Resources machine() { return Resources{{"cpu", 8}, {"mem", 32 * GiB}, {"disk", 100 * GiB}}; }
AllocMeta want(double cpu) { return AllocMeta{Resources{{"cpu", cpu}, {"mem", 1 * GiB}, {"disk", 1 * GiB}}, "t", {}}; }

bool reaped(int pid) { return !fs::exists("/proc/" + std::to_string(pid)); }

struct exec_kill_fixture {
  fs::path dir = fs::temp_directory_path() / ("poolbus-exec-kill-" + std::to_string(::getpid()) + "-" +
                                              std::to_string(steady_clock::now().time_since_epoch().count()));
  std::shared_ptr<process_supervisor> processes = std::make_shared<process_supervisor>(testing::test_sandbox());
  caf::actor_system_config cfg;
  caf::actor_system sys;
  worker_pool_actor pool;

  static caf::actor_system_config& prep(caf::actor_system_config& c) {
    c.set("scheduler.max-threads", 1);  // as pool-worker runs: a blocked actor would stall everything
    return c;
  }
  exec_kill_fixture() : sys(prep(cfg)) {
    fs::create_directories(dir);
    pool_actor_config config;
    config.id = "w1";
    config.run = "run-1";
    config.resources = machine();
    config.manager = make_local_alloc_manager(dir.string());
    config.execs = exec_runtime{processes, (dir / "allocs").string(), grace_ms, nullptr};
    pool = spawn_pool_actor(sys, config);
  }
  ~exec_kill_fixture() {
    caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
    pool = nullptr;
    processes.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  template <class T, class... Ts>
  outcome<T> call(Ts&&... xs) {
    caf::scoped_actor self{sys};
    std::optional<outcome<T>> out;
    self->request(pool, std::chrono::seconds(10), std::forward<Ts>(xs)...)
        .receive([&](T& value) { out.emplace(std::move(value)); },
                 [&](caf::error& e) { out.emplace(to_pool_error(e)); });
    return std::move(*out);
  }
  AllocInspect accept(double cpu) {
    auto made = call<AllocInspect>(accept_atom::value, std::string("1"), want(cpu));
    REQUIRE(made.ok());
    return *made;
  }

  // A process of `alloc`'s group that ignores SIGTERM (and its child too),
  // started through the pool's own supervisor; returns once the trap is set.
  int start_stubborn(const AllocInspect& alloc, const std::string& name) {
    process_spec spec;
    spec.argv = {"sh", "-c", "trap '' TERM; echo ready > " + name + ".ready; sleep 30"};
    spec.working_dir = dir.string();
    spec.stdout_path = (dir / (name + ".out")).string();
    spec.stderr_path = (dir / (name + ".err")).string();
    spec.group = alloc.id;
    auto pid = processes->spawn(spec, [](const process_exit&) {});
    REQUIRE(pid.ok());
    auto deadline = steady_clock::now() + std::chrono::seconds(5);
    while (!fs::exists(dir / (name + ".ready")) && steady_clock::now() < deadline)
      std::this_thread::sleep_for(milliseconds(5));
    REQUIRE(fs::exists(dir / (name + ".ready")));
    return *pid;
  }
};

}  // namespace

TEST_CASE_METHOD(exec_kill_fixture,
                 "pool actor: a free waits for execs that ignore SIGTERM without blocking the pool") {
  auto stubborn = accept(2);
  auto other = accept(1);
  int pid = start_stubborn(stubborn, "a");

  caf::scoped_actor client{sys};
  auto started = steady_clock::now();
  auto freeing = client->request(pool, std::chrono::seconds(10), free_atom::value, stubborn.id);

  // While the free is pending (the grace is not over: the process is alive),
  // the pool answers promptly; the retiring alloc's resources are not offered.
  auto status_at = steady_clock::now();
  auto status = call<PoolStatus>(status_atom::value);
  REQUIRE(status.ok());
  CHECK(steady_clock::now() - status_at < milliseconds(150));
  CHECK(status->allocs == 1);
  CHECK(status->available == machine().sub(want(2).want).sub(want(1).want));
  auto inspected = call<AllocInspect>(inspect_atom::value, other.id);
  REQUIRE(inspected.ok());
  CHECK(inspected->id == other.id);
  auto offers = call<std::vector<OfferInfo>>(offers_atom::value);
  REQUIRE(offers.ok());
  REQUIRE(offers->size() == 1);
  CHECK(offers->front().available == machine().sub(want(2).want).sub(want(1).want));
  CHECK(steady_clock::now() - started < milliseconds(grace_ms));  // all of it within the grace
  CHECK(!reaped(pid));

  // A new alloc waits for the retiring one's processes to be gone.
  caf::scoped_actor creator{sys};
  auto creating = creator->request(pool, std::chrono::seconds(10), accept_atom::value, std::string("1"), want(1));

  bool freed = false;
  freeing.receive([&](caf::ok_atom) { freed = true; },
                  [&](caf::error& e) { FAIL("free: " << to_pool_error(e).to_string()); });
  REQUIRE(freed);
  CHECK(steady_clock::now() - started >= milliseconds(grace_ms));
  CHECK(reaped(pid));  // SIGKILLed at the grace and reaped before the reply

  std::optional<AllocInspect> created;
  creating.receive([&](AllocInspect& alloc) { created = alloc; },
                   [&](caf::error& e) { FAIL("accept: " << to_pool_error(e).to_string()); });
  REQUIRE(created);
  CHECK(call<AllocInspect>(inspect_atom::value, stubborn.id).error().kind == error_kind::not_exist);
  CHECK(call<PoolStatus>(status_atom::value)->available == machine().sub(want(1).want).sub(want(1).want));
}

TEST_CASE_METHOD(exec_kill_fixture,
                 "pool actor: collecting an alloc with live execs defers the accept until they are gone") {
  auto expiring = accept(8);  // the whole machine
  int pid = start_stubborn(expiring, "b");
  // A 1 ms lease: it expires at once and the next accept collects it.
  REQUIRE(call<int64_t>(keepalive_atom::value, expiring.id, int64_t{1}).ok());
  auto deadline = steady_clock::now() + std::chrono::seconds(5);
  while (call<std::vector<OfferInfo>>(offers_atom::value).value().empty() && steady_clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(2));
  REQUIRE(!call<std::vector<OfferInfo>>(offers_atom::value).value().empty());

  caf::scoped_actor creator{sys};
  auto started = steady_clock::now();
  auto creating = creator->request(pool, std::chrono::seconds(10), accept_atom::value, std::string("1"), want(8));

  // Collected but not yet gone: nothing is offered, and the pool still answers.
  auto status = call<PoolStatus>(status_atom::value);
  REQUIRE(status.ok());
  CHECK(status->allocs == 0);
  CHECK(call<std::vector<OfferInfo>>(offers_atom::value).value().empty());
  CHECK(steady_clock::now() - started < milliseconds(grace_ms));
  CHECK(!reaped(pid));

  std::optional<AllocInspect> created;
  creating.receive([&](AllocInspect& alloc) { created = alloc; },
                   [&](caf::error& e) { FAIL("accept: " << to_pool_error(e).to_string()); });
  REQUIRE(created);
  CHECK(created->id != expiring.id);
  CHECK(steady_clock::now() - started >= milliseconds(grace_ms));
  CHECK(reaped(pid));  // the new alloc exists only once the collected one's processes are gone
  CHECK(call<AllocInspect>(inspect_atom::value, expiring.id).error().kind == error_kind::not_exist);
}

TEST_CASE_METHOD(exec_kill_fixture, "pool actor: an idle stop frees allocs with live execs before its reply") {
  auto alloc = accept(1);
  int pid = start_stubborn(alloc, "c");
  REQUIRE(call<int64_t>(keepalive_atom::value, alloc.id, int64_t{1}).ok());
  // Idle once the alloc has been expired for 1 ms (and 1 ms after the start).
  std::optional<bool> stopped;
  auto deadline = steady_clock::now() + std::chrono::seconds(5);
  while (!stopped.value_or(false) && steady_clock::now() < deadline) {
    caf::scoped_actor self{sys};
    self->request(pool, std::chrono::seconds(10), idle_stop_atom::value, int64_t{1})
        .receive([&](bool s, int64_t) { stopped = s; },
                 [&](caf::error& e) { FAIL("idle stop: " << to_pool_error(e).to_string()); });
    if (*stopped)
      CHECK(reaped(pid));  // its reply came after the processes were gone
    else
      std::this_thread::sleep_for(milliseconds(2));
  }
  REQUIRE(stopped.value_or(false));
}

TEST_CASE_METHOD(exec_kill_fixture, "pool actor: a freed alloc's directory goes with it once an exec wrote into it") {
  auto alloc = accept(1);
  auto alloc_dir = dir / "allocs" / local_id_of(alloc.id);
  exec_call put;
  put.op = exec_op::put;
  put.alloc = alloc.id;
  put.exec = "e1";
  put.config.cmd = {"true"};
  REQUIRE(call<exec_answer>(exec_atom::value, put).ok());
  REQUIRE(fs::is_directory(alloc_dir));  // the exec's records are in it
  REQUIRE(call<caf::ok_atom>(free_atom::value, alloc.id).ok());
  CHECK_FALSE(fs::exists(alloc_dir));  // the pool opened the alloc for its exec, so kill looked
}
