// decode_api_reply's fast list readers and reply_id_raw's tree-less check must
// accept, yield and reject exactly what the strict codec path does.
#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include "schemas/api_messages.hpp"
#include "schemas/codec.hpp"

using namespace poolbus;
using codec::pack_string;
using codec::packer;

namespace {

// What reply_id_raw answered before: the whole body unpacked under the codec's
// limits, then the first string key "id" of a top-level map, re-packed.
std::string strict_reply_id_raw(std::string_view body) {
  auto id = codec::guarded([&] {
    auto handle = codec::unpack_body(body, codec::max_reply_bytes);
    const auto& object = handle.get();
    if (object.type != msgpack::type::MAP) return nil_id_raw;
    for (uint32_t i = 0; i < object.via.map.size; ++i) {
      const auto& entry = object.via.map.ptr[i];
      if (entry.key.type == msgpack::type::STR &&
          std::string_view(entry.key.via.str.ptr, entry.key.via.str.size) == "id")
        return codec::repack(entry.val);
    }
    return nil_id_raw;
  });
  return id ? *id : nil_id_raw;
}

std::string body_of(const std::function<void(msgpack::sbuffer&, packer&)>& write) {
  return codec::pack_body([&](msgpack::sbuffer& buffer, packer& pk) { write(buffer, pk); });
}

// {"v": 1, <extra...>, "id": 7, "ok": true}: the id after `extra` entries.
std::string reply_with(uint32_t extra, const std::function<void(packer&)>& write_extra) {
  return body_of([&](msgpack::sbuffer&, packer& pk) {
    pk.pack_map(3 + extra);
    pack_string(pk, "v");
    pk.pack_int(1);
    write_extra(pk);
    pack_string(pk, "id");
    pk.pack_int(7);
    pack_string(pk, "ok");
    pk.pack_true();
  });
}

void nest_arrays(packer& pk, int depth) {
  for (int i = 0; i < depth; ++i) pk.pack_array(1);
  pk.pack_nil();
}

}  // namespace

TEST_CASE("reply decode: reply_id_raw answers what unpacking the whole body does") {
  std::vector<std::pair<std::string, std::string>> cases;  // name, body
  std::vector<OfferInfo> offers(3, OfferInfo{"p/1", "p", Resources{{"cpu", 1}}});
  cases.push_back({"offers reply", encode_offers_reply("\xa3" "abc", offers)});
  cases.push_back({"error reply", encode_error_reply("\x05", {error_kind::not_exist, "no"})});
  cases.push_back({"nil id", encode_ok_reply(nil_id_raw)});
  cases.push_back({"not a map", body_of([](msgpack::sbuffer&, packer& pk) { pk.pack_array(1); pk.pack_int(1); })});
  cases.push_back({"no id", body_of([](msgpack::sbuffer&, packer& pk) { pk.pack_map(1); pack_string(pk, "ok"); pk.pack_true(); })});
  cases.push_back({"id as bin key", body_of([](msgpack::sbuffer&, packer& pk) {
                     pk.pack_map(2);
                     pk.pack_bin(2);
                     pk.pack_bin_body("id", 2);
                     pk.pack_int(1);
                     pack_string(pk, "id");
                     pk.pack_int(2);
                   })});
  cases.push_back({"two ids", body_of([](msgpack::sbuffer&, packer& pk) {
                     pk.pack_map(2);
                     pack_string(pk, "id");
                     pk.pack_int(1);
                     pack_string(pk, "id");
                     pk.pack_int(2);
                   })});
  // A non-canonical id (5 as uint32) is echoed re-packed, as before.
  cases.push_back({"wide id", body_of([](msgpack::sbuffer& buffer, packer& pk) {
                     pk.pack_map(1);
                     pack_string(pk, "id");
                     buffer.write("\xce\x00\x00\x00\x05", 5);
                   })});
  cases.push_back({"map id", body_of([](msgpack::sbuffer&, packer& pk) {
                     pk.pack_map(1);
                     pack_string(pk, "id");
                     pk.pack_map(1);
                     pack_string(pk, "k");
                     pk.pack_array(0);
                   })});
  cases.push_back({"map16 head", body_of([](msgpack::sbuffer& buffer, packer& pk) {
                     buffer.write("\xde\x00\x01", 3);
                     pack_string(pk, "id");
                     pk.pack_int(3);
                   })});
  cases.push_back({"map32 head", body_of([](msgpack::sbuffer& buffer, packer& pk) {
                     buffer.write("\xdf\x00\x00\x00\x01", 5);
                     pack_string(pk, "id");
                     pk.pack_int(3);
                   })});
  // Limits: the id comes after the offending value, or before it.
  cases.push_back({"depth 31 after head", reply_with(1, [](packer& pk) { pack_string(pk, "x"); nest_arrays(pk, 31); })});
  cases.push_back({"depth 32 after head", reply_with(1, [](packer& pk) { pack_string(pk, "x"); nest_arrays(pk, 32); })});
  cases.push_back({"depth 33 after head", reply_with(1, [](packer& pk) { pack_string(pk, "x"); nest_arrays(pk, 33); })});
  cases.push_back({"10000 elements", reply_with(1, [](packer& pk) {
                     pack_string(pk, "x");
                     pk.pack_array(10000);
                     for (int i = 0; i < 10000; ++i) pk.pack_nil();
                   })});
  cases.push_back({"10001 elements", reply_with(1, [](packer& pk) {
                     pack_string(pk, "x");
                     pk.pack_array(10001);
                     for (int i = 0; i < 10001; ++i) pk.pack_nil();
                   })});
  cases.push_back({"10001 pairs", reply_with(1, [](packer& pk) {
                     pack_string(pk, "x");
                     pk.pack_map(10001);
                     for (int i = 0; i < 10001; ++i) {
                       pk.pack_int(i);
                       pk.pack_nil();
                     }
                   })});
  for (size_t size : {codec::max_string_bytes, codec::max_string_bytes + 1}) {
    std::string text(size, 'x');
    cases.push_back({"str " + std::to_string(size), reply_with(1, [&](packer& pk) { pack_string(pk, "x"); pack_string(pk, text); })});
    cases.push_back({"ext " + std::to_string(size), reply_with(1, [&](packer& pk) {
                       pack_string(pk, "x");
                       pk.pack_ext(text.size(), 1);
                       pk.pack_ext_body(text.data(), static_cast<uint32_t>(text.size()));
                     })});
  }
  for (size_t size : {codec::max_bin_bytes, codec::max_bin_bytes + 1}) {
    std::string bytes(size, 'b');
    cases.push_back({"bin " + std::to_string(size), reply_with(1, [&](packer& pk) {
                       pack_string(pk, "x");
                       pk.pack_bin(static_cast<uint32_t>(bytes.size()));
                       pk.pack_bin_body(bytes.data(), static_cast<uint32_t>(bytes.size()));
                     })});
  }
  auto good = encode_ok_reply("\x09");
  cases.push_back({"trailing byte", good + "\xc0"});
  cases.push_back({"truncated", good.substr(0, good.size() - 1)});
  cases.push_back({"truncated after id", encode_offers_reply("\x09", offers).substr(0, 40)});
  cases.push_back({"empty", ""});
  cases.push_back({"reserved byte", std::string("\x81\xa2id\xc1", 5)});
  cases.push_back({"reserved byte after id", std::string("\x82\xa2id\x01\xa1x\xc1", 8)});
  for (const auto& [name, body] : cases) {
    INFO(name);
    CHECK(reply_id_raw(body) == strict_reply_id_raw(body));
  }
  // And the cases do reach both answers.
  CHECK(reply_id_raw(cases[0].second) == "\xa3" "abc");
  CHECK(reply_id_raw(reply_with(1, [](packer& pk) { pack_string(pk, "x"); nest_arrays(pk, 33); })) == nil_id_raw);
  CHECK(reply_id_raw(reply_with(1, [](packer& pk) { pack_string(pk, "x"); nest_arrays(pk, 31); })) == "\x07");
}

namespace {

// A pools reply whose entry `broken` is written by `write_broken` instead.
std::string pools_reply_with(int count, int broken, const std::function<void(packer&)>& write_broken) {
  return body_of([&](msgpack::sbuffer& buffer, packer& pk) {
    pk.pack_map(4);
    pack_string(pk, "v");
    pk.pack_int(1);
    pack_string(pk, "id");
    codec::pack_raw(buffer, "\x01");
    pack_string(pk, "ok");
    pk.pack_true();
    pack_string(pk, "pools");
    pk.pack_array(count);
    for (int i = 0; i < count; ++i) {
      if (i == broken) {
        write_broken(pk);
        continue;
      }
      codec::pack_pool_status(pk, PoolStatus{"p" + std::to_string(i), Resources{{"cpu", 2}}, Resources{{"cpu", 1}}, i, 100});
    }
  });
}

std::string strict_pools_error(const std::string& body) {
  auto strict = codec::guarded([&] {
    auto handle = codec::unpack_body(body, codec::max_reply_bytes);
    return codec::read_list(codec::map_view(handle.get(), "").require("pools"), "pools", codec::read_pool_status);
  });
  REQUIRE_FALSE(strict.ok());
  return "malformed reply: " + strict.error().message;
}

}  // namespace

TEST_CASE("reply decode: list entries read fast yield the strict readers' values and errors") {
  // Values: repeated resource names keep the last one; ints may come as whole floats.
  auto body = pools_reply_with(3, 1, [](packer& pk) {
    pk.pack_map(5);
    pack_string(pk, "last_seen_ms");
    pk.pack_double(12.0);
    pack_string(pk, "id");
    pack_string(pk, "dup");
    pack_string(pk, "resources");
    pk.pack_map(2);
    pack_string(pk, "cpu");
    pk.pack_int(3);
    pack_string(pk, "cpu");
    pk.pack_double(0.5);
    pack_string(pk, "available");
    pk.pack_map(0);
    pack_string(pk, "allocs");
    pk.pack_int(-2);
  });
  auto reply = decode_api_reply(body);
  REQUIRE(reply.ok());
  REQUIRE(reply->pools.size() == 3);
  CHECK(reply->pools[1].id == "dup");
  CHECK(reply->pools[1].resources == Resources{{"cpu", 0.5}});
  CHECK(reply->pools[1].available.empty());
  CHECK(reply->pools[1].allocs == -2);
  CHECK(reply->pools[1].last_seen_ms == 12);
  CHECK(reply->pools[2].available == Resources{{"cpu", 1}});

  // Errors: each names the entry and field, exactly as the strict readers do.
  std::vector<std::function<void(packer&)>> broken{
      [](packer& pk) { pk.pack_int(1); },                                  // not a map
      [](packer& pk) { pk.pack_map(1); pk.pack_int(1); pk.pack_int(1); },  // a key is not a string
      [](packer& pk) { pk.pack_map(0); },                                  // id missing
      [](packer& pk) {
        codec::pack_pool_status(pk, PoolStatus{"x", Resources{}, Resources{}, 0, 0});
      },  // (valid: control)
  };
  auto with_resources = [](std::function<void(packer&)> write_available) {
    return [write_available](packer& pk) {
      pk.pack_map(5);
      pack_string(pk, "id");
      pack_string(pk, "x");
      pack_string(pk, "resources");
      pk.pack_map(0);
      pack_string(pk, "available");
      write_available(pk);
      pack_string(pk, "allocs");
      pk.pack_int(0);
      pack_string(pk, "last_seen_ms");
      pk.pack_int(0);
    };
  };
  broken.push_back(with_resources([](packer& pk) { pk.pack_array(0); }));
  broken.push_back(with_resources([](packer& pk) { pk.pack_map(1); pack_string(pk, "mem"); pk.pack_int(-1); }));
  broken.push_back(with_resources([](packer& pk) { pk.pack_map(1); pack_string(pk, "mem"); pk.pack_double(1e300); }));
  broken.push_back(with_resources([](packer& pk) { pk.pack_map(1); pack_string(pk, "mem"); pk.pack_double(std::nan("")); }));
  broken.push_back(with_resources([](packer& pk) { pk.pack_map(1); pack_string(pk, ""); pk.pack_int(1); }));
  broken.push_back(with_resources([](packer& pk) { pk.pack_map(1); pk.pack_int(5); pk.pack_int(1); }));
  broken.push_back(with_resources([](packer& pk) { pk.pack_map(1); pack_string(pk, "mem"); pack_string(pk, "1"); }));
  broken.push_back(with_resources([](packer& pk) { pk.pack_nil(); }));
  for (size_t i = 0; i < broken.size(); ++i) {
    INFO("case " << i);
    auto bad = pools_reply_with(4, 2, broken[i]);
    auto decoded = decode_api_reply(bad);
    if (i == 3) {
      CHECK(decoded.ok());
      continue;
    }
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().kind == error_kind::internal);
    CHECK(decoded.error().message == strict_pools_error(bad));
    CHECK_THAT(decoded.error().message, Catch::Contains("pools[2]"));
  }
  // Not a list at all.
  auto not_list = body_of([](msgpack::sbuffer&, packer& pk) {
    pk.pack_map(2);
    pack_string(pk, "ok");
    pk.pack_true();
    pack_string(pk, "offers");
    pk.pack_map(0);
  });
  REQUIRE_FALSE(decode_api_reply(not_list).ok());
  CHECK(decode_api_reply(not_list).error().message == "malformed reply: offers: not an array");
}

TEST_CASE("reply decode: offers lists read fast equal the encoder's values") {
  std::vector<OfferInfo> offers;
  for (int i = 0; i < 50; ++i)
    offers.push_back({"p" + std::to_string(i) + "/1", "p" + std::to_string(i),
                      Resources{{"cpu", 0.001 * i}, {"mem", 3 * GiB}, {"gpu", 1}}});
  auto reply = decode_api_reply(encode_offers_reply("\x01", offers));
  REQUIRE(reply.ok());
  CHECK(reply->offers == offers);
}
