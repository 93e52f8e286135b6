// decode_api_reply's fast list readers (the tree one and reply_lists' byte
// reader) and reply_id_raw's tree-less checks must accept, yield and reject
// exactly what the strict codec path does.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "schemas/api_messages.hpp"
#include "schemas/codec.hpp"
#include "schemas/reply_lists.hpp"

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
  cases.push_back({"offers reply", encode_offers_reply("\xa3"
                                                       "abc",
                                                       offers)});
  cases.push_back({"error reply", encode_error_reply("\x05", {error_kind::not_exist, "no"})});
  cases.push_back({"nil id", encode_ok_reply(nil_id_raw)});
  cases.push_back({"not a map", body_of([](msgpack::sbuffer&, packer& pk) {
                     pk.pack_array(1);
                     pk.pack_int(1);
                   })});
  cases.push_back({"no id", body_of([](msgpack::sbuffer&, packer& pk) {
                     pk.pack_map(1);
                     pack_string(pk, "ok");
                     pk.pack_true();
                   })});
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
  cases.push_back({"depth 31 after head", reply_with(1, [](packer& pk) {
                     pack_string(pk, "x");
                     nest_arrays(pk, 31);
                   })});
  cases.push_back({"depth 32 after head", reply_with(1, [](packer& pk) {
                     pack_string(pk, "x");
                     nest_arrays(pk, 32);
                   })});
  cases.push_back({"depth 33 after head", reply_with(1, [](packer& pk) {
                     pack_string(pk, "x");
                     nest_arrays(pk, 33);
                   })});
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
    cases.push_back({"str " + std::to_string(size), reply_with(1, [&](packer& pk) {
                       pack_string(pk, "x");
                       pack_string(pk, text);
                     })});
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
  CHECK(reply_id_raw(cases[0].second) ==
        "\xa3"
        "abc");
  CHECK(reply_id_raw(reply_with(1, [](packer& pk) {
          pack_string(pk, "x");
          nest_arrays(pk, 33);
        })) == nil_id_raw);
  CHECK(reply_id_raw(reply_with(1, [](packer& pk) {
          pack_string(pk, "x");
          nest_arrays(pk, 31);
        })) == "\x07");
}

namespace {

// A pools reply whose entry `broken` is written by `write_broken` instead.
std::string pools_reply_with(int count, int broken, const std::function<void(packer&)>& write_broken) {
  return body_of([&](msgpack::sbuffer&, packer& pk) {
    pk.pack_map(4);
    pack_string(pk, "v");
    pk.pack_int(1);
    pack_string(pk, "id");
    codec::pack_raw(pk, "\x01");
    pack_string(pk, "ok");
    pk.pack_true();
    pack_string(pk, "pools");
    pk.pack_array(count);
    for (int i = 0; i < count; ++i) {
      if (i == broken) {
        write_broken(pk);
        continue;
      }
      codec::pack_pool_status(
          pk, PoolStatus{"p" + std::to_string(i), Resources{{"cpu", 2}}, Resources{{"cpu", 1}}, i, 100});
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
      [](packer& pk) { pk.pack_int(1); },  // not a map
      [](packer& pk) {
        pk.pack_map(1);
        pk.pack_int(1);
        pk.pack_int(1);
      },                                   // a key is not a string
      [](packer& pk) { pk.pack_map(0); },  // id missing
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
  broken.push_back(with_resources([](packer& pk) {
    pk.pack_map(1);
    pack_string(pk, "mem");
    pk.pack_int(-1);
  }));
  broken.push_back(with_resources([](packer& pk) {
    pk.pack_map(1);
    pack_string(pk, "mem");
    pk.pack_double(1e300);
  }));
  broken.push_back(with_resources([](packer& pk) {
    pk.pack_map(1);
    pack_string(pk, "mem");
    pk.pack_double(std::nan(""));
  }));
  broken.push_back(with_resources([](packer& pk) {
    pk.pack_map(1);
    pack_string(pk, "");
    pk.pack_int(1);
  }));
  broken.push_back(with_resources([](packer& pk) {
    pk.pack_map(1);
    pk.pack_int(5);
    pk.pack_int(1);
  }));
  broken.push_back(with_resources([](packer& pk) {
    pk.pack_map(1);
    pack_string(pk, "mem");
    pack_string(pk, "1");
  }));
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

// ------------------------------------------------------------------------
// read_list_reply (reply_lists.hpp): offers and pools replies read from the
// bytes. decode_api_reply and reply_id_raw must answer exactly what the
// strict decode answers, for every body, whichever path reads it.

namespace {

// decode_api_reply as the strict codec path reads a reply: the whole body
// unpacked, then the strict readers for every field.
outcome<api_reply> strict_decode_api_reply(std::string_view body) {
  api_reply reply;
  std::optional<pool_error> remote_error;
  auto parsed = codec::guarded([&] {
    auto handle = codec::unpack_body(body, codec::max_reply_bytes);
    codec::map_view view(handle.get(), "");
    codec::check_version(view);
    if (const auto* id = view.find("id")) reply.id_raw = codec::repack(*id);
    // (find skips a nil id: re-packed it is nil_id_raw all the same)
    if (!view.require_bool("ok")) {
      remote_error = view.read("error", codec::read_pool_error);
      return true;
    }
    auto list_of = [](auto read_one) {
      return
          [read_one](const msgpack::object& o, const std::string& path) { return codec::read_list(o, path, read_one); };
    };
    if (auto pools = view.read_optional("pools", list_of(codec::read_pool_status))) reply.pools = std::move(*pools);
    if (auto offers = view.read_optional("offers", list_of(codec::read_offer_info))) reply.offers = std::move(*offers);
    if (auto offer = view.read_optional("offer", codec::read_offer_info)) reply.offer = std::move(*offer);
    if (auto alloc = view.read_optional("alloc", codec::read_alloc_inspect)) reply.alloc = std::move(*alloc);
    if (auto allocs = view.read_optional("allocs", list_of(codec::read_alloc_inspect)))
      reply.allocs = std::move(*allocs);
    reply.interval_ms = view.optional_int("interval_ms").value_or(0);
    codec::read_exec_answer_fields(view, reply.exec);
    return true;
  });
  if (!parsed) return make_pool_error(error_kind::internal, "malformed reply: " + parsed.error().message);
  if (remote_error) return *remote_error;
  return reply;
}

bool same_pool(const PoolStatus& a, const PoolStatus& b) {
  return a.id == b.id && a.resources.amounts() == b.resources.amounts() &&
         a.available.amounts() == b.available.amounts() && a.allocs == b.allocs && a.last_seen_ms == b.last_seen_ms &&
         a.labels == b.labels && a.draining == b.draining;
}

bool same_offer(const OfferInfo& a, const OfferInfo& b) {
  return a.id == b.id && a.pool == b.pool && a.available.amounts() == b.available.amounts();
}

// Same success and values (amounts compared exactly, key sets included), or
// the same error kind and message.
bool same_outcome(const outcome<api_reply>& a, const outcome<api_reply>& b) {
  if (a.ok() != b.ok()) return false;
  if (!a.ok()) return a.error().kind == b.error().kind && a.error().message == b.error().message;
  if (a->id_raw != b->id_raw || a->pools.size() != b->pools.size() || a->offers.size() != b->offers.size())
    return false;
  for (size_t i = 0; i < a->pools.size(); ++i)
    if (!same_pool(a->pools[i], b->pools[i])) return false;
  for (size_t i = 0; i < a->offers.size(); ++i)
    if (!same_offer(a->offers[i], b->offers[i])) return false;
  return a->offer == b->offer && a->alloc == b->alloc && a->allocs == b->allocs && a->interval_ms == b->interval_ms &&
         a->exec.kind == b->exec.kind;
}

std::string describe(const outcome<api_reply>& r) {
  if (!r.ok()) return "error: " + r.error().to_string();
  return "ok: " + std::to_string(r->pools.size()) + " pools, " + std::to_string(r->offers.size()) + " offers";
}

// Both public entry points against their strict references, for one body.
void check_like_strict(const std::string& body) {
  auto fast = decode_api_reply(body);
  auto strict = strict_decode_api_reply(body);
  INFO("decode_api_reply " << describe(fast) << " / strict " << describe(strict));
  CHECK(same_outcome(fast, strict));
  CHECK(reply_id_raw(body) == strict_reply_id_raw(body));
  // What the byte reader reads, the strict decode reads the same.
  if (auto listed = read_list_reply(body)) {
    CHECK(same_outcome(outcome<api_reply>(*listed), strict));
    CHECK(list_reply_id(body) == listed->id_raw);
  }
  if (auto id = list_reply_id(body)) CHECK(*id == strict_reply_id_raw(body));
}

// Bodies built field by field, so a test can swap any one value.
using writer = std::function<void(packer&)>;
using fields = std::vector<std::pair<std::string, writer>>;

writer raw(std::string bytes) {
  return [bytes](packer& pk) { pk.pack_bin_body(bytes.data(), static_cast<uint32_t>(bytes.size())); };
}
writer str(std::string text) {
  return [text](packer& pk) { pack_string(pk, text); };
}
writer int_of(int64_t v) {
  return [v](packer& pk) { pk.pack_int64(v); };
}
writer f64(double v) {
  return [v](packer& pk) { codec::pack_float64(pk, v); };
}
writer map_of(fields entries) {
  return [entries](packer& pk) {
    pk.pack_map(static_cast<uint32_t>(entries.size()));
    for (const auto& [key, write] : entries) {
      pack_string(pk, key);
      write(pk);
    }
  };
}
writer array_of(std::vector<writer> items) {
  return [items](packer& pk) {
    pk.pack_array(static_cast<uint32_t>(items.size()));
    for (const auto& write : items) write(pk);
  };
}
std::string body_from(const writer& write) {
  return body_of([&](msgpack::sbuffer&, packer& pk) { write(pk); });
}

fields resource_fields(int i) { return {{"cpu", f64(8 - 0.5 * i)}, {"disk", f64(8 * GiB)}, {"mem", f64(8 * GiB - i)}}; }
fields pool_fields(int i) {
  return {{"id", str("p" + std::to_string(i))},
          {"resources", map_of(resource_fields(0))},
          {"available", map_of(resource_fields(i))},
          {"allocs", int_of(i)},
          {"labels", map_of({{"zone", str("z" + std::to_string(i))}})},
          {"draining", raw(i % 2 ? "\xc3" : "\xc2")},
          {"last_seen_ms", int_of(1790000000000 + i)}};
}
fields offer_fields(int i) {
  return {{"id", str("p" + std::to_string(i) + "/1")},
          {"pool", str("p" + std::to_string(i))},
          {"available", map_of(resource_fields(i))}};
}
fields reply_fields(const std::string& key, std::vector<writer> entries) {
  return {{"v", int_of(1)}, {"id", raw("\xcd\x12\x34")}, {"ok", raw("\xc3")}, {key, array_of(std::move(entries))}};
}

// A reply listing 3 entries whose entry 1 has `entry` as its fields.
std::string list_reply(const std::string& key, const fields& entry) {
  auto entry_fields = [&](int i) { return key == "pools" ? pool_fields(i) : offer_fields(i); };
  return body_from(map_of(reply_fields(key, {map_of(entry_fields(0)), map_of(entry), map_of(entry_fields(2))})));
}

// Values of every type but the strict readers' ones, and odd forms of theirs.
std::vector<std::pair<std::string, writer>> odd_values() {
  std::string bin("\xc4\x01x", 3);
  return {{"nil", raw("\xc0")},
          {"true", raw("\xc3")},
          {"false", raw("\xc2")},
          {"int 1", int_of(1)},
          {"int -1", int_of(-1)},
          {"uint64 max", raw("\xcf\xff\xff\xff\xff\xff\xff\xff\xff")},
          {"uint32 7", raw("\xce\x00\x00\x00\x07")},
          {"int64 -7", raw("\xd3\xff\xff\xff\xff\xff\xff\xff\xf9")},
          {"float64 2.5", f64(2.5)},
          {"float64 3.0", f64(3.0)},
          {"float32 2.5", raw("\xca\x40\x20\x00\x00")},
          {"str", str("x")},
          {"empty str", str("")},
          {"str8", raw("\xd9\x01y")},
          {"bin", raw(bin)},
          {"ext", raw(std::string("\xd4\x01\x00", 3))},
          {"array", array_of({})},
          {"map", map_of({})},
          {"map with int key", raw(std::string("\x81\x01\x01", 3))}};
}

// Resource amounts as the strict reader sees them: range, finiteness, rounding.
std::vector<std::pair<std::string, writer>> odd_amounts() {
  return {{"NaN", f64(std::nan(""))},
          {"inf", f64(std::numeric_limits<double>::infinity())},
          {"-inf", f64(-std::numeric_limits<double>::infinity())},
          {"-1", f64(-1)},
          {"-tiny", f64(-1e-300)},
          {"-0", f64(-0.0)},
          {"0", f64(0)},
          {"0.0005 (rounds up)", f64(0.0005)},
          {"0.0004999", f64(0.0004999)},
          {"0.0015", f64(0.0015)},
          {"1e-4", f64(1e-4)},
          {"max_value", f64(Resources::max_value)},
          {"just over max_value", f64(std::nextafter(Resources::max_value, 1e300))},
          {"1e300", f64(1e300)},
          {"int 3", int_of(3)},
          {"int -3", int_of(-3)},
          {"float32 0.1", raw("\xca\x3d\xcc\xcc\xcd")},
          {"float32 NaN", raw("\xca\x7f\xc0\x00\x00")},
          {"str", str("1")},
          {"nil", raw("\xc0")}};
}

}  // namespace

TEST_CASE("reply lists: encoder replies are read from the bytes, as the strict decode reads them") {
  std::vector<PoolStatus> pools;
  std::vector<OfferInfo> offers;
  for (int i = 0; i < 4; ++i) {
    pools.push_back({"s0-" + std::to_string(i), Resources{{"cpu", 8}, {"mem", 8 * GiB}, {"disk", 1e12}},
                     Resources{{"cpu", 0.001 * i}, {"mem", 3 * GiB + 0.0004}, {"gpu", 0.0005}}, i - 1,
                     1790000000000 + i});
    offers.push_back({pools.back().id + "/1", pools.back().id, pools.back().available});
  }
  for (const std::string& id : {std::string("\xcd\x12\x34"), nil_id_raw,
                                std::string("\xa3"
                                            "abc")}) {
    for (const auto& body : {encode_pools_reply(id, pools), encode_offers_reply(id, offers), encode_pools_reply(id, {}),
                             encode_offers_reply(id, {})}) {
      REQUIRE(read_list_reply(body).has_value());  // the fast path does read them
      CHECK(list_reply_id(body) == id);
      check_like_strict(body);
    }
  }
  auto reply = read_list_reply(encode_pools_reply("\x01", pools));
  REQUIRE(reply);
  REQUIRE(reply->pools.size() == 4);
  CHECK(same_pool(reply->pools[3], pools[3]));
  CHECK(reply->pools[3].available.units("gpu") == 1);  // 0.0005 rounds as Resources::set rounds
}

TEST_CASE("reply lists: every truncation and a trailing byte answer as the strict decode does") {
  std::vector<PoolStatus> pools;
  std::vector<OfferInfo> offers;
  for (int i = 0; i < 3; ++i) {
    pools.push_back({"s0-" + std::to_string(i), Resources{{"cpu", 8}, {"mem", 8 * GiB}},
                     Resources{{"cpu", 7.5}, {"mem", 8 * GiB - i}}, i, 1790000000000 + i});
    offers.push_back({pools.back().id + "/1", pools.back().id, pools.back().available});
  }
  for (const auto& body : {encode_pools_reply("\xcd\x12\x34", pools), encode_offers_reply("\xcd\x12\x34", offers)}) {
    for (size_t size = 0; size < body.size(); ++size) {
      INFO("truncated to " << size << " of " << body.size());
      auto cut = body.substr(0, size);
      CHECK_FALSE(read_list_reply(cut).has_value());
      check_like_strict(cut);
    }
    check_like_strict(body + '\xc0');
    CHECK_FALSE(read_list_reply(body + '\xc0').has_value());
  }
}

TEST_CASE("reply lists: a wrong type in any field answers as the strict decode does") {
  for (const std::string key : {"pools", "offers"}) {
    const fields good = key == "pools" ? pool_fields(1) : offer_fields(1);
    REQUIRE(read_list_reply(list_reply(key, good)).has_value());
    for (size_t f = 0; f < good.size(); ++f) {
      for (const auto& [name, value] : odd_values()) {
        INFO(key << " entry field " << good[f].first << " = " << name);
        auto entry = good;
        entry[f].second = value;
        check_like_strict(list_reply(key, entry));
      }
    }
    // Each resource amount of "available", then of "resources" for pools.
    for (const std::string resources_key : {"available", "resources"}) {
      if (key == "offers" && resources_key == "resources") continue;
      for (const auto& [name, amount] : odd_amounts()) {
        INFO(key << " " << resources_key << ".cpu = " << name);
        auto entry = good;
        for (auto& [k, write] : entry)
          if (k == resources_key) write = map_of({{"cpu", amount}, {"mem", f64(1)}});
        check_like_strict(list_reply(key, entry));
      }
    }
    // The whole reply's fields.
    auto top = reply_fields(key, {map_of(good)});
    for (size_t f = 0; f < top.size(); ++f) {
      for (const auto& [name, value] : odd_values()) {
        INFO(key << " reply field " << top[f].first << " = " << name);
        auto changed = top;
        changed[f].second = value;
        check_like_strict(body_from(map_of(changed)));
      }
    }
  }
}

TEST_CASE("reply lists: amounts convert exactly as the strict reader converts them") {
  for (const auto& [name, amount] : odd_amounts()) {
    INFO(name);
    auto entry = offer_fields(1);
    entry[2].second = map_of({{"cpu", amount}});
    auto body = list_reply("offers", entry);
    check_like_strict(body);
    auto strict = strict_decode_api_reply(body);
    auto listed = read_list_reply(body);
    // Only odd forms (ints, float32) may leave the amounts to the strict path.
    if (strict.ok() && body.find('\xca') == std::string::npos && name.rfind("int", 0) != 0) CHECK(listed.has_value());
  }
  // Rounding to thousandths, through both paths.
  auto entry = offer_fields(1);
  entry[2].second = map_of({{"cpu", f64(0.0005)}, {"mem", f64(0.0004999)}, {"disk", f64(2.0015)}});
  auto listed = read_list_reply(list_reply("offers", entry));
  REQUIRE(listed);
  CHECK(listed->offers[1].available.units("cpu") == 1);
  CHECK(listed->offers[1].available.units("mem") == 0);
  CHECK(listed->offers[1].available.units("disk") ==
        strict_decode_api_reply(list_reply("offers", entry))->offers[1].available.units("disk"));
}

TEST_CASE("reply lists: duplicate, unknown, missing and non-string keys answer as the strict decode does") {
  for (const std::string key : {"pools", "offers"}) {
    const fields good = key == "pools" ? pool_fields(1) : offer_fields(1);
    std::vector<std::pair<std::string, fields>> entries;
    for (size_t f = 0; f < good.size(); ++f) {
      auto repeated = good;
      repeated.push_back({good[f].first, good[(f + 1) % good.size()].second});  // a repeat, of another type
      entries.push_back({"repeated " + good[f].first, repeated});
      auto same_again = good;
      same_again.push_back(good[f]);
      entries.push_back({"repeated same " + good[f].first, same_again});
      auto missing = good;
      missing.erase(missing.begin() + static_cast<long>(f));
      entries.push_back({"missing " + good[f].first, missing});
      auto nil_valued = good;
      nil_valued[f].second = raw("\xc0");
      entries.push_back({"nil " + good[f].first, nil_valued});
    }
    auto unknown = good;
    unknown.push_back({"zone", str("us-west")});
    entries.push_back({"unknown key", unknown});
    auto unknown_first = good;
    unknown_first.insert(unknown_first.begin(), {"zone", raw("\xc0")});
    entries.push_back({"unknown nil key first", unknown_first});
    auto long_key = good;
    long_key.push_back({std::string(codec::max_string_bytes + 1, 'k'), int_of(1)});
    entries.push_back({"over-long key", long_key});
    auto repeated_resource = good;
    for (auto& [k, write] : repeated_resource)
      if (k == "available") write = map_of({{"cpu", f64(2)}, {"mem", f64(1)}, {"cpu", f64(0.5)}});
    entries.push_back({"repeated resource name", repeated_resource});
    auto empty_resource = good;
    for (auto& [k, write] : empty_resource)
      if (k == "available") write = map_of({{"", f64(2)}});
    entries.push_back({"empty resource name", empty_resource});
    for (const auto& [name, entry] : entries) {
      INFO(key << ": " << name);
      check_like_strict(list_reply(key, entry));
    }
    // The repeated resource name keeps its last value, through the fast path.
    auto listed = read_list_reply(list_reply(key, repeated_resource));
    REQUIRE(listed);
    CHECK((key == "pools" ? listed->pools[1].available : listed->offers[1].available).units("cpu") == 500);

    // Reply-level keys: repeated, unknown, missing, non-string, list twice.
    auto top = reply_fields(key, {map_of(good)});
    std::vector<std::pair<std::string, std::string>> bodies;
    for (size_t f = 0; f < top.size(); ++f) {
      auto repeated = top;
      repeated.push_back(top[f]);
      bodies.push_back({"repeated " + top[f].first, body_from(map_of(repeated))});
      auto missing = top;
      missing.erase(missing.begin() + static_cast<long>(f));
      bodies.push_back({"missing " + top[f].first, body_from(map_of(missing))});
    }
    auto unknown_top = top;
    unknown_top.push_back({"extra", int_of(1)});
    bodies.push_back({"unknown reply key", body_from(map_of(unknown_top))});
    auto both = top;
    both.push_back({key == "pools" ? "offers" : "pools", array_of({})});
    bodies.push_back({"both lists", body_from(map_of(both))});
    auto with_offer = top;
    with_offer.push_back({"offer", map_of(offer_fields(1))});
    bodies.push_back({"and an offer", body_from(map_of(with_offer))});
    auto error_too = top;
    error_too[2].second = raw("\xc2");
    error_too.push_back({"error", map_of({{"kind", str("not_exist")}, {"message", str("gone")}})});
    bodies.push_back({"ok false with an error", body_from(map_of(error_too))});
    bodies.push_back({"int key", body_from([&](packer& pk) {
                        pk.pack_map(static_cast<uint32_t>(top.size() + 1));
                        for (const auto& [k, write] : top) {
                          pack_string(pk, k);
                          write(pk);
                        }
                        pk.pack_int(1);
                        pk.pack_int(1);
                      })});
    bodies.push_back({"map16 everywhere", body_from([&](packer& pk) {
                        // map16/array16/str8 headers for small counts: not what the encoder
                        // writes, but the same values.
                        pk.pack_bin_body("\xde\x00\x04", 3);
                        for (const auto& [k, write] : top) {
                          if (k == key) {
                            pk.pack_bin_body("\xd9", 1);
                            char size = static_cast<char>(k.size());
                            pk.pack_bin_body(&size, 1);
                            pk.pack_bin_body(k.data(), static_cast<uint32_t>(k.size()));
                            pk.pack_bin_body("\xdc\x00\x01\xde\x00", 5);
                            char pairs = static_cast<char>(good.size());
                            pk.pack_bin_body(&pairs, 1);
                            for (const auto& [gk, gwrite] : good) {
                              pack_string(pk, gk);
                              gwrite(pk);
                            }
                            continue;
                          }
                          pack_string(pk, k);
                          write(pk);
                        }
                      })});
    for (const auto& [name, body] : bodies) {
      INFO(key << ": " << name);
      check_like_strict(body);
    }
    CHECK(read_list_reply(bodies.back().second).has_value());  // long headers are read too
  }
}

TEST_CASE("reply lists: a 10,001-entry list is accepted, as replies allow 2^20 elements") {
  std::vector<PoolStatus> pools;
  std::vector<OfferInfo> offers;
  for (int i = 0; i < 10001; ++i) {
    pools.push_back({"s" + std::to_string(i), Resources{{"cpu", 8}}, Resources{{"cpu", 0.001 * (i % 8000)}}, i % 5,
                     1790000000000 + i});
    offers.push_back({pools.back().id + "/1", pools.back().id, pools.back().available});
  }
  for (const auto& body : {encode_pools_reply("\x07", pools), encode_offers_reply("\x07", offers)}) {
    auto listed = read_list_reply(body);
    REQUIRE(listed.has_value());
    CHECK(listed->pools.size() + listed->offers.size() == 10001);
    check_like_strict(body);
    CHECK(reply_id_raw(body) == "\x07");
  }
}

TEST_CASE("reply lists: random corruptions of real replies answer as the strict decode does") {
  std::vector<PoolStatus> pools;
  std::vector<OfferInfo> offers;
  for (int i = 0; i < 3; ++i) {
    pools.push_back({"p" + std::to_string(i), Resources{{"cpu", 4}, {"mem", GiB}}, Resources{{"cpu", 1.5}}, i, 7});
    offers.push_back({"p" + std::to_string(i) + "/1", "p" + std::to_string(i), Resources{{"cpu", 1.5}, {"mem", 2}}});
  }
  const std::vector<std::string> seeds{encode_pools_reply("\x2a", pools), encode_offers_reply("\xa2id", offers)};
  std::mt19937 random(20261128);
  int read_fast = 0;
  for (int round = 0; round < 6000; ++round) {
    std::string body = seeds[round % seeds.size()];
    int edits = 1 + static_cast<int>(random() % 3);
    for (int e = 0; e < edits; ++e) {
      size_t at = random() % body.size();
      switch (random() % 4) {
        case 0: body[at] = static_cast<char>(random()); break;                          // any byte
        case 1: body[at] = static_cast<char>(body[at] ^ (1 << (random() % 8))); break;  // one bit
        case 2: body.erase(at, 1 + random() % 4); break;
        default: body.insert(at, 1, static_cast<char>(random())); break;
      }
      if (body.empty()) body = "\x80";
    }
    INFO("round " << round);
    check_like_strict(body);
    if (read_list_reply(body)) ++read_fast;
  }
  CHECK(read_fast > 0);  // some corruptions (a changed value) still read fast
}
