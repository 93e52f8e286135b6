// worker actor against a real pool actor on CAF's test coordinator: every
// request gets exactly one reply with its rid, and pool calls carry no CAF
// request timeout (an answer that comes late is still the answer).
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/deterministic_system.hpp"

#include <algorithm>
#include <memory>
#include <mutex>
#include <vector>

#include "actors/pool_actor.hpp"
#include "actors/worker_actor.hpp"

using namespace poolbus;
using namespace std::chrono_literals;

namespace {

struct counting_manager : alloc_manager {
  std::string name() const override { return "counting"; }
  outcome<void> create(const AllocInspect&, int64_t, const std::vector<AllocInspect>&) override { return {}; }
  outcome<void> kill(const AllocInspect&) override { return {}; }
  bool needs_existing() const override { return false; }
};

// What the worker actor posted toward the broker: its replies, decoded.
struct broker_sink : frame_sink {
  std::mutex mutex;
  std::vector<worker_reply> replies;
  std::vector<std::vector<std::string>> sent;  // every broker message's frames
  void post(outbound_frames message) override {
    if (message.via != channel::broker) return;
    auto decoded = decode_worker_message(message.frames.back());
    REQUIRE(decoded.ok());
    std::lock_guard<std::mutex> guard(mutex);
    sent.push_back(message.frames);
    if (auto* reply = std::get_if<worker_reply>(&*decoded)) replies.push_back(*reply);
  }
};

struct worker_fixture : test::deterministic_system {
  std::shared_ptr<broker_sink> sink = std::make_shared<broker_sink>();
  worker_pool_actor pool;
  caf::actor worker;

  explicit worker_fixture(std::vector<std::string> brokers = {}) {
    pool_actor_config config;
    config.id = "w1";
    config.run = "run-1";
    config.resources = Resources{{"cpu", 8}, {"mem", 32.0 * (1 << 30)}, {"disk", 100.0 * (1 << 30)}};
    config.clock = wall_clock::simulated();
    config.manager = std::make_shared<counting_manager>();
    config.journal = std::make_shared<memory_journal>();  // replies wait for the group commit
    pool = spawn_pool_actor(sys, config);
    worker_actor_config wc;
    wc.pool = "w1";
    wc.run = "run-1";
    wc.pool_actor = pool;
    wc.sink = sink;
    wc.brokers = std::move(brokers);
    wc.heartbeat_ms = 1000;
    wc.clock = wall_clock::simulated();
    worker = spawn_worker_actor(sys, wc);
    sched.run();
  }
  ~worker_fixture() {
    caf::anon_send_exit(worker, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
    sched.run();
  }

  static worker_request accept(uint64_t rid) {
    worker_request req;
    req.rid = rid;
    req.op = worker_op::accept;
    req.offer_id = "1";
    req.meta.want = Resources{{"cpu", 1}, {"mem", 1.0 * (1 << 30)}, {"disk", 1.0 * (1 << 30)}};
    return req;
  }
};

// A worker serving two brokers over one ROUTER.
struct two_broker_fixture : worker_fixture {
  two_broker_fixture() : worker_fixture({"broker-0", "broker-1"}) {}
};

}  // namespace

TEST_CASE_METHOD(two_broker_fixture, "worker actor: with several brokers, hello goes to each, a reply to its sender") {
  {
    std::lock_guard<std::mutex> guard(sink->mutex);
    // The hellos so far (at the start and the first heartbeat), to each broker alike.
    REQUIRE_FALSE(sink->sent.empty());
    size_t to_first = 0, to_second = 0;
    for (const auto& frames : sink->sent) {
      REQUIRE(frames.size() == 2);
      to_first += frames.front() == "broker-0";
      to_second += frames.front() == "broker-1";
    }
    CHECK(to_first == sink->sent.size() / 2);
    CHECK(to_second == sink->sent.size() / 2);
    sink->sent.clear();
  }
  auto from_second = accept(7);
  from_second.broker = 1;
  caf::anon_send(worker, wrequest_atom::value, from_second);
  auto from_first = accept(7);  // the same rid from the other broker: rids are each broker's own
  caf::anon_send(worker, wrequest_atom::value, from_first);
  sched.run();
  std::lock_guard<std::mutex> guard(sink->mutex);
  REQUIRE(sink->sent.size() == 2);
  std::vector<std::string> to;
  for (const auto& frames : sink->sent) {
    CHECK(frames.size() == 2);
    to.push_back(frames.front());
  }
  std::sort(to.begin(), to.end());
  CHECK(to == std::vector<std::string>{"broker-0", "broker-1"});
  REQUIRE(sink->replies.size() == 2);
  CHECK(sink->replies[0].ok);
  CHECK(sink->replies[1].ok);
  CHECK(sink->replies[0].alloc.id != sink->replies[1].alloc.id);  // one pool, two allocs
}

TEST_CASE_METHOD(worker_fixture, "worker actor: each request gets one reply with its rid, errors included") {
  caf::anon_send(worker, wrequest_atom::value, accept(7));
  worker_request bad;
  bad.rid = 8;
  bad.op = worker_op::free;
  bad.alloc_id = "w1/nosuchalloc";
  caf::anon_send(worker, wrequest_atom::value, bad);
  sched.run();
  REQUIRE(sink->replies.size() == 2);
  auto& ok = sink->replies[0].rid == 7 ? sink->replies[0] : sink->replies[1];
  auto& refused = sink->replies[0].rid == 7 ? sink->replies[1] : sink->replies[0];
  CHECK(ok.rid == 7);
  CHECK(ok.ok);
  CHECK(ok.alloc.id.rfind("w1/", 0) == 0);
  CHECK(refused.rid == 8);
  CHECK_FALSE(refused.ok);
  CHECK(refused.error.kind == error_kind::not_exist);
}

TEST_CASE_METHOD(worker_fixture,
                 "worker actor: a pool answer that comes after 30 s is still the reply, not a timeout") {
  caf::anon_send(worker, wrequest_atom::value, accept(11));
  // The worker actor takes the request and asks the pool; the pool has not run yet.
  REQUIRE(sched.try_run_once());
  REQUIRE(sink->replies.empty());
  // A CAF request timeout (the old 30 s guard) would fire here and answer `timeout`.
  sched.clock().advance_time(31s);
  sched.run();
  REQUIRE(sink->replies.size() == 1);
  CHECK(sink->replies[0].rid == 11);
  CHECK(sink->replies[0].ok);
  CHECK(sink->replies[0].alloc.id.rfind("w1/", 0) == 0);
}
