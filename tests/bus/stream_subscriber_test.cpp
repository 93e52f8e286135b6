#include "bus/stream_subscriber.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>

#include "bus/bus_test_support.hpp"
#include "bus/io_thread.hpp"

using namespace poolbus;
using poolbus::test::wait_until;

namespace {

socket_spec stream_pub() {
  socket_spec spec;
  spec.via = channel::stream;
  spec.kind = socket_kind::pub;
  spec.attach = socket_attach::bind;
  spec.endpoint = "tcp://127.0.0.1:*";
  return spec;
}

}  // namespace

TEST_CASE("stream_subscriber: receives subscribed topics in order and skips the rest", "[bus]") {
  io_thread publisher({stream_pub()}, [](channel, std::vector<std::string>&&) {});
  REQUIRE(publisher.start().ok());
  auto subscriber = stream_subscriber::connect(publisher.bound_endpoint(channel::stream), "offers.");
  REQUIRE(subscriber.ok());

  // A SUB misses what was published before it joined: publish until one lands.
  std::optional<stream_subscriber::topic_and_body> first;
  CHECK(wait_until([&] {
    publisher.post({channel::stream, {"offers.p1", "hello"}});
    auto got = (*subscriber)->next(10);
    if (got.ok()) first = *got;
    return first.has_value();
  }));
  REQUIRE(first);
  CHECK(first->first == "offers.p1");
  CHECK(first->second == "hello");

  // Unsubscribed topics and malformed messages never come out; a sentinel
  // published after them shows they were passed over, not delayed.
  publisher.post({channel::stream, {"pools.p1", "not-subscribed"}});
  publisher.post({channel::stream, {"offers.bad", "two", "bodies"}});
  publisher.post({channel::stream, {"offers.p2", "sentinel"}});
  for (;;) {
    auto got = (*subscriber)->next(5000);
    REQUIRE(got.ok());
    if (got->first == "offers.p1") continue;  // leftovers of the join loop
    CHECK(got->first == "offers.p2");
    CHECK(got->second == "sentinel");
    break;
  }
}

TEST_CASE("stream_subscriber: next() times out when nothing is published", "[bus]") {
  io_thread publisher({stream_pub()}, [](channel, std::vector<std::string>&&) {});
  REQUIRE(publisher.start().ok());
  auto subscriber = stream_subscriber::connect(publisher.bound_endpoint(channel::stream), "");
  REQUIRE(subscriber.ok());
  auto started = std::chrono::steady_clock::now();
  auto got = (*subscriber)->next(100);
  REQUIRE_FALSE(got.ok());
  CHECK(got.error().kind == error_kind::timeout);
  CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(100));
}

TEST_CASE("stream_subscriber: several brokers' streams at once, a message both republish comes out once", "[bus]") {
  io_thread a({stream_pub()}, [](channel, std::vector<std::string>&&) {});
  io_thread b({stream_pub()}, [](channel, std::vector<std::string>&&) {});
  REQUIRE(a.start().ok());
  REQUIRE(b.start().ok());
  auto subscriber =
      stream_subscriber::connect(a.bound_endpoint(channel::stream) + "," + b.bound_endpoint(channel::stream), "");
  REQUIRE(subscriber.ok());
  // Both joined: each has delivered a join probe of its own.
  bool from_a = false, from_b = false;
  CHECK(wait_until([&] {
    a.post({channel::stream, {"join", "a"}});
    b.post({channel::stream, {"join", "b"}});
    while (auto got = (*subscriber)->next(10)) {
      if (!got.ok()) break;
      from_a |= got->second == "a";
      from_b |= got->second == "b";
    }
    return from_a && from_b;
  }));
  // The same worker message through both brokers; then one only b carries.
  a.post({channel::stream, {"allocs.w1", "created x"}});
  b.post({channel::stream, {"allocs.w1", "created x"}});
  b.post({channel::stream, {"pools.w1", "joined at b"}});
  int copies = 0;
  for (;;) {
    auto got = (*subscriber)->next(5000);
    REQUIRE(got.ok());
    if (got->first == "join") continue;
    if (got->second == "created x") ++copies;
    if (got->second == "joined at b") break;
  }
  auto late = (*subscriber)->next(200);  // a's copy, had it come after b's sentinel
  CHECK((!late.ok() || late->second != "created x"));
  CHECK(copies == 1);
}
