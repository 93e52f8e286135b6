// alloc_record: the state store's BLOB of an alloc's resources, want and
// labels round-trips exactly and refuses every other shape.
#include <catch2/catch.hpp>

#include "schemas/codec.hpp"
#include "store/alloc_record.hpp"

using namespace poolbus;

namespace {

template <class Write>
std::string packed(Write write) {
  return codec::pack_body([&](msgpack::sbuffer&, codec::packer& pk) { write(pk); });
}

std::string message_of(std::string_view bytes) {
  auto decoded = decode_alloc_record(bytes);
  REQUIRE_FALSE(decoded.ok());
  CHECK(decoded.error().kind == error_kind::invalid);
  return decoded.error().message;
}

}  // namespace

TEST_CASE("alloc record: round trip, exact to the unit") {
  Resources resources{{"cpu", 1.5}, {"mem", 2 * GiB}, {"gpu", 0.001}};
  Resources want{{"cpu", 1.5}, {"mem", 0}};
  Labels labels{{"note", "with 'quotes' and ünïcode"}, {"", ""}};
  auto decoded = decode_alloc_record(encode_alloc_record(resources, want, labels));
  REQUIRE(decoded.ok());
  CHECK(decoded->resources == resources);
  CHECK(decoded->resources.units("gpu") == 1);
  CHECK(decoded->want == want);
  CHECK(decoded->want.has("mem"));
  CHECK(decoded->labels == labels);
  auto empty = decode_alloc_record(encode_alloc_record({}, {}, {}));
  REQUIRE(empty.ok());
  CHECK(empty->resources.empty());
  CHECK(empty->labels.empty());
}

// [resources, want, labels] with one entry `key` = what `value` packs in part `bad`.
template <class Value>
std::string record_with(int bad, const char* key, Value value) {
  return packed([&](codec::packer& pk) {
    pk.pack_array(3);
    for (int part = 0; part < 3; ++part) {
      pk.pack_map(part == bad ? 1 : 0);
      if (part != bad) continue;
      codec::pack_string(pk, key);
      value(pk);
    }
  });
}

TEST_CASE("alloc record: anything but [units, units, labels] is refused with the part named") {
  CHECK_THAT(message_of(""), Catch::Contains("body"));
  CHECK_THAT(message_of("\xc1"), Catch::Contains("body"));
  CHECK_THAT(message_of(packed([](auto& pk) {
               pk.pack_array(2);
               pk.pack_map(0);
               pk.pack_map(0);
             })),
             Catch::Contains("array of 3"));
  CHECK_THAT(message_of(record_with(0, "cpu", [](auto& pk) { pk.pack_int64(-1); })),
             Catch::Contains("resources.cpu: negative"));
  CHECK_THAT(message_of(record_with(1, "cpu", [](auto& pk) { codec::pack_float64(pk, 1.5); })),
             Catch::Contains("want.cpu: not an integer"));
  CHECK_THAT(message_of(record_with(2, "k", [](auto& pk) { pk.pack_int64(1); })), Catch::Contains("labels.k"));
  auto good = encode_alloc_record(Resources{{"cpu", 1}}, {}, {});
  CHECK_THAT(message_of(good + "\x90"), Catch::Contains("body"));
}
