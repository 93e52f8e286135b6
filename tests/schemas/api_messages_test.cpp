#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "schemas/api_messages.hpp"
#include "schemas/codec.hpp"

using namespace poolbus;
using codec::pack_string;
using codec::packer;

namespace {

// A request map: "op" plus whatever `write` adds (`extra` entries).
template <class Write>
std::string request_body(const char* op, uint32_t extra, Write write) {
  return codec::pack_body([&](msgpack::sbuffer&, packer& pk) {
    pk.pack_map(1 + extra);
    pack_string(pk, "op");
    pack_string(pk, op);
    write(pk);
  });
}

std::string request_body(const char* op) {
  return request_body(op, 0, [](packer&) {});
}

std::string invalid_message(const std::string& body) {
  std::string id;
  auto decoded = decode_api_request(body, &id);
  REQUIRE_FALSE(decoded.ok());
  CHECK(decoded.error().kind == error_kind::invalid);
  return decoded.error().message;
}

api_request round_trip(const api_request& request) {
  auto decoded = decode_api_request(encode_api_request(request), nullptr);
  REQUIRE(decoded.ok());
  CHECK(decoded->op == request.op);
  CHECK(decoded->id_raw == request.id_raw);
  return *decoded;
}

AllocInspect sample_inspect() {
  AllocInspect a;
  a.id = "w1/a1";
  a.pool = "w1";
  a.taskdb_alloc_id = taskdb_alloc_id(a.id);
  a.resources = {{"cpu", 1}, {"mem", GiB}};
  a.meta.want = a.resources;
  a.meta.owner = "o";
  a.created_ms = 10;
  a.last_keepalive_ms = 20;
  a.expires_ms = 30;
  return a;
}

std::string packed_int(int64_t v) {
  return codec::pack_body([&](msgpack::sbuffer&, packer& pk) { pk.pack_int64(v); });
}

}  // namespace

TEST_CASE("api: every request op round-trips") {
  for (api_op op : {api_op::ping, api_op::pools, api_op::offers}) {
    api_request r;
    r.op = op;
    round_trip(r);
  }
  api_request offer;
  offer.op = api_op::offer;
  offer.uri = "w1/1";
  offer.id_raw = packed_int(7);
  CHECK(round_trip(offer).uri == "w1/1");

  api_request accept;
  accept.op = api_op::accept;
  accept.uri = "w1/1";
  accept.meta = AllocMeta{{{"cpu", 2}, {"mem", 2 * GiB}}, "me", {{"k", "v"}}};
  CHECK(round_trip(accept).meta == accept.meta);

  api_request allocate;
  allocate.op = api_op::allocate;
  allocate.meta = AllocMeta{{}, "me", {{"k", "v"}}};
  allocate.place.min = Resources{{"cpu", 1}};
  allocate.place.width = 3;
  auto allocated = round_trip(allocate);
  CHECK(allocated.meta == allocate.meta);
  CHECK(allocated.place.min == allocate.place.min);
  CHECK(allocated.place.width == 3);
  CHECK(!allocated.place.gang);
  CHECK(allocated.place.count == 1);

  api_request gang = allocate;
  gang.place.count = 3;
  gang.place.gang = true;
  gang.place.spread = true;
  gang.place.wait_ms = 5000;
  gang.place.priority = -2;
  gang.place.constraints = {{"zone", {"a", "b"}}, {"gpu", {"a100"}}};
  auto ganged = round_trip(gang);
  CHECK(ganged.place.count == 3);
  CHECK(ganged.place.gang);
  CHECK(ganged.place.spread);
  CHECK(ganged.place.wait_ms == 5000);
  CHECK(ganged.place.priority == -2);
  CHECK(ganged.place.constraints == gang.place.constraints);

  api_request drain;
  drain.op = api_op::drain;
  drain.pool = "w3";
  drain.drain = false;
  auto drained = round_trip(drain);
  CHECK(drained.pool == "w3");
  CHECK(!drained.drain);

  api_request allocs;
  allocs.op = api_op::allocs;
  allocs.pool = "w2";
  CHECK(round_trip(allocs).pool == "w2");
  allocs.pool.clear();
  CHECK(round_trip(allocs).pool.empty());

  for (api_op op : {api_op::inspect, api_op::free}) {
    api_request r;
    r.op = op;
    r.uri = "w1/a1";
    CHECK(round_trip(r).uri == "w1/a1");
  }
  api_request keepalive;
  keepalive.op = api_op::keepalive;
  keepalive.uri = "w1/a1";
  keepalive.interval_ms = 60000;
  auto kept = round_trip(keepalive);
  CHECK(kept.uri == "w1/a1");
  CHECK(kept.interval_ms == 60000);
}

TEST_CASE("api: op names are protocol.md's") {
  CHECK(to_string(api_op::keepalive) == "keepalive");
  CHECK(api_op_from_string("allocate") == api_op::allocate);
  CHECK_FALSE(api_op_from_string("Allocate").has_value());
}

TEST_CASE("api: v is optional but must be 1; unknown keys are ignored") {
  CHECK(decode_api_request(request_body("ping"), nullptr).ok());
  auto with_v = [](auto pack_v) {
    return request_body("ping", 2, [&](packer& pk) {
      pack_string(pk, "v");
      pack_v(pk);
      pack_string(pk, "whatever");
      pk.pack_array(1);
      pk.pack_int(1);
    });
  };
  CHECK(decode_api_request(with_v([](packer& pk) { pk.pack_int(1); }), nullptr).ok());
  CHECK(decode_api_request(with_v([](packer& pk) { pk.pack_double(1.0); }), nullptr).ok());
  CHECK_THAT(invalid_message(with_v([](packer& pk) { pk.pack_int(2); })), Catch::Contains("unsupported v"));
  CHECK_THAT(invalid_message(with_v([](packer& pk) { pack_string(pk, "1"); })), Catch::StartsWith("v:"));
}

TEST_CASE("api: malformed bodies are invalid") {
  CHECK_THAT(invalid_message(std::string("\xc1", 1)), Catch::Contains("not MessagePack"));
  CHECK_THAT(invalid_message("hello"), Catch::Contains("trailing bytes"));  // "h" is a fixint, "ello" trails
  CHECK_THAT(invalid_message(codec::pack_body([](msgpack::sbuffer&, packer& pk) { pk.pack_array(0); })),
             Catch::Contains("not a map"));
  CHECK_THAT(invalid_message(request_body("ping") + std::string("\xc0", 1)), Catch::Contains("trailing bytes"));
  CHECK_THAT(invalid_message(std::string(max_request_bytes + 1, '\xc0')), Catch::Contains("larger than"));
  CHECK_THAT(invalid_message(std::string("\xdd\xff\xff\xff\xff", 5)), Catch::Contains("size limit"));
  CHECK_THAT(invalid_message(std::string("\x81\xa1x", 3) + std::string(100, '\x91') + std::string("\xc0", 1)),
             Catch::Contains("size limit"));
  CHECK(invalid_message(codec::pack_body([](msgpack::sbuffer&, packer& pk) { pk.pack_map(0); })) == "op: missing");
  CHECK(invalid_message(codec::pack_body([](msgpack::sbuffer&, packer& pk) {
          pk.pack_map(1);
          pack_string(pk, "op");
          pk.pack_int(1);
        })) == "op: not a string");
  CHECK(invalid_message(request_body("launch")) == "op: unknown op \"launch\"");
  CHECK(invalid_message(codec::pack_body([](msgpack::sbuffer&, packer& pk) {
          pk.pack_map(1);
          pk.pack_int(1);
          pk.pack_int(2);
        })) == "body: a key is not a string");
}

TEST_CASE("api: per-op arguments are required and checked") {
  CHECK(invalid_message(request_body("offer")) == "offer: missing");
  CHECK_THAT(invalid_message(request_body("offer", 1,
                                          [](packer& pk) {
                                            pack_string(pk, "offer");
                                            pack_string(pk, "nopool");
                                          })),
             Catch::StartsWith("offer: uri \"nopool\""));
  for (const char* bad : {"/1", "w1/", "", "/"}) {
    CHECK_THAT(invalid_message(request_body("inspect", 1,
                                            [&](packer& pk) {
                                              pack_string(pk, "alloc");
                                              pack_string(pk, bad);
                                            })),
               Catch::StartsWith("alloc: "));
  }
  CHECK(invalid_message(request_body("accept", 1, [](packer& pk) {
          pack_string(pk, "offer");
          pack_string(pk, "w1/1");
        })) == "meta: missing");
  auto accept_with_cpu = [](double cpu) {
    return request_body("accept", 2, [&](packer& pk) {
      pack_string(pk, "offer");
      pack_string(pk, "w1/1");
      pack_string(pk, "meta");
      pk.pack_map(1);
      pack_string(pk, "want");
      pk.pack_map(1);
      pack_string(pk, "cpu");
      pk.pack_double(cpu);
    });
  };
  CHECK(invalid_message(accept_with_cpu(-1)) == "meta.want.cpu: negative");
  CHECK(invalid_message(accept_with_cpu(std::nan(""))) == "meta.want.cpu: not finite");
  CHECK(invalid_message(accept_with_cpu(std::numeric_limits<double>::infinity())) == "meta.want.cpu: not finite");

  // An empty want is well-formed: the pool answers it with `precondition`.
  auto empty_want = decode_api_request(request_body("accept", 2,
                                                    [](packer& pk) {
                                                      pack_string(pk, "offer");
                                                      pack_string(pk, "w1/1");
                                                      pack_string(pk, "meta");
                                                      pk.pack_map(1);
                                                      pack_string(pk, "want");
                                                      pk.pack_map(0);
                                                    }),
                                       nullptr);
  REQUIRE(empty_want.ok());
  CHECK(empty_want->meta.want.empty());

  CHECK(invalid_message(request_body("allocate")) == "min: missing");
  auto allocate_with_width = [](auto pack_width) {
    return request_body("allocate", 2, [&](packer& pk) {
      pack_string(pk, "min");
      pk.pack_map(1);
      pack_string(pk, "cpu");
      pk.pack_int(1);
      pack_string(pk, "width");
      pack_width(pk);
    });
  };
  CHECK(invalid_message(allocate_with_width([](packer& pk) { pk.pack_int(-1); })) == "width: negative");
  CHECK(invalid_message(allocate_with_width([](packer& pk) { pk.pack_double(1.5); })) == "width: not an integer");
  auto whole = decode_api_request(allocate_with_width([](packer& pk) { pk.pack_double(2.0); }), nullptr);
  REQUIRE(whole.ok());
  CHECK(whole->place.width == 2);
  auto no_width = decode_api_request(request_body("allocate", 1,
                                                  [](packer& pk) {
                                                    pack_string(pk, "min");
                                                    pk.pack_map(0);
                                                  }),
                                     nullptr);
  REQUIRE(no_width.ok());
  CHECK(no_width->place.width == 0);
  CHECK(invalid_message(request_body("allocate", 2, [](packer& pk) {
          pack_string(pk, "min");
          pk.pack_map(0);
          pack_string(pk, "labels");
          pk.pack_map(1);
          pack_string(pk, "x");
          pk.pack_true();
        })) == "labels.x: not a string");

  auto keepalive_with = [](auto pack_interval) {
    return request_body("keepalive", 2, [&](packer& pk) {
      pack_string(pk, "alloc");
      pack_string(pk, "w1/a1");
      pack_string(pk, "interval_ms");
      pack_interval(pk);
    });
  };
  CHECK(invalid_message(keepalive_with([](packer& pk) { pk.pack_int(0); })) == "interval_ms: must be > 0");
  CHECK(invalid_message(keepalive_with([](packer& pk) { pk.pack_int(-5); })) == "interval_ms: must be > 0");
  CHECK(invalid_message(keepalive_with([](packer& pk) { pk.pack_nil(); })) == "interval_ms: missing");
  CHECK(decode_api_request(keepalive_with([](packer& pk) { pk.pack_double(30000.0); }), nullptr)->interval_ms == 30000);
  CHECK(invalid_message(request_body("keepalive", 1, [](packer& pk) {
          pack_string(pk, "alloc");
          pack_string(pk, "w1/a1");
        })) == "interval_ms: missing");
  CHECK(invalid_message(request_body("allocs", 1, [](packer& pk) {
          pack_string(pk, "pool");
          pk.pack_int(3);
        })) == "pool: not a string");
}

TEST_CASE("api: the id is echoed exactly, whatever its type") {
  auto id_of_request = [](auto pack_id) {
    std::string body = request_body("ping", 1, [&](packer& pk) {
      pack_string(pk, "id");
      pack_id(pk);
    });
    std::string id_out;
    auto decoded = decode_api_request(body, &id_out);
    REQUIRE(decoded.ok());
    CHECK(decoded->id_raw == id_out);
    return decoded->id_raw;
  };
  CHECK(id_of_request([](packer& pk) { pk.pack_int(42); }) == packed_int(42));
  std::string str_id = id_of_request([](packer& pk) { pack_string(pk, "req-9"); });
  CHECK(str_id == codec::pack_body([](msgpack::sbuffer&, packer& pk) { pack_string(pk, "req-9"); }));
  CHECK(id_of_request([](packer& pk) { pk.pack_nil(); }) == nil_id_raw);
  std::string map_id = id_of_request([](packer& pk) {
    pk.pack_map(1);
    pack_string(pk, "n");
    pk.pack_array(2);
    pk.pack_int(1);
    pk.pack_double(2.5);
  });
  std::string absent_out = "junk";
  auto absent = decode_api_request(request_body("ping"), &absent_out);
  REQUIRE(absent.ok());
  CHECK(absent->id_raw == nil_id_raw);
  CHECK(absent_out == nil_id_raw);

  // The reply carries the same bytes back.
  auto reply = decode_api_reply(encode_ok_reply(map_id));
  REQUIRE(reply.ok());
  CHECK(reply->id_raw == map_id);
  CHECK(reply_id_raw(encode_ok_reply(str_id)) == str_id);
  CHECK(reply_id_raw("garbage\xc1") == nil_id_raw);
}

TEST_CASE("api: a malformed request with an id still yields the id for the error reply") {
  std::string body = codec::pack_body([](msgpack::sbuffer&, packer& pk) {
    pk.pack_map(3);
    pack_string(pk, "id");
    pk.pack_int(17);
    pack_string(pk, "op");
    pack_string(pk, "keepalive");
    pack_string(pk, "alloc");
    pack_string(pk, "no-slash");
  });
  std::string id;
  auto decoded = decode_api_request(body, &id);
  REQUIRE_FALSE(decoded.ok());
  CHECK(id == packed_int(17));
  auto reply = decode_api_reply(encode_error_reply(id, decoded.error()));
  REQUIRE_FALSE(reply.ok());
  CHECK(reply.error() == decoded.error());
  CHECK(reply_id_raw(encode_error_reply(id, decoded.error())) == packed_int(17));

  std::string junk_id = "stale";
  CHECK_FALSE(decode_api_request(std::string("\xc1", 1), &junk_id).ok());
  CHECK(junk_id == nil_id_raw);
}

TEST_CASE("api: replies carry v, id, ok and protocol.md's result keys") {
  std::string id = packed_int(5);
  auto keys_of = [](const std::string& body) {
    auto handle = msgpack::unpack(body.data(), body.size());
    std::vector<std::string> keys;
    for (uint32_t i = 0; i < handle.get().via.map.size; ++i)
      keys.push_back(handle.get().via.map.ptr[i].key.as<std::string>());
    return keys;
  };
  using keys = std::vector<std::string>;
  CHECK(keys_of(encode_ok_reply(id)) == keys{"v", "id", "ok"});
  CHECK(keys_of(encode_pools_reply(id, {})) == keys{"v", "id", "ok", "pools"});
  CHECK(keys_of(encode_offers_reply(id, {})) == keys{"v", "id", "ok", "offers"});
  CHECK(keys_of(encode_offer_reply(id, {})) == keys{"v", "id", "ok", "offer"});
  CHECK(keys_of(encode_alloc_reply(id, sample_inspect())) == keys{"v", "id", "ok", "alloc"});
  CHECK(keys_of(encode_allocs_reply(id, {})) == keys{"v", "id", "ok", "allocs"});
  CHECK(keys_of(encode_keepalive_reply(id, 1)) == keys{"v", "id", "ok", "interval_ms"});
  CHECK(keys_of(encode_error_reply(id, {error_kind::timeout, "slow"})) == keys{"v", "id", "ok", "error"});
  CHECK(keys_of(encode_ok_reply("")) == keys{"v", "id", "ok"});  // empty raw id packs as nil
}

TEST_CASE("api: every reply round-trips through decode_api_reply") {
  std::string id = packed_int(9);
  std::vector<PoolStatus> pools{{"w1", {{"cpu", 4}}, {{"cpu", 2}}, 1, 123}, {"w2", {}, {}, 0, 0}};
  auto pools_reply = decode_api_reply(encode_pools_reply(id, pools));
  REQUIRE(pools_reply.ok());
  REQUIRE(pools_reply->pools.size() == 2);
  CHECK(pools_reply->pools[0].id == "w1");
  CHECK(pools_reply->pools[0].available == pools[0].available);
  CHECK(pools_reply->pools[0].last_seen_ms == 123);

  std::vector<OfferInfo> offers{{"w1/1", "w1", {{"cpu", 2}}}, {"w2/1", "w2", {{"mem", GiB}}}};
  auto offers_reply = decode_api_reply(encode_offers_reply(id, offers));
  REQUIRE(offers_reply.ok());
  CHECK(offers_reply->offers == offers);

  auto offer_reply = decode_api_reply(encode_offer_reply(id, offers[1]));
  REQUIRE(offer_reply.ok());
  CHECK(offer_reply->offer == offers[1]);

  auto alloc_reply = decode_api_reply(encode_alloc_reply(id, sample_inspect()));
  REQUIRE(alloc_reply.ok());
  CHECK(alloc_reply->alloc == sample_inspect());

  auto allocs_reply = decode_api_reply(encode_allocs_reply(id, {sample_inspect(), sample_inspect()}));
  REQUIRE(allocs_reply.ok());
  CHECK(allocs_reply->allocs.size() == 2);
  CHECK(allocs_reply->allocs[1] == sample_inspect());

  auto keepalive_reply = decode_api_reply(encode_keepalive_reply(id, 300000));
  REQUIRE(keepalive_reply.ok());
  CHECK(keepalive_reply->interval_ms == 300000);
  CHECK(keepalive_reply->id_raw == id);

  for (error_kind kind : {error_kind::invalid, error_kind::not_exist, error_kind::precondition, error_kind::unavailable,
                          error_kind::timeout, error_kind::unauthorized, error_kind::internal}) {
    auto error_reply = decode_api_reply(encode_error_reply(id, {kind, "why"}));
    REQUIRE_FALSE(error_reply.ok());
    CHECK(error_reply.error() == pool_error{kind, "why"});
  }
}

TEST_CASE("api: a malformed reply is internal") {
  auto not_msgpack = decode_api_reply(std::string("\xc1", 1));
  REQUIRE_FALSE(not_msgpack.ok());
  CHECK(not_msgpack.error().kind == error_kind::internal);
  auto no_ok = decode_api_reply(codec::pack_body([](msgpack::sbuffer&, packer& pk) { pk.pack_map(0); }));
  REQUIRE_FALSE(no_ok.ok());
  CHECK(no_ok.error().kind == error_kind::internal);
  CHECK_THAT(no_ok.error().message, Catch::Contains("ok: missing"));
  auto bad_kind = decode_api_reply(codec::pack_body([](msgpack::sbuffer&, packer& pk) {
    pk.pack_map(2);
    pack_string(pk, "ok");
    pk.pack_false();
    pack_string(pk, "error");
    pk.pack_map(1);
    pack_string(pk, "kind");
    pack_string(pk, "nope");
  }));
  REQUIRE_FALSE(bad_kind.ok());
  CHECK(bad_kind.error().kind == error_kind::internal);
}

TEST_CASE("api: a reply may list more than a request's container limit (10,001 pools)") {
  std::vector<PoolStatus> pools;
  for (int i = 0; i <= 10000; ++i)
    pools.push_back(
        PoolStatus{"w" + std::to_string(i), Resources{{"cpu", 4}}, Resources{{"cpu", 2}}, 1, 1764300000000});
  auto body = encode_pools_reply("\x07", pools);
  auto reply = decode_api_reply(body);
  REQUIRE(reply);
  REQUIRE(reply->pools.size() == 10001);
  CHECK(reply->pools.back().id == "w10000");
  CHECK(reply_id_raw(body) == "\x07");
  // A request is still held to the smaller limit.
  CHECK_THROWS_AS(codec::unpack_body(codec::pack_body([](msgpack::sbuffer&, codec::packer& pk) {
                    pk.pack_array(codec::max_container_elements + 1);
                    for (size_t i = 0; i <= codec::max_container_elements; ++i) pk.pack_nil();
                  })),
                  codec::decode_failure);
}
