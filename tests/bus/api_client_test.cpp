#include "bus/api_client.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <msgpack.hpp>
#include <thread>

#include "bus/envelope.hpp"
#include "bus_test_support.hpp"
#include "bus/io_thread.hpp"
#include "schemas/api_messages.hpp"

using namespace poolbus;
using poolbus::test::ping_request;
using poolbus::test::reply_script;
using poolbus::test::scripted_broker;
using namespace std::chrono_literals;

namespace {

std::string tagged_reply(const std::string& id_raw, const std::string& tag) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> packer(buffer);
  packer.pack_map(4);
  packer.pack("v"), packer.pack(1);
  packer.pack("id"), buffer.write(id_raw.data(), id_raw.size());
  packer.pack("ok"), packer.pack(true);
  packer.pack("tag"), packer.pack(tag);
  return std::string(buffer.data(), buffer.size());
}

std::string tag_of(const std::string& reply) {
  auto handle = msgpack::unpack(reply.data(), reply.size());
  auto fields = handle.get().as<std::map<std::string, msgpack::object>>();
  return fields.at("tag").as<std::string>();
}

std::string packed_id(int id) {
  msgpack::sbuffer buffer;
  msgpack::pack(buffer, id);
  return std::string(buffer.data(), buffer.size());
}

}  // namespace

TEST_CASE("api_client: times out when nobody answers", "[bus]") {
  scripted_broker silent([](io_thread&, reply_route, std::string) {});
  auto client = api_client::connect(silent.endpoint());
  REQUIRE(client.ok());
  auto started = std::chrono::steady_clock::now();
  auto reply = (*client)->call(ping_request(1), 200);
  auto took = std::chrono::steady_clock::now() - started;
  REQUIRE_FALSE(reply.ok());
  CHECK(reply.error().kind == error_kind::timeout);
  CHECK(reply.error().message == "broker did not answer within 200 ms");
  CHECK(took >= 200ms);
  CHECK(took < 2s);
}

TEST_CASE("api_client: times out when no broker listens", "[bus]") {
  std::string endpoint;
  {
    scripted_broker gone([](io_thread&, reply_route, std::string) {});
    endpoint = gone.endpoint();
  }
  auto client = api_client::connect(endpoint);
  REQUIRE(client.ok());
  auto reply = (*client)->call(ping_request(1), 100);
  REQUIRE_FALSE(reply.ok());
  CHECK(reply.error().kind == error_kind::timeout);
}

TEST_CASE("api_client: a bad endpoint is invalid", "[bus]") {
  auto client = api_client::connect("nonsense");
  REQUIRE_FALSE(client.ok());
  CHECK(client.error().kind == error_kind::invalid);
}

TEST_CASE("api_client: returns the reply whose id matches, skipping others", "[bus]") {
  scripted_broker broker([](io_thread& bus, reply_route route, std::string body) {
    std::string id = reply_id_raw(body);
    bus.post(make_reply(channel::api, route, tagged_reply(packed_id(9999), "someone else's")));
    bus.post(make_reply(channel::api, route, tagged_reply(id, "mine")));
  });
  auto client = api_client::connect(broker.endpoint());
  REQUIRE(client.ok());
  auto reply = (*client)->call(ping_request(7), 2000);
  REQUIRE(reply.ok());
  CHECK(tag_of(*reply) == "mine");
  CHECK(reply_id_raw(*reply) == packed_id(7));
}

TEST_CASE("api_client: a late reply to a timed-out call is not taken for the next call's", "[bus]") {
  reply_route held_route;
  std::string held_id;
  scripted_broker broker([&](io_thread& bus, reply_route route, std::string body) {
    std::string id = reply_id_raw(body);
    if (id == packed_id(1)) {  // hold the first request's reply back
      held_route = std::move(route);
      held_id = id;
      return;
    }
    bus.post(make_reply(channel::api, held_route, tagged_reply(held_id, "late")));
    bus.post(make_reply(channel::api, route, tagged_reply(id, "current")));
  });
  auto client = api_client::connect(broker.endpoint());
  REQUIRE(client.ok());
  auto first = (*client)->call(ping_request(1), 150);
  REQUIRE_FALSE(first.ok());
  CHECK(first.error().kind == error_kind::timeout);
  auto second = (*client)->call(ping_request(2), 2000);
  REQUIRE(second.ok());
  CHECK(tag_of(*second) == "current");
}

TEST_CASE("api_client: concurrent callers each get their own reply", "[bus]") {
  scripted_broker echo([](io_thread& bus, reply_route route, std::string body) {
    bus.post(make_reply(channel::api, std::move(route), tagged_reply(reply_id_raw(body), "echo")));
  });
  auto client = api_client::connect(echo.endpoint());
  REQUIRE(client.ok());
  std::atomic<int> matched{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        int id = t * 1000 + i;
        auto reply = (*client)->call(ping_request(id), 5000);
        if (reply.ok() && reply_id_raw(*reply) == packed_id(id)) ++matched;
      }
    });
  }
  for (auto& caller : callers) caller.join();
  CHECK(matched == 100);
}
