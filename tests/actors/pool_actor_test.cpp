#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/deterministic_system.hpp"

#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include "actors/error_bridge.hpp"
#include "actors/pool_actor.hpp"

using namespace poolbus;
using namespace std::chrono_literals;

namespace {

// An alloc manager that does only what a test told it to expect, and fails the
// test on anything else.
struct fake_manager : alloc_manager {
  int creates_allowed = 0;
  bool fail_creates = false;
  std::set<std::string> kills_expected;  // alloc URIs
  std::vector<std::string> created, killed;

  std::string name() const override { return "fake"; }
  outcome<void> create(const AllocInspect& alloc, int64_t keepalive_ms,
                       const std::vector<AllocInspect>& existing) override {
    if (creates_allowed <= 0) FAIL("unexpected alloc_manager::create of " << alloc.id);
    --creates_allowed;
    CHECK(keepalive_ms == initial_lease_ms);
    for (const auto& other : existing) CHECK(other.id != alloc.id);
    created.push_back(alloc.id);
    if (fail_creates) return make_pool_error(error_kind::internal, "disk full");
    return {};
  }
  outcome<void> kill(const AllocInspect& alloc) override {
    if (kills_expected.erase(alloc.id) == 0) FAIL("unexpected alloc_manager::kill of " << alloc.id);
    killed.push_back(alloc.id);
    return {};
  }
};

// What a subscriber received, in order.
struct recording {
  std::vector<offer_announcement> offers;
  std::vector<alloc_event> events;
};

caf::behavior recorder(caf::event_based_actor*, std::shared_ptr<recording> rec) {
  return {
      [=](changed_atom, const offer_announcement& a) { rec->offers.push_back(a); },
      [=](alloc_event_atom, const alloc_event& e) { rec->events.push_back(e); },
  };
}

constexpr int64_t t0 = 1'700'000'000'000;  // wall_clock::simulated()'s time zero

Resources machine() { return Resources{{"cpu", 8}, {"mem", 32 * GiB}, {"disk", 100 * GiB}}; }
AllocMeta want(double cpu) { return AllocMeta{Resources{{"cpu", cpu}, {"mem", 1 * GiB}, {"disk", 1 * GiB}}, "t", {}}; }
std::string local(const AllocInspect& a) { return a.id.substr(a.id.find('/') + 1); }

struct pool_fixture : test::deterministic_system {
  caf::scoped_actor self{sys};
  std::shared_ptr<fake_manager> manager = std::make_shared<fake_manager>();
  std::shared_ptr<recording> rec = std::make_shared<recording>();
  worker_pool_actor pool;
  caf::actor sub;

  pool_fixture() {
    start(nullptr);
    sub = sys.spawn(recorder, rec);
    run();
  }
  void start(std::shared_ptr<alloc_journal> journal) {
    pool_actor_config config;
    config.id = "w1";
    config.run = "run-1";
    config.resources = machine();
    config.clock = wall_clock::simulated(t0);
    config.manager = manager;
    config.journal = std::move(journal);
    pool = spawn_pool_actor(sys, config);
    run();
  }
  // A worker restart: the pool ends (backing untouched) and a new one restores
  // what `journal` holds, as pool-worker does from its state store.
  void restart(std::shared_ptr<alloc_journal> journal) {
    caf::anon_send_exit(pool, caf::exit_reason::kill);
    run();
    start(std::move(journal));
  }
  ~pool_fixture() {
    caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(sub, caf::exit_reason::user_shutdown);
    run();
  }

  void run() { sched.run(); }
  void advance(caf::timespan d) {
    sched.clock().advance_time(d);
    run();
  }
  void subscribe() {
    caf::anon_send(pool, subscribe_atom::value, sub);
    run();
  }

  // One request, answered after running the system: the value or its pool_error.
  template <class T, class Handle, class... Ts>
  outcome<T> call(const Handle& dest, Ts&&... xs) {
    std::optional<outcome<T>> out;
    auto rh = self->request(dest, caf::infinite, std::forward<Ts>(xs)...);
    run();
    rh.receive([&](T& value) { out.emplace(std::move(value)); }, [&](caf::error& e) { out.emplace(to_pool_error(e)); });
    REQUIRE(out.has_value());
    return std::move(*out);
  }

  outcome<AllocInspect> accept(const std::string& offer, const AllocMeta& meta) {
    return call<AllocInspect>(pool, accept_atom::value, offer, meta);
  }
  outcome<AllocInspect> accept_one(double cpu) {
    manager->creates_allowed += 1;
    auto made = accept("1", want(cpu));
    REQUIRE(made.ok());
    return made;
  }
  outcome<AllocInspect> inspect(const std::string& id) { return call<AllocInspect>(pool, inspect_atom::value, id); }
  outcome<int64_t> keepalive(const std::string& id, int64_t ms) {
    return call<int64_t>(pool, keepalive_atom::value, id, ms);
  }
  outcome<caf::ok_atom> free(const std::string& id) { return call<caf::ok_atom>(pool, free_atom::value, id); }
  std::vector<OfferInfo> offers() { return call<std::vector<OfferInfo>>(pool, offers_atom::value).value(); }
  PoolStatus pool_status() { return call<PoolStatus>(pool, status_atom::value).value(); }
  Resources available() { return pool_status().available; }
  // An exec op on alloc `id`: this pool runs no execs, so a live alloc's actor
  // answers internal, while the pool itself answers not_exist for a gone alloc.
  outcome<exec_answer> exec_list(const std::string& id) {
    exec_call list;
    list.op = exec_op::list;
    list.alloc = id;
    return call<exec_answer>(pool, exec_atom::value, list);
  }

  // reflow StopIfIdleFor through the actor: (stopped, max time to expiry).
  std::pair<bool, int64_t> idle_stop(int64_t idle_ms) {
    std::optional<std::pair<bool, int64_t>> out;
    auto rh = self->request(pool, caf::infinite, idle_stop_atom::value, idle_ms);
    run();
    rh.receive([&](bool stopped, int64_t left) { out.emplace(stopped, left); },
               [&](caf::error& e) { FAIL("idle_stop: " << to_pool_error(e).to_string()); });
    REQUIRE(out.has_value());
    return *out;
  }

  std::vector<alloc_event_kind> event_kinds() const {
    std::vector<alloc_event_kind> out;
    for (const auto& e : rec->events) out.push_back(e.event);
    return out;
  }
  // Every announcement so far carries the seq after the one before it.
  void require_consecutive_seqs() const {
    for (size_t i = 1; i < rec->offers.size(); ++i) REQUIRE(rec->offers[i].seq == rec->offers[i - 1].seq + 1);
  }
};

using k = alloc_event_kind;

}  // namespace

TEST_CASE_METHOD(pool_fixture, "pool actor: accept, inspect, keepalive and free through the actor") {
  subscribe();
  REQUIRE(call<std::string>(pool, pool_id_atom::value).value() == "w1");
  REQUIRE(pool_status().resources == machine());
  auto current = offers();
  REQUIRE(current.size() == 1);
  REQUIRE(current[0].id == "1");
  REQUIRE(current[0].pool == "w1");
  REQUIRE(current[0].available == machine());
  REQUIRE(call<OfferInfo>(pool, offer_atom::value, std::string{"1"})->available == machine());
  REQUIRE(call<OfferInfo>(pool, offer_atom::value, std::string{"9"}).error().kind == error_kind::not_exist);

  auto a = accept_one(2).value();
  REQUIRE(a.pool == "w1");
  REQUIRE(a.id.rfind("w1/", 0) == 0);
  REQUIRE(a.created_ms == t0);
  REQUIRE(a.expires_ms == t0 + 120000);
  REQUIRE(a.resources == want(2).want);
  REQUIRE(manager->created == std::vector<std::string>{a.id});

  manager->creates_allowed = 1;
  auto b = accept("w1/1", want(1));  // a full offer URI of this pool works too
  REQUIRE(b.ok());
  REQUIRE(accept("w2/1", want(1)).error().kind == error_kind::not_exist);
  REQUIRE(accept("1", AllocMeta{}).error().kind == error_kind::precondition);
  REQUIRE(available().get("cpu") == 5);

  REQUIRE(inspect(local(a)).value() == a);
  REQUIRE(inspect(a.id).value() == a);
  REQUIRE(inspect("w2/" + local(a)).error().kind == error_kind::not_exist);
  REQUIRE(inspect("w1/").error().kind == error_kind::invalid);

  advance(1min);
  REQUIRE(keepalive(a.id, 10 * 60000).value() == 5 * 60000);  // capped at 5 minutes
  REQUIRE(inspect(local(a))->last_keepalive_ms == t0 + 60000);
  REQUIRE(inspect(local(a))->expires_ms == t0 + 6 * 60000);
  REQUIRE(keepalive(local(a), 0).error().kind == error_kind::invalid);
  REQUIRE(inspect(a.id).ok());  // alive: still in the table

  auto status = call<PoolStatus>(pool, status_atom::value).value();
  REQUIRE(status.id == "w1");
  REQUIRE(status.allocs == 2);
  REQUIRE(status.resources == machine());
  REQUIRE(status.available.get("cpu") == 5);
  REQUIRE(call<std::vector<AllocInspect>>(pool, allocs_atom::value)->size() == 2);

  manager->kills_expected = {a.id};
  REQUIRE(free(local(a)).ok());
  REQUIRE(manager->killed == std::vector<std::string>{a.id});
  REQUIRE(free(local(a)).error().kind == error_kind::not_exist);
  REQUIRE(inspect(a.id).error().kind == error_kind::not_exist);
  REQUIRE(keepalive(a.id, 60000).error().kind == error_kind::not_exist);
  REQUIRE(available().get("cpu") == 7);
  REQUIRE(call<PoolStatus>(pool, status_atom::value)->allocs == 1);

  REQUIRE(event_kinds() == std::vector<k>{k::created, k::created, k::freed});
  REQUIRE(rec->events[2].alloc.id == a.id);
  REQUIRE(rec->events[2].pool == "w1");
  REQUIRE(manager->kills_expected.empty());
}

TEST_CASE_METHOD(pool_fixture, "pool actor: an alloc expires and is announced at exactly 2 minutes, unasked") {
  subscribe();
  auto a = accept_one(3).value();
  REQUIRE(rec->offers.size() == 2);  // on subscribe, then the accept
  REQUIRE(rec->offers.back().available.get("cpu") == 5);

  advance(2min - 1ms);
  REQUIRE(rec->offers.size() == 2);
  REQUIRE(event_kinds() == std::vector<k>{k::created});

  advance(1ms);
  REQUIRE(event_kinds() == std::vector<k>{k::created, k::expired});
  REQUIRE(rec->events[1].alloc.id == a.id);
  REQUIRE(rec->events[1].ts_ms == t0 + 120000);
  REQUIRE(rec->offers.size() == 3);
  const auto& expired = rec->offers.back();
  REQUIRE(expired.available == machine());
  REQUIRE(expired.allocs == 1);  // expired, not yet collected
  REQUIRE(expired.ts_ms == t0 + 120000);
  REQUIRE(expired.offers.size() == 1);
  REQUIRE(expired.offers[0].id == "w1/1");
  require_consecutive_seqs();

  // Nothing more happens by itself: the expiry is reported once.
  advance(10min);
  REQUIRE(rec->offers.size() == 3);
  REQUIRE(rec->events.size() == 2);
}

TEST_CASE_METHOD(pool_fixture, "pool actor: keepalive keeps an alloc alive across 10 simulated minutes") {
  subscribe();
  auto a = accept_one(2).value();
  for (int i = 0; i < 20; ++i) {
    advance(30s);
    REQUIRE(keepalive(local(a), 60000).value() == 60000);
  }
  REQUIRE(event_kinds() == std::vector<k>{k::created});
  REQUIRE(inspect(local(a))->expires_ms == t0 + 10 * 60000 + 60000);
  REQUIRE(available().get("cpu") == 6);
  REQUIRE(rec->offers.size() == 2);  // keepalives of a live alloc change nothing

  advance(60s - 1ms);
  REQUIRE(event_kinds() == std::vector<k>{k::created});
  advance(1ms);
  REQUIRE(event_kinds() == std::vector<k>{k::created, k::expired});

  // An expired alloc that was not collected is revived by keepalive, and the offer shrinks again.
  advance(5s);
  REQUIRE(keepalive(local(a), 60000).value() == 60000);
  REQUIRE(available().get("cpu") == 6);
  REQUIRE(rec->offers.back().available.get("cpu") == 6);
  require_consecutive_seqs();
  // The revived lease expires again, and is reported again.
  advance(60s);
  REQUIRE(event_kinds() == std::vector<k>{k::created, k::expired, k::expired});
}

TEST_CASE_METHOD(pool_fixture, "pool actor: accept collects expired allocs to make room") {
  subscribe();
  auto a = accept_one(6).value();
  auto b = accept_one(1).value();
  REQUIRE(exec_list(local(a)).error().kind == error_kind::internal);  // a's actor, spawned: no execs here
  advance(1min);
  REQUIRE(keepalive(b.id, 5 * 60000).ok());
  advance(1min);  // a expired; b alive
  REQUIRE(event_kinds() == std::vector<k>{k::created, k::created, k::expired});

  manager->kills_expected = {a.id};
  auto c = accept_one(4).value();
  REQUIRE(manager->killed == std::vector<std::string>{a.id});
  REQUIRE(event_kinds() == std::vector<k>{k::created, k::created, k::expired, k::collected, k::created});
  REQUIRE(rec->events[3].alloc.id == a.id);
  REQUIRE(inspect(a.id).error().kind == error_kind::not_exist);
  REQUIRE(keepalive(a.id, 1000).error().kind == error_kind::not_exist);
  REQUIRE(exec_list(a.id).error().kind == error_kind::not_exist);
  REQUIRE(inspect(b.id).ok());
  REQUIRE(available().get("cpu") == 3);
  REQUIRE(rec->offers.back().allocs == 2);
  REQUIRE(rec->offers.back().available.get("cpu") == 3);
  require_consecutive_seqs();
  (void)c;
}

TEST_CASE_METHOD(pool_fixture, "pool actor: a freed alloc's ops and exec ops answer not_exist") {
  auto a = accept_one(2).value();
  REQUIRE(exec_list(a.id).error().kind == error_kind::internal);  // reached a's actor
  REQUIRE(inspect(a.id).value() == a);
  REQUIRE(keepalive(a.id, 30000).value() == 30000);

  manager->kills_expected = {a.id};
  REQUIRE(free(a.id).ok());
  REQUIRE(manager->killed == std::vector<std::string>{a.id});
  REQUIRE(inspect(a.id).error().kind == error_kind::not_exist);
  REQUIRE(keepalive(a.id, 30000).error().kind == error_kind::not_exist);
  REQUIRE(free(a.id).error().kind == error_kind::not_exist);
  REQUIRE(exec_list(a.id).error().kind == error_kind::not_exist);
  REQUIRE(available() == machine());
}

TEST_CASE_METHOD(pool_fixture, "pool actor: an alloc actor is spawned only by the alloc's first exec op") {
  auto running_before = sys.registry().running();
  auto a = accept_one(1).value();
  auto b = accept_one(1).value();
  REQUIRE(sys.registry().running() == running_before);  // accepts spawn nothing
  REQUIRE(exec_list(a.id).error().kind == error_kind::internal);
  REQUIRE(sys.registry().running() == running_before + 1);
  REQUIRE(exec_list(local(a)).error().kind == error_kind::internal);  // one actor per alloc, by URI or local id
  REQUIRE(sys.registry().running() == running_before + 1);
  REQUIRE(inspect(a.id).value() == a);
  // Freeing an alloc that never had an actor works as ever.
  manager->kills_expected = {b.id};
  REQUIRE(free(b.id).ok());
  REQUIRE(exec_list(b.id).error().kind == error_kind::not_exist);
  REQUIRE(sys.registry().running() == running_before + 1);
}

TEST_CASE_METHOD(pool_fixture, "pool actor: 50 concurrent accepts of one offer never oversubscribe") {
  manager->creates_allowed = 8;  // exactly as many as fit; a ninth create fails the test
  std::vector<decltype(self->request(pool, caf::infinite, accept_atom::value, std::string{}, AllocMeta{}))> pending;
  for (int i = 0; i < 50; ++i)
    pending.push_back(self->request(pool, caf::infinite, accept_atom::value, std::string{"1"}, want(1)));
  run();
  int granted = 0, refused = 0;
  Resources granted_sum;
  for (auto& rh : pending) {
    rh.receive(
        [&](AllocInspect& a) {
          ++granted;
          granted_sum = granted_sum.add(a.resources);
        },
        [&](caf::error& e) {
          ++refused;
          REQUIRE(to_pool_error(e).kind == error_kind::not_exist);
        });
  }
  REQUIRE(granted == 8);
  REQUIRE(refused == 42);
  REQUIRE(machine().available(granted_sum));
  REQUIRE(available().get("cpu") == 0);
  REQUIRE(offers().empty());
  REQUIRE(call<PoolStatus>(pool, status_atom::value)->allocs == 8);
}

TEST_CASE_METHOD(pool_fixture, "pool actor: seq grows by one with each change of the offer") {
  subscribe();
  REQUIRE(rec->offers.size() == 1);  // the current offer at once
  const auto first = rec->offers[0];
  REQUIRE(first.pool == "w1");
  REQUIRE(first.run == "run-1");
  REQUIRE(first.available == machine());
  REQUIRE(first.resources == machine());
  REQUIRE(first.allocs == 0);

  auto a = accept_one(2).value();        // change 1
  auto b = accept_one(2).value();        // change 2
  REQUIRE(keepalive(a.id, 60000).ok());  // a live alloc's keepalive: no change
  REQUIRE(rec->offers.size() == 3);
  manager->kills_expected = {b.id};
  REQUIRE(free(b.id).ok());              // change 3
  advance(1min);                         // a expires: change 4
  REQUIRE(keepalive(a.id, 60000).ok());  // revival: change 5
  manager->kills_expected = {a.id};
  REQUIRE(free(a.id).ok());  // change 6
  REQUIRE(rec->offers.size() == 7);
  for (size_t i = 0; i < rec->offers.size(); ++i) REQUIRE(rec->offers[i].seq == first.seq + static_cast<int64_t>(i));
  REQUIRE(rec->offers[1].available.get("cpu") == 6);
  REQUIRE(rec->offers[2].available.get("cpu") == 4);
  REQUIRE(rec->offers[3].available.get("cpu") == 6);
  REQUIRE(rec->offers[4].available.get("cpu") == 8);
  REQUIRE(rec->offers[5].available.get("cpu") == 6);
  REQUIRE(rec->offers[6].allocs == 0);
  REQUIRE(rec->offers[6].available == machine());

  // A second subscriber gets the current announcement, same seq, at once.
  auto late = std::make_shared<recording>();
  auto late_sub = sys.spawn(recorder, late);
  caf::anon_send(pool, subscribe_atom::value, late_sub);
  run();
  REQUIRE(late->offers.size() == 1);
  REQUIRE(late->offers[0].seq == rec->offers.back().seq);
  caf::anon_send_exit(late_sub, caf::exit_reason::user_shutdown);
  run();
}

TEST_CASE_METHOD(pool_fixture, "pool actor: a failed alloc manager create leaves no alloc behind") {
  subscribe();
  manager->creates_allowed = 1;
  manager->fail_creates = true;
  auto made = accept("1", want(2));
  REQUIRE(made.error().kind == error_kind::internal);
  REQUIRE(made.error().message.find("disk full") != std::string::npos);
  REQUIRE(manager->created.size() == 1);
  REQUIRE(available() == machine());
  REQUIRE(call<std::vector<AllocInspect>>(pool, allocs_atom::value)->empty());
  REQUIRE(rec->events.empty());
  REQUIRE(rec->offers.size() == 1);
}

TEST_CASE_METHOD(pool_fixture, "pool actor: a restart restores the journal's allocs, then idle stop") {
  auto n = accept_one(1).value();

  AllocInspect restored;
  restored.id = "w1/00000000000000aa";
  restored.pool = "w1";
  restored.resources = want(3).want;
  restored.meta = want(3);
  restored.created_ms = t0 - 60000;
  restored.expires_ms = t0 + 60000;
  auto journal = std::make_shared<memory_journal>();
  REQUIRE(journal->commit({journal_change::put(restored)}).ok());
  restart(journal);
  REQUIRE(inspect(n.id).error().kind == error_kind::not_exist);  // the restarted pool holds what the journal holds
  REQUIRE(inspect("00000000000000aa")->expires_ms == t0 + 60000);
  REQUIRE(inspect(restored.id)->resources == want(3).want);
  REQUIRE(available().get("cpu") == 5);

  // Busy: the restored alloc has a minute left.
  auto busy = idle_stop(30000);
  REQUIRE_FALSE(busy.first);
  REQUIRE(busy.second == 60000);

  subscribe();
  advance(1min + 30s);  // expired for 30 s
  manager->kills_expected = {restored.id};
  auto stopped = idle_stop(30000);
  REQUIRE(stopped.first);
  REQUIRE(manager->killed == std::vector<std::string>{restored.id});
  REQUIRE(event_kinds() == std::vector<k>{k::expired, k::freed});
  REQUIRE(offers().empty());
  REQUIRE(rec->offers.back().offers.empty());
  REQUIRE(rec->offers.back().allocs == 0);
  REQUIRE(inspect(restored.id).error().kind == error_kind::not_exist);
  // A stopped pool takes no alloc (no create reaches the manager).
  manager->creates_allowed = 0;
  REQUIRE(accept("1", want(1)).error().kind == error_kind::not_exist);
}

TEST_CASE_METHOD(pool_fixture,
                 "pool actor: a drained pool offers nothing, refuses accepts, serves its allocs, and "
                 "stays drained across a restart") {
  auto journal = std::make_shared<memory_journal>();
  restart(journal);
  subscribe();
  auto held = accept_one(2);
  REQUIRE(call<caf::ok_atom>(pool, drain_atom::value, true).ok());
  CHECK(offers().empty());
  CHECK(rec->offers.back().draining);
  CHECK(rec->offers.back().offers.empty());
  require_consecutive_seqs();
  CHECK(pool_status().draining);
  manager->creates_allowed += 1;
  CHECK(accept("1", want(1)).error().kind == error_kind::unavailable);
  CHECK(keepalive(local(*held), 60000).ok());  // its allocs are served as before
  CHECK(inspect(local(*held)).ok());
  auto seqs = rec->offers.size();
  REQUIRE(call<caf::ok_atom>(pool, drain_atom::value, true).ok());  // again: nothing changes
  CHECK(rec->offers.size() == seqs);
  restart(journal);
  CHECK(pool_status().draining);
  CHECK(offers().empty());
  REQUIRE(call<caf::ok_atom>(pool, drain_atom::value, false).ok());
  CHECK_FALSE(pool_status().draining);
  CHECK(offers().size() == 1);
}

TEST_CASE_METHOD(pool_fixture, "pool actor: labels are announced and listed") {
  caf::anon_send_exit(pool, caf::exit_reason::kill);
  run();
  pool_actor_config config;
  config.id = "w1";
  config.run = "run-1";
  config.resources = machine();
  config.labels = {{"zone", "eu-1"}};
  config.clock = wall_clock::simulated(t0);
  config.manager = manager;
  pool = spawn_pool_actor(sys, config);
  run();
  subscribe();
  REQUIRE_FALSE(rec->offers.empty());
  CHECK(rec->offers.back().labels == Labels{{"zone", "eu-1"}});
  CHECK(pool_status().labels == Labels{{"zone", "eu-1"}});
}
