// The mux's scheduling (protocol.md, "Additions of the second wave"): the
// waiting queue driven by capacity events, priorities, gangs, constraints,
// drain and quotas, under the deterministic scheduler and simulated clock.
#include "actors/broker_mux_fixture.hpp"

using namespace poolbus;
using namespace poolbus::testing_mux;
using std::chrono::milliseconds;

namespace {

const Resources nothing_left{{"mem", 0}, {"cpu", 0}, {"disk", 0}};

placement want_of(const Resources& min, int64_t wait_ms = 0, int64_t priority = 0) {
  placement p;
  p.min = min;
  p.wait_ms = wait_ms;
  p.priority = priority;
  return p;
}

worker_reply accepted(const sent_request& r, const std::string& local) {
  worker_reply reply;
  reply.alloc = AllocInspect{};
  reply.alloc.id = r.pool + "/" + local;
  reply.alloc.pool = r.pool;
  reply.alloc.resources = r.request.meta.want;
  reply.alloc.meta = r.request.meta;
  reply.alloc.expires_ms = int64_t{1} << 60;  // far beyond any clock of the test
  return reply;
}

worker_reply ok_reply() { return worker_reply{}; }

struct scheduling_fixture : broker_mux_fixture {
  using broker_mux_fixture::broker_mux_fixture;
  using response = decltype(std::declval<caf::scoped_actor&>()->request(
      caf::actor_cast<caf::actor>(std::declval<mux_actor&>()), no_deadline, allocate_atom::value, placement{},
      AllocMeta{}));

  response allocate(placement want, const std::string& owner = "") {
    auto rh = self->request(caf::actor_cast<caf::actor>(m), no_deadline, allocate_atom::value, std::move(want),
                            AllocMeta{{}, owner, {}});
    run();
    return rh;
  }
  // A pool announcing `available` with a new seq.
  void announce(const std::string& pool, const Resources& available, int64_t seq, Labels labels = {}) {
    auto a = announcement_of(pool, available, seq);
    a.labels = std::move(labels);
    self->send(m, announce_atom::value, std::move(a));
    run();
  }
  std::vector<std::string> queue_ids() {
    std::vector<std::string> ids;
    auto queue = ask<std::vector<queue_entry>>(queue_atom::value);  // held: the loop reads into it
    for (const auto& e : queue.value()) ids.push_back(e.id);
    return ids;
  }
};

}  // namespace

TEST_CASE_METHOD(scheduling_fixture, "scheduling: a waiting allocate is placed when an announcement frees room") {
  join(announcement_of("a", nothing_left, 1));
  auto waiting = allocate(want_of(small, 10'000));
  CHECK(take_requests().empty());  // nothing fits: queued, no accept sent
  CHECK(queue_ids() == std::vector<std::string>{"q1"});
  CHECK(demand_events() == std::vector<std::string>{"queued:q1"});
  self->send(m, seen_atom::value, std::vector<pool_seen>{{"a", 5000}}, std::vector<pool_seen>{});  // a heartbeat
  run();
  CHECK(take_requests().empty());  // a repeat changes nothing: no work for the queue
  announce("a", small, 2);         // a free on the worker
  auto sent = take_requests();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].request.op == worker_op::accept);
  answer(sent[0], accepted(sent[0], "x1"));
  auto placed = collect<std::vector<AllocInspect>>(waiting);
  REQUIRE(placed.ok());
  CHECK(placed->size() == 1);
  CHECK(placed->front().id == "a/x1");
  CHECK(demand_events() == std::vector<std::string>{"queued:q1", "placed:q1"});
  CHECK(queue_ids().empty());
}

TEST_CASE_METHOD(scheduling_fixture, "scheduling: a wait ends `unavailable` at its deadline, on the simulated clock") {
  join(announcement_of("a", nothing_left, 1));
  auto waiting = allocate(want_of(small, 5'000));
  advance(milliseconds(4'990));
  CHECK(self->mailbox().empty());
  advance(milliseconds(20));
  auto expired = collect<std::vector<AllocInspect>>(waiting);
  REQUIRE_FALSE(expired.ok());
  CHECK(expired.error().kind == error_kind::unavailable);
  CHECK_THAT(expired.error().message, Catch::Contains("within its wait of"));
  CHECK(demand_events() == std::vector<std::string>{"queued:q1", "expired:q1"});
  CHECK(queue_ids().empty());
}

TEST_CASE_METHOD(scheduling_fixture,
                 "scheduling: priority first, FIFO within a priority; one that does not fit holds back nobody") {
  join(announcement_of("a", nothing_left, 1));
  auto big = allocate(want_of(large, 60'000, 9), "big");  // never fits in `small`
  auto low1 = allocate(want_of(small, 60'000, 0), "low1");
  auto high1 = allocate(want_of(small, 60'000, 5), "high1");
  auto low2 = allocate(want_of(small, 60'000, 0), "low2");
  auto high2 = allocate(want_of(small, 60'000, 5), "high2");
  CHECK(queue_ids() == std::vector<std::string>{"q1", "q3", "q5", "q2", "q4"});
  std::vector<std::string> order;
  for (int seq = 2; seq <= 5; ++seq) {
    announce("a", small, seq);
    auto sent = take_requests();
    REQUIRE(sent.size() == 1);
    order.push_back(sent[0].request.meta.owner);
    answer(sent[0], accepted(sent[0], "x" + std::to_string(seq)));
  }
  CHECK(order == std::vector<std::string>{"high1", "high2", "low1", "low2"});
  CHECK(queue_ids() == std::vector<std::string>{"q1"});  // `big` still waits
  for (auto* placed : {&low1, &high1, &low2, &high2}) CHECK(collect<std::vector<AllocInspect>>(*placed).ok());
}

TEST_CASE_METHOD(scheduling_fixture,
                 "scheduling: thousands of waiting requests keep their order and each is answered") {
  join(announcement_of("a", nothing_left, 1));
  std::vector<response> waiting;
  for (int i = 0; i < 2000; ++i) waiting.push_back(allocate(want_of(small, 1'000 + i, i % 3)));
  auto queue = ask<std::vector<queue_entry>>(queue_atom::value).value();
  REQUIRE(queue.size() == 2000);
  for (std::size_t i = 1; i < queue.size(); ++i) {
    bool ordered = queue[i - 1].priority > queue[i].priority ||
                   (queue[i - 1].priority == queue[i].priority && queue[i - 1].queued_ms <= queue[i].queued_ms &&
                    std::stoi(queue[i - 1].id.substr(1)) < std::stoi(queue[i].id.substr(1)));
    REQUIRE(ordered);
  }
  advance(milliseconds(3'500));  // every wait (1 s + i ms, at most 3 s) is over
  int expired = 0;
  for (auto& rh : waiting) expired += collect<std::vector<AllocInspect>>(rh).error().kind == error_kind::unavailable;
  CHECK(expired == 2000);
  CHECK(queue_ids().empty());
}

TEST_CASE_METHOD(scheduling_fixture, "scheduling: a gang is placed all or none, spread on distinct pools") {
  join(announcement_of("a", small, 1));
  join(announcement_of("b", small, 1));
  auto want = want_of(small);
  want.count = 2;
  want.gang = true;
  want.spread = true;
  auto gang = allocate(want);
  std::vector<std::string> pools;
  for (int i = 0; i < 2; ++i) {
    auto sent = take_requests();
    REQUIRE(sent.size() == 1);
    pools.push_back(sent[0].pool);
    answer(sent[0], accepted(sent[0], "g" + std::to_string(i)));
  }
  CHECK(pools[0] != pools[1]);
  auto placed = collect<std::vector<AllocInspect>>(gang);
  REQUIRE(placed.ok());
  CHECK(placed->size() == 2);
}

TEST_CASE_METHOD(scheduling_fixture, "scheduling: a gang that cannot complete frees what it took before it answers") {
  join(announcement_of("a", small, 1));
  join(announcement_of("b", small, 1));
  auto want = want_of(small);
  want.count = 3;
  want.gang = true;
  want.spread = true;
  auto gang = allocate(want);
  for (int i = 0; i < 2; ++i) {
    auto sent = take_requests();
    REQUIRE(sent.size() == 1);
    answer(sent[0], accepted(sent[0], "g" + std::to_string(i)));
  }
  // No third pool: both taken allocs are freed, and only then the answer.
  auto frees = take_requests();
  REQUIRE(frees.size() == 2);
  for (const auto& f : frees) CHECK(f.request.op == worker_op::free);
  CHECK(self->mailbox().empty());
  answer(frees[0], ok_reply());
  CHECK(self->mailbox().empty());
  answer(frees[1], ok_reply());
  auto result = collect<std::vector<AllocInspect>>(gang);
  REQUIRE_FALSE(result.ok());
  CHECK(result.error().kind == error_kind::unavailable);
  CHECK_THAT(result.error().message, Catch::Contains("gang of 3: placed 2 (freed again)"));
}

TEST_CASE("scheduling: a gang whose worker stops answering mid-way frees the rest and answers") {
  mux_config config;
  config.request_timeout_ms = 1000;
  scheduling_fixture f(config);
  f.join(announcement_of("a", small, 1));
  f.join(announcement_of("b", small, 1));
  auto want = want_of(small);
  want.count = 2;
  want.gang = true;
  want.spread = true;
  auto gang = f.allocate(want);
  auto first = f.take_requests();
  REQUIRE(first.size() == 1);
  f.answer(first[0], accepted(first[0], "g0"));
  auto second = f.take_requests();
  REQUIRE(second.size() == 1);
  CHECK(second[0].pool != first[0].pool);
  f.advance(milliseconds(1500));  // the second worker never answers: its accept times out
  auto frees = f.take_requests();
  REQUIRE(frees.size() == 1);
  CHECK(frees[0].pool == first[0].pool);
  CHECK(frees[0].request.op == worker_op::free);
  f.answer(frees[0], ok_reply());
  CHECK(f.collect<std::vector<AllocInspect>>(gang).error().kind == error_kind::unavailable);
}

TEST_CASE_METHOD(scheduling_fixture, "scheduling: constraints keep a request to the pools whose labels match") {
  announce("a", large, 1, {{"zone", "eu"}});
  self->send(m, hello_atom::value, std::string("a"), worker_hello{"a", "r1", 0});
  announce("b", large, 1, {{"zone", "us"}, {"gpu", "a100"}});
  self->send(m, hello_atom::value, std::string("b"), worker_hello{"b", "r1", 0});
  run();
  for (int i = 0; i < 5; ++i) {
    auto want = want_of(small);
    want.constraints = {{"zone", {"us", "ap"}}};
    auto placed = allocate(want);
    auto sent = take_requests();
    REQUIRE(sent.size() == 1);
    CHECK(sent[0].pool == "b");
    answer(sent[0], accepted(sent[0], "c" + std::to_string(i)));
    CHECK(collect<std::vector<AllocInspect>>(placed).ok());
  }
  auto nowhere = want_of(small);
  nowhere.constraints = {{"gpu", {"h100"}}};
  auto refused = allocate(nowhere);
  CHECK(take_requests().empty());
  CHECK(collect<std::vector<AllocInspect>>(refused).error().kind == error_kind::unavailable);
}

TEST_CASE_METHOD(scheduling_fixture, "scheduling: a drained pool extends nothing new until undrained") {
  join(announcement_of("a", large, 1));
  auto drain = self->request(caf::actor_cast<caf::actor>(m), no_deadline, drain_atom::value, std::string("a"), true);
  run();
  auto sent = take_requests();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].request.op == worker_op::drain);
  CHECK(sent[0].request.drain);
  answer(sent[0], ok_reply());
  auto status = collect<PoolStatus>(drain);
  REQUIRE(status.ok());
  CHECK(status->draining);
  CHECK(pool_events() == std::vector<std::string>{"a:joined", "a:draining"});
  CHECK(ask<encoded_array>(offers_atom::value, encoded_atom::value).value().count == 0);
  CHECK(ask<AllocInspect>(accept_atom::value, std::string("a/1"), AllocMeta{small, "", {}}).error().kind ==
        error_kind::unavailable);
  CHECK(ask<OfferInfo>(offer_atom::value, std::string("a/1")).error().kind == error_kind::unavailable);
  auto waiting = allocate(want_of(small, 60'000));
  CHECK(take_requests().empty());  // skipped by allocate: it waits
  // Its allocs are still served.
  auto kept = self->request(caf::actor_cast<caf::actor>(m), no_deadline, keepalive_atom::value, std::string("a/x"),
                            int64_t{1000});
  run();
  auto keepalive = take_requests();
  REQUIRE(keepalive.size() == 1);
  CHECK(keepalive[0].request.op == worker_op::keepalive);
  worker_reply granted;
  granted.interval_ms = 1000;
  answer(keepalive[0], granted);
  CHECK(collect<int64_t>(kept).value() == 1000);
  // Undone: the waiting request is placed on it.
  auto undrain = self->request(caf::actor_cast<caf::actor>(m), no_deadline, drain_atom::value, std::string("a"), false);
  run();
  auto undo = take_requests();
  REQUIRE(undo.size() == 1);
  CHECK_FALSE(undo[0].request.drain);
  answer(undo[0], ok_reply());
  CHECK_FALSE(collect<PoolStatus>(undrain)->draining);
  auto placing = take_requests();
  REQUIRE(placing.size() == 1);
  CHECK(placing[0].request.op == worker_op::accept);
  answer(placing[0], accepted(placing[0], "w1"));
  CHECK(collect<std::vector<AllocInspect>>(waiting).ok());
  CHECK(pool_events() == std::vector<std::string>{"a:joined", "a:draining", "a:undrained"});
}

TEST_CASE("scheduling: an owner's live allocs never exceed its quota, even with accepts racing") {
  mux_config config;
  auto book = parse_quota_book("alice cpu=2  # two of `small`\n* cpu=100\n");
  REQUIRE(book.ok());
  config.quotas = *book;
  scheduling_fixture f(config);
  f.join(announcement_of("a", large.scale(4), 1));
  // Eight accepts of one cpu in flight at once: two pass the quota.
  std::vector<decltype(f.self->request(caf::actor_cast<caf::actor>(f.m), no_deadline, accept_atom::value, std::string(),
                                       AllocMeta{}))>
      racing;
  for (int i = 0; i < 8; ++i)
    racing.push_back(f.self->request(caf::actor_cast<caf::actor>(f.m), no_deadline, accept_atom::value,
                                     std::string("a/1"), AllocMeta{small, "alice", {}}));
  f.run();
  auto sent = f.take_requests();
  CHECK(sent.size() == 2);
  for (std::size_t i = 0; i < sent.size(); ++i) f.answer(sent[i], accepted(sent[i], "q" + std::to_string(i)));
  int granted = 0, refused = 0;
  for (auto& rh : racing) {
    auto r = f.collect<AllocInspect>(rh);
    if (r.ok()) {
      ++granted;
    } else {
      CHECK(r.error().kind == error_kind::precondition);
      CHECK_THAT(r.error().message, Catch::Contains("quota"));
      ++refused;
    }
  }
  CHECK(granted == 2);
  CHECK(refused == 6);
  auto usage = f.ask<std::vector<quota_usage>>(quotas_atom::value).value();
  REQUIRE(usage.size() == 1);
  CHECK(usage[0].owner == "alice");
  CHECK(usage[0].used.units("cpu") == 2000);
  // count x min over the quota alone: precondition; over only because of the others: unavailable.
  auto too_big = want_of(small);
  too_big.count = 3;
  auto big = f.allocate(too_big, "alice");
  CHECK(f.collect<std::vector<AllocInspect>>(big).error().kind == error_kind::precondition);
  auto one_more = f.allocate(want_of(small), "alice");
  CHECK(f.take_requests().empty());
  CHECK(f.collect<std::vector<AllocInspect>>(one_more).error().kind == error_kind::unavailable);
  // Waiting, it is placed once alice frees one.
  auto waits = f.allocate(want_of(small, 60'000), "alice");
  CHECK(f.take_requests().empty());
  auto freed = f.self->request(caf::actor_cast<caf::actor>(f.m), no_deadline, free_atom::value, std::string("a/q0"));
  f.run();
  auto free_sent = f.take_requests();
  REQUIRE(free_sent.size() == 1);
  f.answer(free_sent[0], ok_reply());
  CHECK(f.collect<caf::ok_atom>(freed).ok());
  auto placing = f.take_requests();
  REQUIRE(placing.size() == 1);
  f.answer(placing[0], accepted(placing[0], "q2"));
  CHECK(f.collect<std::vector<AllocInspect>>(waits).ok());
  CHECK(f.ask<std::vector<quota_usage>>(quotas_atom::value).value().front().used.units("cpu") == 2000);
}

TEST_CASE("scheduling: an accept answered `timeout` that the worker carries out late is freed again") {
  mux_config config;
  config.request_timeout_ms = 1000;
  scheduling_fixture f(config);
  f.join(announcement_of("a", large, 1));
  auto waiting = f.self->request(caf::actor_cast<caf::actor>(f.m), no_deadline, accept_atom::value, std::string("a/1"),
                                 AllocMeta{small, "", {}});
  f.run();
  auto sent = f.take_requests();
  REQUIRE(sent.size() == 1);
  f.advance(milliseconds(1500));
  CHECK(f.collect<AllocInspect>(waiting).error().kind == error_kind::timeout);
  f.answer(sent[0], accepted(sent[0], "late"));  // the frozen worker wakes up
  auto undo = f.take_requests();
  REQUIRE(undo.size() == 1);
  CHECK(undo[0].request.op == worker_op::free);
  CHECK(undo[0].request.alloc_id == "late");
  f.answer(undo[0], ok_reply());  // its reply is nobody's: dropped
  CHECK(f.take_requests().empty());
}
