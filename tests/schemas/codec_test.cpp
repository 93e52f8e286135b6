#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "schemas/codec.hpp"

using namespace poolbus;
using codec::pack_string;
using codec::packer;

namespace {

// A body with one map whose entries `write` packs after the header.
template <class Write>
std::string map_body(uint32_t entries, Write write) {
  return codec::pack_body([&](msgpack::sbuffer&, packer& pk) {
    pk.pack_map(entries);
    write(pk);
  });
}

std::string resources_body(const char* key, double value) {
  return map_body(1, [&](packer& pk) {
    pack_string(pk, key);
    pk.pack_double(value);
  });
}

AllocInspect sample_inspect() {
  AllocInspect a;
  a.id = "w1/a7";
  a.pool = "w1";
  a.taskdb_alloc_id = taskdb_alloc_id(a.id);
  a.resources = {{"cpu", 2}, {"mem", 4 * GiB}};
  a.meta.want = a.resources;
  a.meta.owner = "alice";
  a.meta.labels = {{"run", "r1"}, {"step", "align"}};
  a.created_ms = 1700000000000;
  a.last_keepalive_ms = 0;
  a.expires_ms = 1700000120000;
  return a;
}

std::string error_of(const std::string& body) {
  auto decoded = decode_alloc_meta(body);
  REQUIRE_FALSE(decoded.ok());
  CHECK(decoded.error().kind == error_kind::invalid);
  return decoded.error().message;
}

}  // namespace

TEST_CASE("codec: float64 is written as float64 even for whole numbers") {
  for (double v : {0.0, 4.0, 8.0 * GiB, 0.5, 1e15}) {
    std::string body = codec::pack_body([&](msgpack::sbuffer&, packer& pk) { codec::pack_float64(pk, v); });
    REQUIRE(body.size() == 9);
    CHECK(static_cast<unsigned char>(body[0]) == 0xcb);
    auto handle = msgpack::unpack(body.data(), body.size());
    CHECK(handle.get().type == msgpack::type::FLOAT64);
    CHECK(handle.get().via.f64 == v);
  }
}

TEST_CASE("codec: resources round-trip, written as float64") {
  Resources r{{"cpu", 0.5}, {"mem", 8 * GiB}, {"disk", 100 * GiB}, {"gpu", 1}};
  std::string body = encode_resources(r);
  auto decoded = decode_resources(body);
  REQUIRE(decoded.ok());
  CHECK(*decoded == r);
  auto handle = msgpack::unpack(body.data(), body.size());
  const auto& map = handle.get().via.map;
  REQUIRE(map.size == 4);
  for (uint32_t i = 0; i < map.size; ++i) CHECK(map.ptr[i].val.type == msgpack::type::FLOAT64);
}

TEST_CASE("codec: resources accept any int or float") {
  std::string body = map_body(4, [](packer& pk) {
    pack_string(pk, "cpu");
    pk.pack_uint8(4);
    pack_string(pk, "mem");
    pk.pack_uint64(8ull << 30);
    pack_string(pk, "disk");
    pk.pack_float(1.5f);
    pack_string(pk, "gpu");
    pk.pack_int64(0);
  });
  auto decoded = decode_resources(body);
  REQUIRE(decoded.ok());
  CHECK(decoded->get("cpu") == 4);
  CHECK(decoded->get("mem") == 8 * GiB);
  CHECK(decoded->get("disk") == 1.5);
  CHECK(decoded->has("gpu"));
}

TEST_CASE("codec: resources reject negative, non-finite, too large, bad keys, non-maps") {
  auto message = [](const std::string& body) {
    auto decoded = decode_resources(body);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().kind == error_kind::invalid);
    return decoded.error().message;
  };
  CHECK(message(resources_body("cpu", -1)) == "cpu: negative");
  CHECK(message(resources_body("cpu", std::nan(""))) == "cpu: not finite");
  CHECK(message(resources_body("mem", std::numeric_limits<double>::infinity())) == "mem: not finite");
  CHECK(message(resources_body("mem", -std::numeric_limits<double>::infinity())) == "mem: not finite");
  CHECK(message(resources_body("mem", 1e300)) == "mem: too large");
  CHECK(message(resources_body("", 1)) == "body: resource name is empty");
  CHECK(message(map_body(1, [](packer& pk) {
          pk.pack_int(1);
          pk.pack_int(1);
        })) == "body: resource name is not a string");
  CHECK(message(map_body(1, [](packer& pk) {
          pack_string(pk, "cpu");
          pack_string(pk, "4");
        })) == "cpu: not a number");
  CHECK(message(codec::pack_body([](msgpack::sbuffer&, packer& pk) { pk.pack_array(0); })) == "body: not a map");
}

TEST_CASE("codec: alloc meta round-trips and names the failing path") {
  AllocMeta meta{{{"cpu", 1}}, "bob", {{"a", "b"}}};
  auto decoded = decode_alloc_meta(encode_alloc_meta(meta));
  REQUIRE(decoded.ok());
  CHECK(*decoded == meta);

  AllocMeta bare{{{"cpu", 1}}, "", {}};
  auto bare_decoded = decode_alloc_meta(encode_alloc_meta(bare));
  REQUIRE(bare_decoded.ok());
  CHECK(*bare_decoded == bare);

  CHECK(error_of(map_body(0, [](packer&) {})) == "want: missing");
  CHECK(error_of(map_body(2, [](packer& pk) {
          pack_string(pk, "want");
          pk.pack_map(0);
          pack_string(pk, "labels");
          pk.pack_map(1);
          pack_string(pk, "x");
          pk.pack_int(3);
        })) == "labels.x: not a string");
  CHECK(error_of(map_body(2, [](packer& pk) {
          pack_string(pk, "want");
          pk.pack_map(0);
          pack_string(pk, "owner");
          pk.pack_int(3);
        })) == "owner: not a string");
  CHECK(error_of(map_body(1, [](packer& pk) {
          pack_string(pk, "want");
          pk.pack_map(1);
          pack_string(pk, "cpu");
          pk.pack_int(-2);
        })) == "want.cpu: negative");
}

TEST_CASE("codec: nil counts as an absent optional field") {
  auto decoded = decode_alloc_meta(map_body(3, [](packer& pk) {
    pack_string(pk, "want");
    pk.pack_map(0);
    pack_string(pk, "owner");
    pk.pack_nil();
    pack_string(pk, "labels");
    pk.pack_nil();
  }));
  REQUIRE(decoded.ok());
  CHECK(decoded->owner.empty());
  CHECK(decoded->labels.empty());
}

TEST_CASE("codec: alloc inspect round-trips with taskdb_alloc_id, times as ints") {
  AllocInspect a = sample_inspect();
  std::string body = encode_alloc_inspect(a);
  auto decoded = decode_alloc_inspect(body);
  REQUIRE(decoded.ok());
  CHECK(*decoded == a);
  CHECK(decoded->taskdb_alloc_id.rfind("sha256:", 0) == 0);

  auto handle = msgpack::unpack(body.data(), body.size());
  codec::map_view view(handle.get(), "");
  CHECK(view.require("created_ms").type == msgpack::type::POSITIVE_INTEGER);
  CHECK(view.require("last_keepalive_ms").type == msgpack::type::POSITIVE_INTEGER);
  CHECK(view.find("taskdb_alloc_id") != nullptr);
}

TEST_CASE("codec: alloc inspect allows extra keys, takes whole floats as ints, rejects 1.5") {
  auto body_with_created = [](auto pack_created) {
    return map_body(9, [&](packer& pk) {
      pack_string(pk, "id");
      pack_string(pk, "w1/a1");
      pack_string(pk, "pool");
      pack_string(pk, "w1");
      pack_string(pk, "resources");
      pk.pack_map(0);
      pack_string(pk, "meta");
      pk.pack_map(1);
      pack_string(pk, "want");
      pk.pack_map(0);
      pack_string(pk, "created_ms");
      pack_created(pk);
      pack_string(pk, "last_keepalive_ms");
      pk.pack_int(0);
      pack_string(pk, "expires_ms");
      pk.pack_int64(120000);
      pack_string(pk, "extra");
      pk.pack_array(2);
      pk.pack_nil();
      pk.pack_true();
      pack_string(pk, "also_extra");
      pk.pack_map(0);
    });
  };
  auto whole = decode_alloc_inspect(body_with_created([](packer& pk) { pk.pack_double(1000.0); }));
  REQUIRE(whole.ok());
  CHECK(whole->created_ms == 1000);
  CHECK(whole->taskdb_alloc_id.empty());

  auto fraction = decode_alloc_inspect(body_with_created([](packer& pk) { pk.pack_double(1.5); }));
  REQUIRE_FALSE(fraction.ok());
  CHECK(fraction.error().message == "created_ms: not an integer");

  auto huge = decode_alloc_inspect(body_with_created([](packer& pk) { pk.pack_double(1e30); }));
  REQUIRE_FALSE(huge.ok());
  CHECK(huge.error().message == "created_ms: integer out of range");

  auto too_big_uint = decode_alloc_inspect(body_with_created([](packer& pk) { pk.pack_uint64(~0ull); }));
  REQUIRE_FALSE(too_big_uint.ok());

  auto as_string = decode_alloc_inspect(body_with_created([](packer& pk) { pack_string(pk, "5"); }));
  REQUIRE_FALSE(as_string.ok());
  CHECK(as_string.error().message == "created_ms: not an integer");

  auto missing = decode_alloc_inspect(map_body(1, [](packer& pk) {
    pack_string(pk, "id");
    pack_string(pk, "w1/a1");
  }));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message == "pool: missing");
}

TEST_CASE("codec: offer info and pool status round-trip") {
  OfferInfo offer{"w1/1", "w1", {{"cpu", 3}, {"mem", GiB}}};
  auto decoded_offer = decode_offer_info(encode_offer_info(offer));
  REQUIRE(decoded_offer.ok());
  CHECK(*decoded_offer == offer);

  PoolStatus pool{"w1", {{"cpu", 4}}, {{"cpu", 1}}, 3, 1700000000123};
  auto decoded_pool = decode_pool_status(encode_pool_status(pool));
  REQUIRE(decoded_pool.ok());
  CHECK(decoded_pool->id == "w1");
  CHECK(decoded_pool->resources == pool.resources);
  CHECK(decoded_pool->available == pool.available);
  CHECK(decoded_pool->allocs == 3);
  CHECK(decoded_pool->last_seen_ms == 1700000000123);
}

TEST_CASE("codec: pool_error reads kind and message, rejects unknown kinds") {
  std::string body = codec::pack_body([](msgpack::sbuffer&, packer& pk) {
    codec::pack_pool_error(pk, {error_kind::not_exist, "gone"});
  });
  auto handle = msgpack::unpack(body.data(), body.size());
  CHECK(codec::read_pool_error(handle.get(), "error") == pool_error{error_kind::not_exist, "gone"});

  std::string unknown = map_body(2, [](packer& pk) {
    pack_string(pk, "kind");
    pack_string(pk, "weird");
    pack_string(pk, "message");
    pack_string(pk, "x");
  });
  auto unknown_handle = msgpack::unpack(unknown.data(), unknown.size());
  try {
    codec::read_pool_error(unknown_handle.get(), "error");
    FAIL("an unknown kind was accepted");
  } catch (const codec::decode_failure& failure) {
    CHECK(failure.error.kind == error_kind::invalid);
    CHECK(failure.error.message == "error.kind: unknown error kind \"weird\"");
  }
}

TEST_CASE("codec: unpack_body rejects what is not exactly one bounded message") {
  auto rejects = [](const std::string& body, const std::string& part) {
    auto decoded = decode_resources(body);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().kind == error_kind::invalid);
    CHECK_THAT(decoded.error().message, Catch::Contains(part));
  };
  rejects("", "empty");
  rejects(std::string("\xc1", 1), "not MessagePack");  // never-used byte
  rejects(
      "\x81\xa3"
      "cpu",
      "not MessagePack");  // truncated
  rejects(encode_resources({{"cpu", 1}}) + "x", "1 trailing bytes");
  rejects(std::string("\xdd\xff\xff\xff\xff", 5), "size limit");  // array32 of 4G elements
  rejects(std::string("\xdf\xff\xff\xff\xff", 5), "size limit");  // map32 of 4G entries
  // str32/bin32 of 4 GiB: the body is read in place, so the parser waits for it.
  rejects(std::string("\xdb\xff\xff\xff\xff", 5), "truncated");
  rejects(std::string("\xc6\xff\xff\xff\xff", 5), "truncated");
  rejects(std::string(200, '\x91') + std::string("\xc0", 1), "size limit");  // 200 nested arrays
  std::string big_string = codec::pack_body(
      [](msgpack::sbuffer&, packer& pk) { pack_string(pk, std::string(codec::max_string_bytes + 1, 'x')); });
  rejects(big_string, "size limit");
  std::string many = codec::pack_body([](msgpack::sbuffer&, packer& pk) {
    pk.pack_array(codec::max_container_elements + 1);
    for (size_t i = 0; i <= codec::max_container_elements; ++i) pk.pack_nil();
  });
  rejects(many, "size limit");
  rejects(std::string(codec::max_body_bytes + 1, '\xc0'), "larger than");
}

TEST_CASE("codec: limits leave room for ordinary nesting and sizes") {
  std::string nested = std::string(10, '\x91') + std::string("\xc0", 1);
  CHECK_NOTHROW(codec::unpack_body(nested));
  std::string at_limit = codec::pack_body(
      [](msgpack::sbuffer&, packer& pk) { pack_string(pk, std::string(codec::max_string_bytes, 'x')); });
  CHECK_NOTHROW(codec::unpack_body(at_limit));
}
