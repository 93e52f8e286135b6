#include "bus/pool_client.hpp"

#include <catch2/catch.hpp>

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
