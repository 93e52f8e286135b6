#include "bus/pool_client.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

#include "bus_test_support.hpp"

using namespace poolbus;
using poolbus::test::scripted_broker;
using namespace std::chrono_literals;

namespace {

AllocInspect alloc_named(const std::string& id) {
  AllocInspect a;
  a.id = id;
  a.pool = id.substr(0, id.find('/'));
  return a;
}

// Answers the second wave's ops as a broker would, and keeps what it was sent.
struct scheduling_broker {
  std::mutex mutex;
  std::vector<api_request> seen;
  scripted_broker broker{[this](io_thread& bus, reply_route route, std::string body) {
    auto request = decode_api_request(body, nullptr);
    REQUIRE(request.ok());
    {
      std::lock_guard lock(mutex);
      seen.push_back(*request);
    }
    std::string reply;
    switch (request->op) {
      case api_op::allocate: {
        std::vector<AllocInspect> allocs;
        for (int64_t i = 0; i < request->place.count; ++i)
          allocs.push_back(alloc_named("p" + std::to_string(i) + "/a"));
        // A waiting request answers late: after the client's own timeout, within its wait.
        if (request->place.wait_ms > 0) std::this_thread::sleep_for(300ms);
        reply = encode_gang_reply(request->id_raw, allocs);
        break;
      }
      case api_op::queue:
        reply = encode_queue_reply(request->id_raw, {queue_entry{"q1", "bob", Resources{{"cpu", 1}}}});
        break;
      case api_op::quotas:
        reply = encode_quotas_reply(request->id_raw, {{"bob", Resources{{"cpu", 2}}, Resources{{"cpu", 1}}}});
        break;
      case api_op::drain: {
        PoolStatus pool;
        pool.id = request->pool;
        pool.draining = request->drain;
        reply = encode_pool_reply(request->id_raw, pool);
        break;
      }
      default: reply = encode_error_reply(request->id_raw, {error_kind::invalid, "unexpected op"});
    }
    route.push_back(std::move(reply));
    bus.post({channel::api, std::move(route)});
  }};
};

}  // namespace

TEST_CASE("pool_client: place sends the placement and returns every alloc; a wait extends the timeout", "[bus]") {
  scheduling_broker fake;
  auto client = pool_client::connect(fake.broker.endpoint(), 200);
  REQUIRE(client.ok());
  placement want;
  want.min = Resources{{"cpu", 1}};
  want.count = 3;
  want.spread = true;
  want.priority = 4;
  want.wait_ms = 2000;  // the fake answers after 300 ms, past the client's 200 ms
  want.constraints = {{"zone", {"eu"}}};
  auto placed = (*client)->place(want, "bob");
  REQUIRE(placed.ok());
  CHECK(placed->size() == 3);
  std::lock_guard lock(fake.mutex);
  REQUIRE(fake.seen.size() == 1);
  const auto& sent = fake.seen.front().place;
  CHECK(sent.count == 3);
  CHECK(sent.gang);
  CHECK(sent.spread);
  CHECK(sent.priority == 4);
  CHECK(sent.wait_ms == 2000);
  CHECK(sent.constraints == want.constraints);
  CHECK(fake.seen.front().meta.owner == "bob");
}

TEST_CASE("pool_client: queue, quotas and drain", "[bus]") {
  scheduling_broker fake;
  auto client = pool_client::connect(fake.broker.endpoint(), 2000);
  REQUIRE(client.ok());
  auto queue = (*client)->queue();
  REQUIRE(queue.ok());
  REQUIRE(queue->size() == 1);
  CHECK(queue->front().owner == "bob");
  auto quotas = (*client)->quotas();
  REQUIRE(quotas.ok());
  CHECK(quotas->front().quota == Resources{{"cpu", 2}});
  auto drained = (*client)->drain("w1");
  REQUIRE(drained.ok());
  CHECK(drained->id == "w1");
  CHECK(drained->draining);
  auto undone = (*client)->drain("w1", false);
  REQUIRE(undone.ok());
  CHECK_FALSE(undone->draining);
}

TEST_CASE("pool_client: a broker that does not answer fails over to the next, which is then kept", "[bus]") {
  std::atomic<int> silent_got{0}, live_got{0};
  scripted_broker silent{[&](io_thread&, reply_route, std::string) { ++silent_got; }};  // never answers
  scripted_broker live{[&](io_thread& bus, reply_route route, std::string body) {
    ++live_got;
    auto request = decode_api_request(body, nullptr);
    route.push_back(request->op == api_op::ping
                        ? encode_ok_reply(request->id_raw)
                        : encode_error_reply(request->id_raw, {error_kind::timeout, "worker w1 did not answer"}));
    bus.post({channel::api, std::move(route)});
  }};
  auto client = pool_client::connect(silent.endpoint() + "," + live.endpoint(), 300);
  REQUIRE(client.ok());
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE((*client)->ping().ok());
  CHECK(std::chrono::steady_clock::now() - t0 >= 300ms);  // the first broker had its whole timeout
  CHECK((*client)->endpoint() == live.endpoint());
  CHECK(silent_got == 1);

  REQUIRE((*client)->ping().ok());  // straight to the one that answered
  CHECK(silent_got == 1);
  // A broker's own `timeout` reply is an answer: no failover.
  auto answered = (*client)->inspect("w1/a1");
  REQUIRE_FALSE(answered.ok());
  CHECK(answered.error().kind == error_kind::timeout);
  CHECK(answered.error().message == "worker w1 did not answer");
  CHECK(silent_got == 1);
  CHECK(live_got == 3);
}

TEST_CASE("pool_client: when no broker answers, the call times out after trying each once", "[bus]") {
  std::atomic<int> a_got{0}, b_got{0};
  scripted_broker a{[&](io_thread&, reply_route, std::string) { ++a_got; }};
  scripted_broker b{[&](io_thread&, reply_route, std::string) { ++b_got; }};
  auto client = pool_client::connect(a.endpoint() + "," + b.endpoint(), 150);
  REQUIRE(client.ok());
  auto pinged = (*client)->ping();
  REQUIRE_FALSE(pinged.ok());
  CHECK(pinged.error().kind == error_kind::timeout);
  CHECK(a_got == 1);
  CHECK(b_got == 1);
  CHECK_FALSE(pool_client::connect(a.endpoint() + ",bogus", 150).ok());
}
