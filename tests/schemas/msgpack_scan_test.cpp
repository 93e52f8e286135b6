#include <catch2/catch.hpp>

#include <msgpack.hpp>

#include "schemas/msgpack_scan.hpp"
#include "schemas/worker_messages.hpp"

using namespace poolbus;

namespace {

// A map {"a": [1, {"x": "y"}], key: value, "z": nil} packed by msgpack-c.
template <class T>
std::string map_with(const std::string& key, const T& value) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  pk.pack_map(3);
  pk.pack(std::string("a"));
  pk.pack_array(2);
  pk.pack(1);
  pk.pack_map(1);
  pk.pack(std::string("x"));
  pk.pack(std::string("y"));
  pk.pack(key);
  pk.pack(value);
  pk.pack(std::string("z"));
  pk.pack_nil();
  return std::string(buffer.data(), buffer.size());
}

}  // namespace

TEST_CASE("find_int_field finds an integer of every width after nested values") {
  for (int64_t value : {int64_t{0}, int64_t{5}, int64_t{-3}, int64_t{200}, int64_t{-200}, int64_t{70000},
                        int64_t{1764300000000}, int64_t{-1764300000000}, INT64_MAX, INT64_MIN}) {
    auto bytes = map_with("ts_ms", value);
    auto found = find_int_field(bytes, "ts_ms");
    INFO(value);
    REQUIRE(found);
    CHECK(found->value == value);
    CHECK(read_int_at(bytes, found->offset) == value);
    // The span is exactly the value: re-packing the value alone gives its bytes.
    msgpack::sbuffer alone;
    msgpack::pack(alone, value);
    CHECK(bytes.substr(found->offset, found->length) == std::string(alone.data(), alone.size()));
  }
}

TEST_CASE("find_int_field: missing key, non-integer value, not a map, trailing bytes") {
  CHECK_FALSE(find_int_field(map_with("other", 5), "ts_ms"));
  CHECK_FALSE(find_int_field(map_with("ts_ms", std::string("5")), "ts_ms"));
  CHECK_FALSE(find_int_field(map_with("ts_ms", 1.5), "ts_ms"));
  CHECK_FALSE(find_int_field(map_with("ts_ms", uint64_t{UINT64_MAX}), "ts_ms"));  // beyond int64
  CHECK_FALSE(find_int_field(std::string("\x93\x01\x02\x03", 4), "ts_ms"));       // an array
  CHECK_FALSE(find_int_field("", "ts_ms"));
  auto trailing = map_with("ts_ms", 5) + std::string("\x01", 1);
  CHECK_FALSE(find_int_field(trailing, "ts_ms"));
}

TEST_CASE("find_int_field never reads past the end of a truncated or hostile input") {
  auto bytes = map_with("ts_ms", int64_t{1764300000000});
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) CHECK_FALSE(find_int_field(bytes.substr(0, cut), "ts_ms"));
  // A map32 claiming 2^32-1 pairs in 5 bytes, an array32 of as many elements,
  // a str32 of 4 GiB: all refused without allocating or reading.
  CHECK_FALSE(find_int_field(std::string("\xdf\xff\xff\xff\xff", 5), "ts_ms"));
  CHECK_FALSE(find_int_field(std::string("\x81\xa1z\xdd\xff\xff\xff\xff", 8), "ts_ms"));
  CHECK_FALSE(find_int_field(std::string("\x81\xa1z\xdb\xff\xff\xff\xff", 8), "ts_ms"));
  CHECK_FALSE(find_int_field(std::string("\x81\xa1z\xc1", 4), "ts_ms"));  // 0xc1 is never used
}

TEST_CASE("find_int_field locates ts_ms in real worker messages") {
  offer_announcement a;
  a.pool = "w1";
  a.run = "r";
  a.seq = 4;
  a.resources = Resources{{"cpu", 4}, {"mem", 8 * GiB}};
  a.available = a.resources;
  a.ts_ms = 1764300000123;
  auto body = encode_offer_announcement(a);
  auto found = find_int_field(body, "ts_ms");
  REQUIRE(found);
  CHECK(found->value == a.ts_ms);
  auto hello = encode_worker_hello({"w1", "r", 1764300000456});
  auto in_hello = find_int_field(hello, "ts_ms");
  REQUIRE(in_hello);
  CHECK(in_hello->value == 1764300000456);
}

TEST_CASE("find_array_field spans an array's header and its elements, nested values skipped") {
  std::vector<int> three{1, 2, 3};
  auto bytes = map_with("list", three);
  auto span = find_array_field(bytes, "list");
  REQUIRE(span);
  CHECK(span->count == 3);
  CHECK(static_cast<uint8_t>(bytes[span->header_offset]) == 0x93);
  CHECK(span->elements_offset == span->header_offset + 1);
  CHECK(bytes.substr(span->elements_offset, span->elements_length) == std::string("\x01\x02\x03", 3));
  // The first "a" entry of map_with is an array too, with a nested map.
  auto first = find_array_field(bytes, "a");
  REQUIRE(first);
  CHECK(first->count == 2);
  CHECK(first->elements_length == 1 + 1 + 2 + 2);  // 1, then {"x": "y"}
  // An array16 header (more than 15 elements).
  std::vector<int> many(20, 7);
  auto wide = map_with("list", many);
  auto wide_span = find_array_field(wide, "list");
  REQUIRE(wide_span);
  CHECK(wide_span->count == 20);
  CHECK(wide_span->elements_offset == wide_span->header_offset + 3);
  CHECK(wide_span->elements_length == 20);
}

TEST_CASE("find_array_field: missing key, not an array, not one map, truncated or hostile input") {
  CHECK_FALSE(find_array_field(map_with("other", std::vector<int>{1}), "list"));
  CHECK_FALSE(find_array_field(map_with("list", 5), "list"));
  CHECK_FALSE(find_array_field(std::string("\x93\x01\x02\x03", 4), "list"));
  CHECK_FALSE(find_array_field("", "list"));
  auto bytes = map_with("list", std::vector<int>{1, 2, 3});
  CHECK_FALSE(find_array_field(bytes + std::string("\x01", 1), "list"));
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) CHECK_FALSE(find_array_field(bytes.substr(0, cut), "list"));
  // An array32 claiming 2^32-1 elements in 5 bytes is refused without reading them.
  CHECK_FALSE(find_array_field(std::string("\x81\xa4list\xdd\xff\xff\xff\xff", 10), "list"));
}
