// Tests of the mux actor under CAF's test_coordinator, over fake pools
// written here: typed pool_actor behaviours that journal what they are asked
// and fail the test on any message they do not expect.
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/deterministic_system.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actors/error_bridge.hpp"
#include "actors/reflow_mux_actor.hpp"
#include "schemas/api_messages.hpp"

using namespace poolbus;
// Far beyond any virtual time a test reaches (caf::duration has no hours).
const auto no_deadline = std::chrono::seconds(24 * 3600);
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

const Resources small{{"mem", 10}, {"cpu", 1}, {"disk", 20}};
const Resources medium = small.scale(2);
const Resources large = small.scale(4);

using journal = std::shared_ptr<std::vector<std::string>>;

template <class T>
caf::result<T> unexpected(const std::string& pool, const std::string& what) {
  FAIL_CHECK("pool " << pool << " got an unexpected " << what);
  return make_error(error_kind::internal, "unexpected " + what);
}

// reflow mux_test.go's idPool: names offers and allocs after the ids it is
// asked for; nothing else is expected.
struct id_pool_state {
  static inline const char* name = "id_pool";
};

pool_actor::behavior_type id_pool(pool_actor::stateful_pointer<id_pool_state>, std::string id, journal log) {
  return {
      [=](pool_id_atom) { return id; },
      [=](status_atom) { return unexpected<PoolStatus>(id, "status"); },
      [=](offers_atom) { return unexpected<std::vector<OfferInfo>>(id, "offers"); },
      [=](offer_atom, const std::string& local) -> caf::result<OfferInfo> {
        log->push_back(id + ":offer:" + local);
        return OfferInfo{local, id, {}};
      },
      [=](accept_atom, const std::string&, const AllocMeta&) { return unexpected<AllocInspect>(id, "accept"); },
      [=](allocs_atom) { return unexpected<std::vector<AllocInspect>>(id, "allocs"); },
      [=](inspect_atom, const std::string& local) -> caf::result<AllocInspect> {
        log->push_back(id + ":inspect:" + local);
        AllocInspect a;
        a.id = id + "/" + local;
        a.pool = id;
        return a;
      },
      [=](keepalive_atom, const std::string& local, int64_t iv) -> caf::result<int64_t> {
        log->push_back(id + ":keepalive:" + local);
        return iv;
      },
      [=](free_atom, const std::string& local) -> caf::result<caf::ok_atom> {
        log->push_back(id + ":free:" + local);
        return caf::ok_atom::value;
      },
  };
}

// A resource pool as protocol.md describes one: a single offer "1" of all it
// has left; accept grants while it fits. `silent` never answers offers,
// status or allocs (a worker that stopped answering); `refuse_accepts`
// answers every accept not_exist (someone else took the offer).
struct fake_spec {
  std::string id;
  Resources available;
  bool silent = false;
  bool refuse_accepts = false;
};

struct fake_pool_state {
  fake_spec spec;
  Resources total;
  std::map<std::string, AllocInspect> allocs;  // by local id
  int next_alloc = 0;
  std::vector<caf::typed_response_promise<std::vector<OfferInfo>>> unanswered_offers;
  std::vector<caf::typed_response_promise<PoolStatus>> unanswered_status;
  std::vector<caf::typed_response_promise<std::vector<AllocInspect>>> unanswered_allocs;
  static inline const char* name = "fake_pool";
};

pool_actor::behavior_type fake_pool(pool_actor::stateful_pointer<fake_pool_state> self, fake_spec spec, journal log) {
  self->state.spec = spec;
  self->state.total = spec.available;
  auto id = spec.id;
  return {
      [=](pool_id_atom) { return id; },
      [=](status_atom) -> caf::result<PoolStatus> {
        log->push_back(id + ":status");
        auto& st = self->state;
        if (st.spec.silent) {
          st.unanswered_status.push_back(self->make_response_promise<PoolStatus>());
          return st.unanswered_status.back();
        }
        return PoolStatus{id, st.total, st.spec.available, static_cast<int64_t>(st.allocs.size()), 0};
      },
      [=](offers_atom) -> caf::result<std::vector<OfferInfo>> {
        log->push_back(id + ":offers");
        auto& st = self->state;
        if (st.spec.silent) {
          st.unanswered_offers.push_back(self->make_response_promise<std::vector<OfferInfo>>());
          return st.unanswered_offers.back();
        }
        const auto& a = st.spec.available;
        if (a.units("cpu") <= 0 || a.units("mem") <= 0 || a.units("disk") <= 0) return std::vector<OfferInfo>{};
        return std::vector<OfferInfo>{{"1", id, a}};
      },
      [=](offer_atom, const std::string& local) -> caf::result<OfferInfo> {
        log->push_back(id + ":offer:" + local);
        if (local != "1") return make_error(error_kind::not_exist, "no offer " + local);
        return OfferInfo{"1", id, self->state.spec.available};
      },
      [=](accept_atom, const std::string& local, const AllocMeta& meta) -> caf::result<AllocInspect> {
        log->push_back(id + ":accept:" + local);
        auto& st = self->state;
        if (st.spec.refuse_accepts || local != "1" || !st.spec.available.available(meta.want))
          return make_error(error_kind::not_exist, "offer " + local + " cannot cover the request");
        st.spec.available = st.spec.available.sub(meta.want);
        AllocInspect a;
        auto alloc_local = "a" + std::to_string(++st.next_alloc);
        a.id = id + "/" + alloc_local;
        a.pool = id;
        a.resources = meta.want;
        a.meta = meta;
        st.allocs[alloc_local] = a;
        return a;
      },
      [=](allocs_atom) -> caf::result<std::vector<AllocInspect>> {
        log->push_back(id + ":allocs");
        auto& st = self->state;
        if (st.spec.silent) {
          st.unanswered_allocs.push_back(self->make_response_promise<std::vector<AllocInspect>>());
          return st.unanswered_allocs.back();
        }
        std::vector<AllocInspect> out;
        for (const auto& [_, a] : st.allocs) out.push_back(a);
        return out;
      },
      [=](inspect_atom, const std::string& local) -> caf::result<AllocInspect> {
        log->push_back(id + ":inspect:" + local);
        auto it = self->state.allocs.find(local);
        if (it == self->state.allocs.end()) return make_error(error_kind::not_exist, "no alloc " + local);
        return it->second;
      },
      [=](keepalive_atom, const std::string& local, int64_t) -> caf::result<int64_t> {
        return unexpected<int64_t>(id, "keepalive of " + local);
      },
      [=](free_atom, const std::string& local) -> caf::result<caf::ok_atom> {
        log->push_back(id + ":free:" + local);
        auto& st = self->state;
        auto it = st.allocs.find(local);
        if (it == st.allocs.end()) return make_error(error_kind::not_exist, "no alloc " + local);
        st.spec.available = st.spec.available.add(it->second.resources);
        st.allocs.erase(it);
        return caf::ok_atom::value;
      },
  };
}

struct mux_fixture : test::deterministic_system {
  caf::scoped_actor self{sys};
  journal log = std::make_shared<std::vector<std::string>>();
  std::vector<caf::actor> spawned;  // every actor to stop at the end

  ~mux_fixture() {
    for (auto& a : spawned) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    run();
  }

  void run() { sched.run(); }
  void advance(caf::timespan d) {
    sched.clock().advance_time(d);
    run();
  }

  reflow_mux_actor mux(reflow_mux_config config = {}) {
    config.clock = wall_clock::simulated();
    auto m = spawn_reflow_mux_actor(sys, config);
    spawned.push_back(caf::actor_cast<caf::actor>(m));
    return m;
  }
  pool_actor id_pool_named(const std::string& id) {
    auto p = sys.spawn(id_pool, id, log);
    spawned.push_back(caf::actor_cast<caf::actor>(p));
    return p;
  }
  pool_actor fake(fake_spec spec) {
    auto p = sys.spawn(fake_pool, std::move(spec), log);
    spawned.push_back(caf::actor_cast<caf::actor>(p));
    return p;
  }

  // Sends a request and runs the system; the reply must be there by then
  // (the timeout is far beyond any virtual time a test reaches).
  template <class T, class... Ts>
  outcome<T> ask(const reflow_mux_actor& m, Ts... xs) {
    auto rh = self->request(caf::actor_cast<caf::actor>(m), no_deadline, xs...);
    run();
    return collect<T>(rh);
  }
  template <class T, class Handle>
  outcome<T> collect(Handle& rh) {
    if (self->mailbox().empty()) return make_pool_error(error_kind::internal, "test: no reply yet");
    outcome<T> result = make_pool_error(error_kind::internal, "test: no reply");
    rh.receive([&](T& v) { result = std::move(v); }, [&](caf::error& e) { result = to_pool_error(e); });
    return result;
  }

  void set_pools(const reflow_mux_actor& m, std::vector<pool_actor> pools) {
    REQUIRE(ask<caf::ok_atom>(m, set_pools_atom::value, std::move(pools)).ok());
  }

  int count(const std::string& entry) const { return static_cast<int>(std::count(log->begin(), log->end(), entry)); }
};

std::vector<std::string> ids(const std::vector<OfferInfo>& offers) {
  std::vector<std::string> out;
  for (const auto& o : offers) out.push_back(o.id);
  return out;
}

}  // namespace

TEST_CASE_METHOD(mux_fixture, "reflow mux: reflow TestMux (URI routing and its errors)") {
  auto m = mux();
  set_pools(m, {id_pool_named("a"), id_pool_named("b"), id_pool_named("c")});
  CHECK(ask<int>(m, size_atom::value).value() == 3);

  auto offer = ask<OfferInfo>(m, offer_atom::value, std::string("a/blah"));
  REQUIRE(offer.ok());
  CHECK(offer->id == "a/blah");  // the pool answered "blah"; the mux names it by URI
  CHECK(offer->pool == "a");
  auto alloc = ask<AllocInspect>(m, inspect_atom::value, std::string("c/ok"));
  REQUIRE(alloc.ok());
  CHECK(alloc->id == "c/ok");
  CHECK(*log == std::vector<std::string>{"a:offer:blah", "c:inspect:ok"});

  struct error_case {
    std::string what;
    std::string uri;
    error_kind kind;
  };
  for (const auto& c : std::vector<error_case>{{"inspect", "blah", error_kind::invalid},
                                               {"offer", "blah", error_kind::invalid},
                                               {"inspect", "foo/bar", error_kind::not_exist},
                                               {"offer", "foo/bar", error_kind::not_exist},
                                               {"accept", "blah", error_kind::invalid},
                                               {"accept", "foo/1", error_kind::not_exist},
                                               {"keepalive", "foo/bar", error_kind::not_exist},
                                               {"free", "blah", error_kind::invalid},
                                               {"free", "foo/bar", error_kind::not_exist}}) {
    INFO(c.what << " " << c.uri);
    pool_error error;
    if (c.what == "inspect")
      error = ask<AllocInspect>(m, inspect_atom::value, c.uri).error();
    else if (c.what == "offer")
      error = ask<OfferInfo>(m, offer_atom::value, c.uri).error();
    else if (c.what == "accept")
      error = ask<AllocInspect>(m, accept_atom::value, c.uri, AllocMeta{small, "", {}}).error();
    else if (c.what == "keepalive")
      error = ask<int64_t>(m, keepalive_atom::value, c.uri, int64_t{1000}).error();
    else
      error = ask<caf::ok_atom>(m, free_atom::value, c.uri).error();
    CHECK(error.kind == c.kind);
  }
  CHECK(log->size() == 2);  // no error case reached a pool

  // Keepalive and free reach the pool with the local id.
  CHECK(ask<int64_t>(m, keepalive_atom::value, std::string("b/x"), int64_t{30000}).value() == 30000);
  CHECK(ask<caf::ok_atom>(m, free_atom::value, std::string("b/x")).ok());
  CHECK(log->at(2) == "b:keepalive:x");
  CHECK(log->at(3) == "b:free:x");
  CHECK(ask<std::string>(m, pool_id_atom::value).value().empty());
}

TEST_CASE_METHOD(mux_fixture, "reflow mux: set_pools replaces the membership") {
  auto m = mux();
  CHECK(ask<int>(m, size_atom::value).value() == 0);
  CHECK(ask<std::vector<OfferInfo>>(m, offers_atom::value).value().empty());
  set_pools(m, {fake({"p1", large}), fake({"p2", medium})});
  CHECK(ask<int>(m, size_atom::value).value() == 2);
  set_pools(m, {fake({"p3", small})});
  CHECK(ask<int>(m, size_atom::value).value() == 1);
  CHECK(ids(ask<std::vector<OfferInfo>>(m, offers_atom::value).value()) == std::vector<std::string>{"p3/1"});
  CHECK(ask<OfferInfo>(m, offer_atom::value, std::string("p1/1")).error().kind == error_kind::not_exist);
  // A repeated id is kept once.
  set_pools(m, {fake({"p4", small}), fake({"p4", large})});
  CHECK(ask<int>(m, size_atom::value).value() == 1);
  CHECK(ask<std::vector<OfferInfo>>(m, offers_atom::value).value().at(0).available == small);
}

TEST_CASE_METHOD(mux_fixture, "reflow mux: offers, accept, allocs, pools and status across pools") {
  auto m = mux();
  set_pools(m, {fake({"p2", medium}), fake({"p1", large})});
  auto offers = ask<std::vector<OfferInfo>>(m, offers_atom::value);
  REQUIRE(offers.ok());
  CHECK(ids(*offers) == std::vector<std::string>{"p1/1", "p2/1"});
  CHECK(offers->at(0).pool == "p1");
  CHECK(offers->at(0).available == large);

  auto alloc = ask<AllocInspect>(m, accept_atom::value, std::string("p1/1"), AllocMeta{small, "bob", {}});
  REQUIRE(alloc.ok());
  CHECK(alloc->id == "p1/a1");       // already a URI from the pool: left alone
  CHECK(count("p1:accept:1") == 1);  // the pool got its local offer id
  auto refused = ask<AllocInspect>(m, accept_atom::value, std::string("p2/1"), AllocMeta{large, "bob", {}});
  CHECK(refused.error().kind == error_kind::not_exist);

  auto allocs = ask<std::vector<AllocInspect>>(m, allocs_atom::value);
  REQUIRE(allocs.ok());
  REQUIRE(allocs->size() == 1);
  CHECK(allocs->at(0).id == "p1/a1");
  CHECK(ask<AllocInspect>(m, inspect_atom::value, std::string("p1/a1")).value().meta.owner == "bob");

  auto pools = ask<std::vector<PoolStatus>>(m, pools_atom::value);
  REQUIRE(pools.ok());
  REQUIRE(pools->size() == 2);
  CHECK(pools->at(0).id == "p1");
  CHECK(pools->at(0).available == large.sub(small));
  CHECK(pools->at(0).allocs == 1);
  auto status = ask<PoolStatus>(m, status_atom::value);
  REQUIRE(status.ok());
  CHECK(status->resources == large.add(medium));
  CHECK(status->allocs == 1);

  CHECK(ask<caf::ok_atom>(m, free_atom::value, std::string("p1/a1")).ok());
  CHECK(ask<AllocInspect>(m, inspect_atom::value, std::string("p1/a1")).error().kind == error_kind::not_exist);
}

TEST_CASE_METHOD(mux_fixture, "reflow mux: a pool that misses the gather deadline is dropped, not waited for") {
  reflow_mux_config config;
  config.gather_deadline = milliseconds(1000);
  auto m = mux(config);
  set_pools(m, {fake({"fast", large}), fake({"slow", large, true})});

  auto offers = self->request(caf::actor_cast<caf::actor>(m), no_deadline, offers_atom::value);
  auto allocs = self->request(caf::actor_cast<caf::actor>(m), no_deadline, allocs_atom::value);
  auto pools = self->request(caf::actor_cast<caf::actor>(m), no_deadline, pools_atom::value);
  run();
  CHECK(count("slow:offers") == 1);
  CHECK(self->mailbox().empty());  // still waiting for the slow pool
  advance(milliseconds(999));
  CHECK(self->mailbox().empty());
  advance(milliseconds(1));
  auto got_offers = collect<std::vector<OfferInfo>>(offers);
  REQUIRE(got_offers.ok());
  CHECK(ids(*got_offers) == std::vector<std::string>{"fast/1"});
  auto got_allocs = collect<std::vector<AllocInspect>>(allocs);
  REQUIRE(got_allocs.ok());
  CHECK(got_allocs->empty());
  auto got_pools = collect<std::vector<PoolStatus>>(pools);
  REQUIRE(got_pools.ok());
  REQUIRE(got_pools->size() == 1);
  CHECK(got_pools->at(0).id == "fast");
}

TEST_CASE_METHOD(mux_fixture, "reflow mux: allocate picks the best offer") {
  auto m = mux();
  set_pools(m, {fake({"a", large}), fake({"b", medium}), fake({"c", small.scale(1.5)})});
  auto alloc = ask<AllocInspect>(m, allocate_atom::value, medium, int64_t{0}, AllocMeta{{}, "carol", {{"k", "v"}}});
  REQUIRE(alloc.ok());
  CHECK(alloc->pool == "b");  // exactly max beats a bigger offer; c is below min
  CHECK(alloc->resources == medium);
  CHECK(alloc->meta.owner == "carol");
  CHECK(alloc->meta.labels == Labels{{"k", "v"}});
  CHECK(count("a:accept:1") == 0);
  CHECK(count("c:accept:1") == 0);

  SECTION("a wide allocate takes max out of a bigger offer") {
    auto wide = ask<AllocInspect>(m, allocate_atom::value, small, int64_t{1}, AllocMeta{});
    REQUIRE(wide.ok());
    CHECK(wide->pool == "a");
    CHECK(wide->resources == medium);
  }
  SECTION("a negative width is invalid") {
    CHECK(ask<AllocInspect>(m, allocate_atom::value, small, int64_t{-1}, AllocMeta{}).error().kind ==
          error_kind::invalid);
  }
}

TEST_CASE_METHOD(mux_fixture, "reflow mux: allocate retries after a not_exist accept") {
  auto m = mux();
  // "taken" looks like the best match but someone else got there first.
  set_pools(m, {fake({"taken", medium, false, true}), fake({"spare", large})});
  auto alloc = ask<AllocInspect>(m, allocate_atom::value, small, int64_t{0}, AllocMeta{});
  REQUIRE(alloc.ok());
  CHECK(alloc->pool == "spare");
  CHECK(alloc->resources == small);
  CHECK(count("taken:accept:1") == 1);
  CHECK(count("spare:accept:1") == 1);
  CHECK(count("spare:offers") == 1);  // both tried in the same round
}

TEST_CASE_METHOD(mux_fixture, "reflow mux: allocate answers unavailable when nothing fits") {
  auto m = mux();
  set_pools(m, {fake({"a", small}), fake({"b", medium})});
  auto alloc = ask<AllocInspect>(m, allocate_atom::value, large, int64_t{0}, AllocMeta{});
  REQUIRE_FALSE(alloc.ok());
  CHECK(alloc.error().kind == error_kind::unavailable);
  CHECK(count("a:offers") == 6);  // reflow's six tries
  CHECK(count("a:accept:1") == 0);

  SECTION("also when there are no pools at all") {
    auto empty = mux();
    CHECK(ask<AllocInspect>(empty, allocate_atom::value, small, int64_t{0}, AllocMeta{}).error().kind ==
          error_kind::unavailable);
  }
}

TEST_CASE_METHOD(mux_fixture, "reflow mux: allocates are serialised") {
  auto m = mux();
  set_pools(m, {fake({"only", medium})});
  auto mux_handle = caf::actor_cast<caf::actor>(m);
  auto first = self->request(mux_handle, no_deadline, allocate_atom::value, medium, int64_t{0}, AllocMeta{});
  auto second = self->request(mux_handle, no_deadline, allocate_atom::value, medium, int64_t{0}, AllocMeta{});
  run();
  auto got_first = collect<AllocInspect>(first);
  REQUIRE(got_first.ok());
  CHECK(got_first->pool == "only");
  auto got_second = collect<AllocInspect>(second);
  REQUIRE_FALSE(got_second.ok());
  CHECK(got_second.error().kind == error_kind::unavailable);
  // The second allocate gathered offers only after the first accept was
  // answered, so it never raced for the same offer: one accept in all.
  REQUIRE(log->size() >= 3);
  CHECK(log->at(0) == "only:offers");
  CHECK(log->at(1) == "only:accept:1");
  CHECK(log->at(2) == "only:offers");
  CHECK(count("only:accept:1") == 1);
  CHECK(count("only:offers") == 1 + 6);
}

TEST_CASE_METHOD(mux_fixture, "reflow mux: with caching, offers come from the cache and accepts lower them") {
  auto m = mux();
  set_pools(m, {fake({"p", large})});
  REQUIRE(ask<caf::ok_atom>(m, caching_atom::value, true).ok());
  CHECK(ask<std::vector<OfferInfo>>(m, offers_atom::value).value().at(0).available == large);
  CHECK(ask<std::vector<OfferInfo>>(m, offers_atom::value).value().at(0).available == large);
  CHECK(count("p:offers") == 1);

  auto alloc = ask<AllocInspect>(m, allocate_atom::value, small, int64_t{0}, AllocMeta{});
  REQUIRE(alloc.ok());
  CHECK(count("p:offers") == 1);  // allocate used the cache too
  CHECK(ask<std::vector<OfferInfo>>(m, offers_atom::value).value().at(0).available == large.sub(small));

  // An accept the cached offer can't cover never reaches the pool.
  CHECK(ask<AllocInspect>(m, accept_atom::value, std::string("p/1"), AllocMeta{large, "", {}}).error().kind ==
        error_kind::not_exist);
  CHECK(count("p:accept:1") == 1);

  CHECK(ask<caf::ok_atom>(m, free_atom::value, alloc->id).ok());
  CHECK(ask<std::vector<OfferInfo>>(m, offers_atom::value).value().at(0).available == large);
  CHECK(count("p:offers") == 1);

  SECTION("the TTL passes: the pool is asked again") {
    advance(milliseconds(offer_cache::default_ttl_ms));
    ask<std::vector<OfferInfo>>(m, offers_atom::value);
    CHECK(count("p:offers") == 2);
  }
  SECTION("caching off: every offers asks the pool") {
    REQUIRE(ask<caf::ok_atom>(m, caching_atom::value, false).ok());
    ask<std::vector<OfferInfo>>(m, offers_atom::value);
    ask<std::vector<OfferInfo>>(m, offers_atom::value);
    CHECK(count("p:offers") == 3);
  }
}

namespace {

// Holds every keepalive unanswered (a pool whose answer is still on its way)
// until a keepalive with interval 0 releases them all, each granted 7.
struct holding_pool_state {
  std::vector<caf::typed_response_promise<int64_t>> held;
  static inline const char* name = "holding_pool";
};

pool_actor::behavior_type holding_pool(pool_actor::stateful_pointer<holding_pool_state> self, std::string id) {
  return {
      [=](pool_id_atom) { return id; },
      [=](status_atom) { return unexpected<PoolStatus>(id, "status"); },
      [=](offers_atom) { return unexpected<std::vector<OfferInfo>>(id, "offers"); },
      [=](offer_atom, const std::string&) { return unexpected<OfferInfo>(id, "offer"); },
      [=](accept_atom, const std::string&, const AllocMeta&) { return unexpected<AllocInspect>(id, "accept"); },
      [=](allocs_atom) { return unexpected<std::vector<AllocInspect>>(id, "allocs"); },
      [=](inspect_atom, const std::string&) { return unexpected<AllocInspect>(id, "inspect"); },
      [=](keepalive_atom, const std::string&, int64_t interval) -> caf::result<int64_t> {
        if (interval == 0) {
          for (auto& promise : self->state.held) promise.deliver(int64_t{7});
          self->state.held.clear();
          return int64_t{0};
        }
        self->state.held.push_back(self->make_response_promise<int64_t>());
        return self->state.held.back();
      },
      [=](free_atom, const std::string&) { return unexpected<caf::ok_atom>(id, "free"); },
  };
}

}  // namespace

TEST_CASE_METHOD(mux_fixture, "reflow mux: a routed request gets the mux's own timeout when its pool holds it") {
  reflow_mux_config config;
  config.request_timeout = milliseconds(100);
  auto m = mux(config);
  auto pool = sys.spawn(holding_pool, std::string("h"));
  spawned.push_back(caf::actor_cast<caf::actor>(pool));
  set_pools(m, {pool});
  auto rh =
      self->request(caf::actor_cast<caf::actor>(m), no_deadline, keepalive_atom::value, std::string("h/x"), int64_t{7});
  run();
  advance(milliseconds(150));
  CHECK(collect<int64_t>(rh).error().kind == error_kind::timeout);
}

TEST_CASE_METHOD(mux_fixture,
                 "reflow mux: a want or min that rounds to zero everywhere is precondition, never sent on") {
  auto m = mux();
  set_pools(m, {fake({"p", large})});
  for (const auto& nothing : {Resources{}, Resources{{"cpu", 1e-9}}, Resources{{"cpu", 0.0004}, {"mem", 0.0001}}}) {
    auto accepted = ask<AllocInspect>(m, accept_atom::value, std::string("p/1"), AllocMeta{nothing, "", {}});
    CHECK(accepted.error().kind == error_kind::precondition);
    auto allocated = ask<AllocInspect>(m, allocate_atom::value, nothing, int64_t{0}, AllocMeta{});
    CHECK(allocated.error().kind == error_kind::precondition);
  }
  CHECK(count("p:accept:1") == 0);
  CHECK(count("p:offers") == 0);
}
