// The pool actor with a journal: restart restores allocs with their leases,
// every acknowledged change is in the journal before its reply, a burst shares
// one commit, and a failed commit answers internal and stops the pool.
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/deterministic_system.hpp"

#include <filesystem>
#include <memory>
#include <optional>

#include "actors/error_bridge.hpp"
#include "actors/pool_actor.hpp"
#include "store/state_store.hpp"

using namespace poolbus;
using namespace std::chrono_literals;

namespace {

// Backing that always succeeds; counts what it was asked.
struct counting_manager : alloc_manager {
  int created = 0, killed = 0;
  std::string name() const override { return "counting"; }
  outcome<void> create(const AllocInspect&, int64_t, const std::vector<AllocInspect>&) override {
    ++created;
    return {};
  }
  outcome<void> kill(const AllocInspect&) override {
    ++killed;
    return {};
  }
};

constexpr int64_t t0 = 1'700'000'000'000;

Resources machine() { return Resources{{"cpu", 8}, {"mem", 32 * GiB}, {"disk", 100 * GiB}}; }
AllocMeta want(double cpu, const std::string& run = "r") {
  return AllocMeta{Resources{{"cpu", cpu}, {"mem", 1 * GiB}, {"disk", 1 * GiB}}, "dora", {{"run", run}}};
}

struct durable_fixture : test::deterministic_system {
  caf::scoped_actor self{sys};
  std::shared_ptr<counting_manager> manager = std::make_shared<counting_manager>();
  std::shared_ptr<memory_journal> memory = std::make_shared<memory_journal>();
  std::optional<pool_error> failure;  // what on_journal_failure saw
  worker_pool_actor pool;

  ~durable_fixture() { stop(); }

  // The worker's clock is the scheduler's: a restarted pool sees the time go on.
  worker_pool_actor start(std::shared_ptr<alloc_journal> journal) {
    pool_actor_config config;
    config.id = "w1";
    config.run = "run";
    config.resources = machine();
    config.clock = wall_clock::simulated(t0);
    config.manager = manager;
    config.journal = std::move(journal);
    config.on_journal_failure = [this](const pool_error& e) { failure = e; };
    pool = spawn_pool_actor(sys, config);
    run();
    return pool;
  }
  // Like SIGKILL for an actor: no chance to write anything more.
  void stop() {
    if (!pool) return;
    caf::anon_send_exit(pool, caf::exit_reason::kill);
    run();
    pool = nullptr;
  }

  void run() { sched.run(); }
  void advance(caf::timespan d) {
    sched.clock().advance_time(d);
    run();
  }

  template <class T, class... Ts>
  outcome<T> call(Ts&&... xs) {
    std::optional<outcome<T>> out;
    auto rh = self->request(pool, caf::infinite, std::forward<Ts>(xs)...);
    run();
    rh.receive([&](T& value) { out.emplace(std::move(value)); }, [&](caf::error& e) { out.emplace(to_pool_error(e)); });
    REQUIRE(out.has_value());
    return std::move(*out);
  }
  outcome<AllocInspect> accept(const AllocMeta& meta) {
    return call<AllocInspect>(accept_atom::value, std::string("1"), meta);
  }
  outcome<AllocInspect> inspect(const std::string& id) { return call<AllocInspect>(inspect_atom::value, id); }
  std::vector<AllocInspect> allocs() { return call<std::vector<AllocInspect>>(allocs_atom::value).value(); }
  outcome<int64_t> keepalive(const std::string& id, int64_t ms) { return call<int64_t>(keepalive_atom::value, id, ms); }
  outcome<caf::ok_atom> free(const std::string& id) { return call<caf::ok_atom>(free_atom::value, id); }
  Resources available() { return call<PoolStatus>(status_atom::value)->available; }
};

}  // namespace

TEST_CASE_METHOD(durable_fixture, "pool durability: a restarted pool has every alloc back, leases unchanged") {
  start(memory);
  auto a = accept(want(2, "a")).value();
  auto b = accept(want(3, "b")).value();
  advance(60s);
  REQUIRE(keepalive(b.id, 240000).ok());
  auto b_kept = inspect(b.id).value();
  CHECK(b_kept.expires_ms == t0 + 60000 + 240000);

  stop();
  advance(30s);  // the worker was down for a while
  start(memory);
  auto back = allocs();
  REQUIRE(back.size() == 2);
  CHECK(inspect(a.id).value() == a);  // meta, labels, created_ms, expires_ms: identical
  CHECK(inspect(b.id).value() == b_kept);
  CHECK(inspect(b.id)->meta.labels.at("run") == "b");
  // The restored pool counts them: 8 - 2 - 3 cpus left.
  CHECK(available().get("cpu") == 3);
  // The restored allocs take keepalives.
  CHECK(keepalive(a.id, 1000).value() == 1000);
}

TEST_CASE_METHOD(durable_fixture,
                 "pool durability: an expired alloc stays expired across a restart, and is collected") {
  start(memory);
  auto a = accept(want(6)).value();
  stop();
  advance(3min);  // past its 2-minute lease while down
  start(memory);
  auto restored = inspect(a.id).value();
  CHECK(restored.expires_ms == a.expires_ms);  // not renewed by the restart
  CHECK(available().get("cpu") == 8);
  auto b = accept(want(4));  // needs a's room: a is collected
  REQUIRE(b.ok());
  CHECK(inspect(a.id).error().kind == error_kind::not_exist);
  auto stored = memory->load().value();
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].id == b->id);
}

TEST_CASE_METHOD(durable_fixture,
                 "pool durability: keepalive, free and idle stop reach the journal before their replies") {
  start(memory);
  auto a = accept(want(1)).value();
  auto b = accept(want(1)).value();
  CHECK(memory->load()->size() == 2);
  advance(10s);
  REQUIRE(keepalive(a.id, 50000).ok());
  auto stored = memory->load().value();
  auto it = std::find_if(stored.begin(), stored.end(), [&](const AllocInspect& x) { return x.id == a.id; });
  REQUIRE(it != stored.end());
  CHECK(it->expires_ms == t0 + 10000 + 50000);
  CHECK(it->last_keepalive_ms == t0 + 10000);
  REQUIRE(free(b.id).ok());
  CHECK(memory->load()->size() == 1);

  advance(1min);  // a expires at +60 s
  advance(1min);
  std::optional<std::pair<bool, int64_t>> verdict;
  auto rh = self->request(pool, caf::infinite, idle_stop_atom::value, int64_t{30000});
  run();
  rh.receive([&](bool stopped, int64_t left) { verdict.emplace(stopped, left); },
             [](caf::error&) { FAIL("idle stop"); });
  REQUIRE(verdict);
  CHECK(verdict->first);
  CHECK(memory->load()->empty());
}

TEST_CASE_METHOD(durable_fixture, "pool durability: a burst of requests shares one commit") {
  start(memory);
  std::vector<decltype(self->request(pool, caf::infinite, accept_atom::value, std::string(), AllocMeta{}))> handles;
  for (int i = 0; i < 6; ++i)
    handles.push_back(self->request(pool, caf::infinite, accept_atom::value, std::string("1"), want(1)));
  run();
  int ok = 0;
  for (auto& rh : handles) rh.receive([&](AllocInspect&) { ++ok; }, [](caf::error&) { FAIL("accept failed"); });
  CHECK(ok == 6);
  CHECK(memory->commits == 1);
  CHECK(memory->load()->size() == 6);
}

TEST_CASE_METHOD(durable_fixture, "pool durability: a failed commit answers internal and stops the pool") {
  start(memory);
  auto a = accept(want(1)).value();
  memory->fail_commits = true;
  auto refused = accept(want(1));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().kind == error_kind::internal);
  REQUIRE(failure.has_value());
  // The pool is gone: nothing more is acknowledged.
  auto after = inspect(a.id);
  CHECK_FALSE(after.ok());
  memory->fail_commits = false;
  CHECK(memory->load()->size() == 1);  // only what was acknowledged
  pool = nullptr;
}

TEST_CASE_METHOD(durable_fixture, "pool durability: restart on a real state store") {
  char tmpl[] = "/tmp/poolbus-pool-durability-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  AllocInspect a;
  {
    auto store = state_store::open(dir, "w1", machine());
    REQUIRE(store.ok());
    start(std::shared_ptr<state_store>(std::move(*store)));
    a = accept(want(2, "real")).value();
    advance(20s);
    REQUIRE(keepalive(a.id, 100000).ok());
    a = inspect(a.id).value();
    stop();
  }
  {
    auto store = state_store::open(dir, "w1", machine());
    REQUIRE(store.ok());
    start(std::shared_ptr<state_store>(std::move(*store)));
    CHECK(inspect(a.id).value() == a);
    stop();
  }
  std::filesystem::remove_all(dir);
}
