// Tests of the broker's mux actor under CAF's test_coordinator, fed as the
// broker's intake feeds it (announcements, hellos, replies, heartbeat
// batches, flushes) and read back through a frame sink that keeps what the
// mux and its proxies post: pools.<pool> events and requests to workers,
// which the test answers as a worker would.
#include "actors/broker_mux_fixture.hpp"

using namespace poolbus;
using namespace poolbus::testing_mux;
using std::chrono::milliseconds;

TEST_CASE_METHOD(broker_mux_fixture, "mux: pools join on announcement and hello, leave when silent, once each") {
  self->send(m, sweep_atom::value, int64_t{10'000});
  join(announcement_of("a", large, 1));
  self->send(m, announce_atom::value, announcement_of("b", large, 1));  // no hello: never joins
  run();
  CHECK(pool_events() == std::vector<std::string>{"a:joined"});
  CHECK(ask<encoded_array>(pools_atom::value, encoded_atom::value).value().count == 1);
  // A worker's own `stopped` removes it at once; the worker published that event itself.
  join(announcement_of("c", large, 1));
  self->send(m, announce_atom::value, pool_event{"c", pool_event_kind::stopped, 0});
  // Heartbeats keep "a"; a repeat from a pool the mux does not hold is asked for in full.
  for (int64_t now = 10'100; now <= 13'500; now += 100) {
    self->send(m, sweep_atom::value, now);
    if (now % 1000 == 0)
      self->send(m, seen_atom::value, std::vector<pool_seen>{{"a", now}, {"c", now}},
                 std::vector<pool_seen>{{"a", now}});
    run();
  }
  CHECK(pool_events() == std::vector<std::string>{"a:joined", "c:joined"});  // "b" left unjoined: no event
  CHECK(std::count(forgotten.begin(), forgotten.end(), "c") == 3);
  CHECK(ask<encoded_array>(offers_atom::value, encoded_atom::value).value().count == 1);
  for (int64_t now = 13'600; now <= 17'000; now += 100) {
    self->send(m, sweep_atom::value, now);
    run();
  }
  CHECK(pool_events() == std::vector<std::string>{"a:joined", "c:joined", "a:left"});
  CHECK(ask<encoded_array>(pools_atom::value, encoded_atom::value).value().count == 0);
  CHECK(ask<AllocInspect>(inspect_atom::value, std::string("a/x")).error().kind == error_kind::unavailable);
}

TEST_CASE_METHOD(broker_mux_fixture, "mux: offers and pools are the directory's spliced entries") {
  join(announcement_of("b", small, 1));
  join(announcement_of("a", large, 2, 3));
  const std::string id = "\x01";
  CHECK(encode_offers_reply_spliced(id, ask<encoded_array>(offers_atom::value, encoded_atom::value).value()) ==
        encode_offers_reply(id, {{"a/1", "a", large}, {"b/1", "b", small}}));
  CHECK(encode_pools_reply_spliced(id, ask<encoded_array>(pools_atom::value, encoded_atom::value).value()) ==
        encode_pools_reply(id, {{"a", large, large, 3, 1002}, {"b", large, small, 0, 1001}}));
  CHECK(ask<OfferInfo>(offer_atom::value, std::string("a/1")).value().available == large);
  CHECK(ask<OfferInfo>(offer_atom::value, std::string("a/2")).error().kind == error_kind::not_exist);
  CHECK(take_requests().empty());  // no worker was asked
}

TEST_CASE_METHOD(broker_mux_fixture, "mux: requests reach the worker with local ids; bad ones reach nobody") {
  join(announcement_of("a", large, 1));
  auto rh = self->request(caf::actor_cast<caf::actor>(m), no_deadline, accept_atom::value, std::string("a/1"),
                          AllocMeta{small, "bob", {}});
  run();
  auto sent = take_requests();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].pool == "a");
  CHECK(sent[0].request.op == worker_op::accept);
  CHECK(sent[0].request.offer_id == "1");
  CHECK(sent[0].request.meta.owner == "bob");
  worker_reply reply;
  reply.alloc = alloc_named("a/x1", "bob");
  answer(sent[0], reply);
  CHECK(collect<AllocInspect>(rh).value().id == "a/x1");

  auto kept = self->request(caf::actor_cast<caf::actor>(m), no_deadline, keepalive_atom::value, std::string("a/x1"),
                            int64_t{30'000});
  run();
  sent = take_requests();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].request.op == worker_op::keepalive);
  CHECK(sent[0].request.alloc_id == "x1");
  reply = {};
  reply.interval_ms = 20'000;
  answer(sent[0], reply);
  CHECK(collect<int64_t>(kept).value() == 20'000);

  CHECK(ask<AllocInspect>(inspect_atom::value, std::string("no-slash")).error().kind == error_kind::invalid);
  CHECK(ask<caf::ok_atom>(free_atom::value, std::string("zz/x1")).error().kind == error_kind::unavailable);
  CHECK(ask<AllocInspect>(accept_atom::value, std::string("a/1"), AllocMeta{Resources{{"cpu", 1e-9}}, "", {}})
            .error()
            .kind == error_kind::precondition);
  auto refused = [&](auto change) {
    placement want;
    want.min = small;
    change(want);
    return ask<std::vector<AllocInspect>>(allocate_atom::value, want, AllocMeta{}).error().kind;
  };
  CHECK(refused([](placement& p) { p.min = Resources{}; }) == error_kind::precondition);
  CHECK(refused([](placement& p) { p.width = -1; }) == error_kind::invalid);
  CHECK(refused([](placement& p) { p.count = 0; }) == error_kind::invalid);
  CHECK(refused([](placement& p) { p.wait_ms = -1; }) == error_kind::invalid);
  CHECK(refused([](placement& p) { p.constraints["zone"] = {}; }) == error_kind::invalid);
  CHECK(ask<PoolStatus>(drain_atom::value, std::string("nope"), true).error().kind == error_kind::not_exist);
  CHECK(take_requests().empty());
  CHECK(ask<std::vector<queue_entry>>(queue_atom::value).value().empty());
}

TEST_CASE_METHOD(broker_mux_fixture, "mux: a request waits for the worker up to the request timeout, then `timeout`") {
  mux_config config;
  config.request_timeout_ms = 1000;
  start(config);
  join(announcement_of("a", large, 1));
  auto slow = self->request(caf::actor_cast<caf::actor>(m), no_deadline, free_atom::value, std::string("a/x"));
  auto late = self->request(caf::actor_cast<caf::actor>(m), no_deadline, free_atom::value, std::string("a/y"));
  run();
  auto sent = take_requests();
  REQUIRE(sent.size() == 2);
  advance(milliseconds(800));
  CHECK(self->mailbox().empty());  // still the worker's to answer
  answer(sent[0], worker_reply{});
  CHECK(collect<caf::ok_atom>(slow).ok());
  advance(milliseconds(400));
  auto timed_out = collect<caf::ok_atom>(late);
  CHECK(timed_out.error().kind == error_kind::timeout);
  CHECK(timed_out.error().message == "pool a did not answer within 1000 ms");
  answer(sent[1], worker_reply{});  // too late: dropped, nobody answered twice
  CHECK(self->mailbox().empty());
}

TEST_CASE_METHOD(broker_mux_fixture, "mux: a pool that leaves fails what waits on it with `unavailable`") {
  self->send(m, sweep_atom::value, int64_t{1'000});
  join(announcement_of("a", large, 1));
  auto waiting = self->request(caf::actor_cast<caf::actor>(m), no_deadline, inspect_atom::value, std::string("a/x"));
  run();
  REQUIRE(take_requests().size() == 1);
  self->send(m, announce_atom::value, pool_event{"a", pool_event_kind::stopped, 0});
  run();
  CHECK(collect<AllocInspect>(waiting).error().kind == error_kind::unavailable);
}

TEST_CASE_METHOD(broker_mux_fixture, "mux: allocate places on the best joined pool through its worker") {
  join(announcement_of("a", small, 1));
  join(announcement_of("b", large, 1));
  placement want;
  want.min = small.scale(2);
  auto placed =
      self->request(caf::actor_cast<caf::actor>(m), no_deadline, allocate_atom::value, want, AllocMeta{{}, "ann", {}});
  run();
  auto sent = take_requests();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].pool == "b");  // "a" cannot fit twice small
  CHECK(sent[0].request.meta.owner == "ann");
  // Someone else took it meanwhile: the next candidate (none fits) ends in `unavailable` after the rounds.
  worker_reply refused;
  refused.ok = false;
  refused.error = {error_kind::not_exist, "offer 1 cannot cover the request"};
  answer(sent[0], refused);
  for (int round = 0; round < 10; ++round) {
    auto more = take_requests();
    if (more.empty()) break;
    for (auto& r : more) answer(r, refused);
  }
  CHECK(collect<std::vector<AllocInspect>>(placed).error().kind == error_kind::unavailable);
}

TEST_CASE("mux: at most max_large_gathers large allocs gathers run at once, the rest wait in order") {
  mux_config config;
  config.gather_deadline = milliseconds(1000);
  config.request_timeout_ms = 1500;
  config.large_gather_allocs = 10;
  config.max_large_gathers = 2;
  broker_mux_fixture f(config);
  // "slow" never answers allocs: each gather holds its slot until the deadline.
  f.join(announcement_of("slow", large, 1, 20));
  std::vector<caf::response_handle<caf::blocking_actor, caf::message, true>> asked;
  for (int i = 0; i < 5; ++i)
    asked.push_back(f.self->request(caf::actor_cast<caf::actor>(f.m), no_deadline, allocs_atom::value,
                                    encoded_atom::value, std::string()));
  f.run();
  CHECK(f.take_requests().size() == 2);  // two slots; three wait
  f.advance(milliseconds(1000));         // the first two give up on "slow"; two more start
  CHECK(f.take_requests().size() == 2);
  for (int i = 0; i < 2; ++i) {
    auto got = f.collect<encoded_array>(asked[i]);
    REQUIRE(got.ok());
    CHECK(got->count == 0);  // "slow" left out, as any pool missing the gather deadline
  }
  f.advance(milliseconds(1000));  // the fifth waited 2000 ms > request timeout: timeout, never asked
  CHECK(f.take_requests().empty());
  for (int i = 2; i < 4; ++i) CHECK(f.collect<encoded_array>(asked[i]).ok());
  auto late = f.collect<encoded_array>(asked[4]);
  REQUIRE_FALSE(late.ok());
  CHECK(late.error().kind == error_kind::timeout);
  f.advance(milliseconds(1000));  // the proxies' own deadlines pass too
  CHECK(f.self->mailbox().empty());
}

TEST_CASE("mux: small allocs gathers are not held back; a pool filter asks that pool only") {
  mux_config config;
  config.large_gather_allocs = 10;
  config.max_large_gathers = 1;
  broker_mux_fixture f(config);
  f.join(announcement_of("a", large, 1, 3));
  f.join(announcement_of("b", large, 1, 1));
  for (int i = 0; i < 3; ++i)
    f.self->request(caf::actor_cast<caf::actor>(f.m), no_deadline, allocs_atom::value, encoded_atom::value,
                    std::string());
  f.run();
  CHECK(f.take_requests().size() == 6);  // 4 allocs announced in all: small, all at once, to both pools
  auto only_b = f.self->request(caf::actor_cast<caf::actor>(f.m), no_deadline, allocs_atom::value, encoded_atom::value,
                                std::string("b"));
  f.run();
  auto sent = f.take_requests();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].pool == "b");
  worker_reply reply;
  reply.allocs_entries = encode_alloc_entries({alloc_named("b/x1", "bob")});
  f.answer(sent[0], reply);
  auto decoded = decode_alloc_entries(f.collect<encoded_array>(only_b).value());
  REQUIRE(decoded.ok());
  REQUIRE(decoded->size() == 1);
  CHECK(decoded->at(0).meta.owner == "bob");
  CHECK(f.ask<encoded_array>(allocs_atom::value, encoded_atom::value, std::string("nobody")).value().count == 0);
  f.advance(milliseconds(6000));
}

TEST_CASE("mux: past its heartbeat rate the mux paces every pool, and a silent paced pool leaves after three paced beats") {
  mux_config config;
  config.max_heartbeats_per_second = 2;  // 2 pools at 1 s fit; a third doubles the heartbeat
  std::vector<int64_t> told;
  config.paced = [&told](int64_t ms) { told.push_back(ms); };
  broker_mux_fixture f(config);
  f.self->send(f.m, sweep_atom::value, int64_t{10'000});
  f.join(announcement_of("a", large, 1));
  f.join(announcement_of("b", large, 1));
  f.take_requests();
  // Each pool hears the pace as it joins, even when there is none (0).
  REQUIRE(f.paces.size() == 2);
  CHECK(f.paces.at(1).pool == "b");
  CHECK(f.paces.at(1).request.heartbeat_ms == 0);
  CHECK(f.paces.at(1).request.rid == 0);
  CHECK(told.empty());
  f.paces.clear();
  f.join(announcement_of("c", large, 1));
  f.take_requests();
  REQUIRE(f.paces.size() == 3);  // every joined pool, once
  for (const auto& p : f.paces) CHECK(p.request.heartbeat_ms == 2000);
  CHECK(told == std::vector<int64_t>{2000});
  // The worker's reply to rid 0 is nobody's: dropped, nothing breaks.
  f.answer(f.paces.at(0), worker_reply{});
  // Silent for 5 s: not gone (three paced heartbeats are 6 s); gone after 6 s.
  for (int64_t now = 10'100; now <= 16'000; now += 100) {
    f.self->send(f.m, sweep_atom::value, now);
    f.run();
  }
  CHECK(f.pool_events() == std::vector<std::string>{"a:joined", "b:joined", "c:joined"});
  f.self->send(f.m, sweep_atom::value, int64_t{16'100});
  f.run();
  CHECK(f.pool_events().size() == 6);
  // With the pools gone the pace is lifted.
  CHECK(told == std::vector<int64_t>{2000, 0});
}
