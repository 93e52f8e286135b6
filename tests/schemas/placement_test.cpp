#include <catch2/catch.hpp>

#include "schemas/api_messages.hpp"
#include "schemas/codec.hpp"
#include "schemas/placement.hpp"
#include "schemas/worker_messages.hpp"

using namespace poolbus;

TEST_CASE("placement: labels and constraints from the command line, checked") {
  auto label = parse_label("zone=eu-1");
  REQUIRE(label.ok());
  CHECK(label->first == "zone");
  CHECK(label->second == "eu-1");
  CHECK(parse_label("gpu.vendor/model=a100:80gb").ok());
  for (const char* bad : {"zone", "=x", "zone=", "-zone=x", "zo ne=x", "zone=a,b", "zone=a=b"}) {
    INFO(bad);
    auto parsed = parse_label(bad);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error().kind == error_kind::invalid);
  }
  CHECK_FALSE(parse_label(std::string(64, 'k') + "=v").ok());
  CHECK(parse_label(std::string(63, 'k') + "=v").ok());
  auto constraint = parse_constraint("zone=eu-1,eu-2");
  REQUIRE(constraint.ok());
  CHECK(constraint->second == std::vector<std::string>{"eu-1", "eu-2"});
  CHECK_FALSE(parse_constraint("zone=eu-1,").ok());
  CHECK_FALSE(parse_constraint("zone").ok());
}

TEST_CASE("placement: a pool satisfies constraints when every key matches one value") {
  PoolLabels labels{{"zone", "eu"}, {"gpu", "a100"}};
  CHECK(satisfies(labels, {}));
  CHECK(satisfies(labels, {{"zone", {"us", "eu"}}}));
  CHECK(satisfies(labels, {{"zone", {"eu"}}, {"gpu", {"a100"}}}));
  CHECK_FALSE(satisfies(labels, {{"zone", {"eu"}}, {"gpu", {"h100"}}}));
  CHECK_FALSE(satisfies(labels, {{"arch", {"arm64"}}}));  // without the label: no match
  CHECK_FALSE(satisfies({}, {{"zone", {"eu"}}}));
}

TEST_CASE("placement: refusals name what is wrong") {
  placement p;
  p.min = Resources{{"cpu", 1}};
  CHECK_FALSE(placement_refusal(p));
  auto refused = [&](auto change) {
    auto q = p;
    change(q);
    auto r = placement_refusal(q);
    REQUIRE(r);
    return r->kind;
  };
  CHECK(refused([](placement& q) { q.count = 0; }) == error_kind::invalid);
  CHECK(refused([](placement& q) { q.wait_ms = -1; }) == error_kind::invalid);
  CHECK(refused([](placement& q) { q.wait_ms = max_wait_ms + 1; }) == error_kind::invalid);
  CHECK(refused([](placement& q) { q.width = -1; }) == error_kind::invalid);
  CHECK(refused([](placement& q) { q.constraints["zone"] = {}; }) == error_kind::invalid);
  CHECK(refused([](placement& q) { q.min = Resources{}; }) == error_kind::precondition);
}

namespace {

std::string allocate_with(const std::string& key, const std::function<void(codec::packer&)>& value) {
  msgpack::sbuffer buffer;
  codec::packer pk(&buffer);
  pk.pack_map(3);
  codec::pack_string(pk, "op");
  codec::pack_string(pk, "allocate");
  codec::pack_string(pk, "min");
  pk.pack_map(1);
  codec::pack_string(pk, "cpu");
  pk.pack_double(1.0);
  codec::pack_string(pk, key);
  value(pk);
  return std::string(buffer.data(), buffer.size());
}

std::string invalid_message(const std::string& body) {
  auto decoded = decode_api_request(body, nullptr);
  REQUIRE_FALSE(decoded.ok());
  CHECK(decoded.error().kind == error_kind::invalid);
  return decoded.error().message;
}

}  // namespace

TEST_CASE("placement: allocate's new arguments decode strictly") {
  CHECK(invalid_message(allocate_with("wait_ms", [](codec::packer& pk) { pk.pack_int(-1); })) == "wait_ms: negative");
  CHECK(invalid_message(allocate_with("count", [](codec::packer& pk) { pk.pack_int(0); })) == "count: must be >= 1");
  CHECK(invalid_message(allocate_with("spread", [](codec::packer& pk) { pk.pack_int(1); })) == "spread: not a bool");
  CHECK(invalid_message(allocate_with("constraints", [](codec::packer& pk) { codec::pack_string(pk, "zone=eu"); })) ==
        "constraints: not a map");
  CHECK_THAT(invalid_message(allocate_with("constraints",
                                           [](codec::packer& pk) {
                                             pk.pack_map(1);
                                             codec::pack_string(pk, "zone");
                                             pk.pack_array(0);
                                           })),
             Catch::Contains("constraints.zone"));
  CHECK_THAT(invalid_message(allocate_with("constraints",
                                           [](codec::packer& pk) {
                                             pk.pack_map(1);
                                             codec::pack_string(pk, "zone");
                                             pk.pack_array(1);
                                             pk.pack_int(3);
                                           })),
             Catch::Contains("constraints.zone[0]"));
  CHECK_THAT(invalid_message(allocate_with("constraints",
                                           [](codec::packer& pk) {
                                             pk.pack_map(1);
                                             codec::pack_string(pk, "zone");
                                             pk.pack_int(3);
                                           })),
             Catch::Contains("not a string or a list of strings"));
  auto one = decode_api_request(allocate_with("constraints",
                                              [](codec::packer& pk) {
                                                pk.pack_map(1);
                                                codec::pack_string(pk, "zone");
                                                codec::pack_string(pk, "eu");
                                              }),
                                nullptr);
  REQUIRE(one.ok());
  CHECK(one->place.constraints == Constraints{{"zone", {"eu"}}});
  CHECK_FALSE(one->place.gang);
}

TEST_CASE("placement: queue, quotas, gang and demand bodies round-trip") {
  queue_entry e{"q7", "alice", Resources{{"cpu", 2}}, 1, 3, -4, {{"zone", {"a", "b"}}}, 1000, 6000};
  auto reply = decode_api_reply(encode_queue_reply("\x01", {e, e}));
  REQUIRE(reply.ok());
  REQUIRE(reply->queue.size() == 2);
  CHECK(reply->queue[1].id == "q7");
  CHECK(reply->queue[1].owner == "alice");
  CHECK(reply->queue[1].count == 3);
  CHECK(reply->queue[1].priority == -4);
  CHECK(reply->queue[1].constraints == e.constraints);
  CHECK(reply->queue[1].deadline_ms == 6000);
  auto quotas = decode_api_reply(encode_quotas_reply("\x01", {{"bob", Resources{{"cpu", 4}}, Resources{{"cpu", 1}}}}));
  REQUIRE(quotas.ok());
  REQUIRE(quotas->quotas.size() == 1);
  CHECK(quotas->quotas[0].used == Resources{{"cpu", 1}});
  AllocInspect a;
  a.id = "p/1";
  a.pool = "p";
  AllocInspect b = a;
  b.id = "p/2";
  auto gang = decode_api_reply(encode_gang_reply("\x01", {a, b}));
  REQUIRE(gang.ok());
  CHECK(gang->alloc.id == "p/1");
  REQUIRE(gang->allocs.size() == 2);
  CHECK(gang->allocs[1].id == "p/2");
  demand_event d{demand_event_kind::placed, e, {"p/1", "p/2"}, 77};
  auto event = decode_demand_event(encode_demand_event(d));
  REQUIRE(event.ok());
  CHECK(event->event == demand_event_kind::placed);
  CHECK(event->request.id == "q7");
  CHECK(event->allocs == d.allocs);
  CHECK(event->ts_ms == 77);
  PoolStatus p{"w1", Resources{{"cpu", 4}}, Resources{{"cpu", 2}}, 1, 1234, {{"zone", "eu"}}, true};
  auto pool = decode_api_reply(encode_pool_reply("\x01", p));
  REQUIRE(pool.ok());
  CHECK(pool->pool.labels == p.labels);
  CHECK(pool->pool.draining);
  CHECK(pool->pool.last_seen_ms == 1234);
}
