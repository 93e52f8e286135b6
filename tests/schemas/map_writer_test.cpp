// map_fields (schemas/map_writer.hpp): a map's header counts exactly the
// fields its list writes, whichever optional ones are present, and the
// encoders built on it write the bytes a hand-packed message has.
#include <catch2/catch.hpp>

#include <msgpack.hpp>

#include <string>
#include <vector>

#include "schemas/api_messages.hpp"
#include "schemas/map_writer.hpp"
#include "schemas/worker_messages.hpp"

using namespace poolbus;
using codec::packer;

namespace {

// The keys of the one map that makes up all of `body`, in order; unpack_body
// refuses a count that disagrees with the fields (truncated or trailing bytes).
std::vector<std::string> keys_of(const std::string& body) {
  auto handle = codec::unpack_body(body);
  REQUIRE(handle->type == msgpack::type::MAP);
  std::vector<std::string> keys;
  for (uint32_t i = 0; i < handle->via.map.size; ++i) keys.push_back(handle->via.map.ptr[i].key.as<std::string>());
  return keys;
}

const std::vector<std::string> optional_keys{"a", "b", "c", "d", "e"};

// "first" and "last" always; optional_keys[i] when bit i of `present` is set.
std::string body_with(unsigned present) {
  return codec::map_body([&](auto& out) {
    out.text("first", "x");
    for (size_t i = 0; i < optional_keys.size(); ++i)
      if (present & (1u << i)) out.int64(optional_keys[i], static_cast<int64_t>(i));
    out.field("last", [](packer& pk) { pk.pack_array(0); });
  });
}

// A message packed by hand with msgpack-c's own packer.
template <class Write>
std::string hand_packed(Write write) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  write(pk);
  return std::string(buffer.data(), buffer.size());
}

}  // namespace

TEST_CASE("map_writer: the header counts the fields listed, for none, some and all optional ones") {
  CHECK(static_cast<uint8_t>(body_with(0)[0]) == 0x82);
  CHECK(static_cast<uint8_t>(body_with(0b00101)[0]) == 0x84);
  CHECK(static_cast<uint8_t>(body_with(0b11111)[0]) == 0x87);
  for (unsigned present = 0; present < 32; ++present) {
    INFO("present " << present);
    std::vector<std::string> expected{"first"};
    for (size_t i = 0; i < optional_keys.size(); ++i)
      if (present & (1u << i)) expected.push_back(optional_keys[i]);
    expected.push_back("last");
    CHECK(keys_of(body_with(present)) == expected);
  }
}

TEST_CASE("map_writer: an empty list is an empty map; past 15 fields the header is a map16") {
  CHECK(codec::map_body([](auto&) {}) == std::string("\x80", 1));
  std::string wide = codec::map_body([](auto& out) {
    for (int i = 0; i < 16; ++i) out.int64("k" + std::to_string(i), i);
  });
  CHECK(wide.substr(0, 3) == std::string("\xde\x00\x10", 3));
  CHECK(keys_of(wide).size() == 16);
}

TEST_CASE("map_writer: encode_api_request writes the hand-packed bytes (allocate, owner without labels)") {
  api_request request;
  request.op = api_op::allocate;
  request.id_raw = "\x05";
  request.place.min = Resources{{"cpu", 2.5}};
  request.meta.owner = "me";
  request.place.width = 3;
  std::string expected = hand_packed([](auto& pk) {
    pk.pack_map(6);
    pk.pack(std::string("v"));
    pk.pack(1);
    pk.pack(std::string("id"));
    pk.pack(5);
    pk.pack(std::string("op"));
    pk.pack(std::string("allocate"));
    pk.pack(std::string("min"));
    pk.pack_map(1);
    pk.pack(std::string("cpu"));
    pk.pack_double(2.5);
    pk.pack(std::string("width"));
    pk.pack(3);
    pk.pack(std::string("owner"));
    pk.pack(std::string("me"));
  });
  CHECK(encode_api_request(request) == expected);
}

TEST_CASE("map_writer: encode_worker_request writes the hand-packed bytes (exec_logs)") {
  worker_request request;
  request.rid = 9;
  request.op = worker_op::exec_logs;
  request.alloc_id = "a1";
  request.exec.op = exec_op::logs;
  request.exec.exec = "e1";
  request.exec.stream = "stderr";
  request.exec.offset = 10;
  request.exec.max_bytes = 4096;
  std::string expected = hand_packed([](auto& pk) {
    pk.pack_map(8);
    pk.pack(std::string("v"));
    pk.pack(1);
    pk.pack(std::string("rid"));
    pk.pack(9);
    pk.pack(std::string("op"));
    pk.pack(std::string("exec_logs"));
    pk.pack(std::string("alloc"));
    pk.pack(std::string("a1"));
    pk.pack(std::string("exec"));
    pk.pack(std::string("e1"));
    pk.pack(std::string("stream"));
    pk.pack(std::string("stderr"));
    pk.pack(std::string("offset"));
    pk.pack(10);
    pk.pack(std::string("max_bytes"));
    pk.pack(4096);
  });
  CHECK(encode_worker_request(request) == expected);
}

TEST_CASE("map_writer: encode_worker_reply writes the hand-packed bytes (a chunk, an error)") {
  worker_reply chunk;
  chunk.rid = 7;
  chunk.interval_ms = 60000;
  chunk.exec = exec_answer::chunk("xy", 2, true);
  std::string expected_chunk = hand_packed([](auto& pk) {
    pk.pack_map(8);
    pk.pack(std::string("v"));
    pk.pack(1);
    pk.pack(std::string("type"));
    pk.pack(std::string("reply"));
    pk.pack(std::string("rid"));
    pk.pack(7);
    pk.pack(std::string("ok"));
    pk.pack_true();
    pk.pack(std::string("interval_ms"));
    pk.pack(60000);
    pk.pack(std::string("data"));
    pk.pack_bin(2);
    pk.pack_bin_body("xy", 2);
    pk.pack(std::string("offset"));
    pk.pack(2);
    pk.pack(std::string("eof"));
    pk.pack_true();
  });
  CHECK(encode_worker_reply(chunk) == expected_chunk);

  worker_reply failed;
  failed.rid = 7;
  failed.ok = false;
  failed.error = make_pool_error(error_kind::invalid, "bad");
  failed.interval_ms = 60000;  // results of an error reply are not written
  std::string expected_error = hand_packed([](auto& pk) {
    pk.pack_map(5);
    pk.pack(std::string("v"));
    pk.pack(1);
    pk.pack(std::string("type"));
    pk.pack(std::string("reply"));
    pk.pack(std::string("rid"));
    pk.pack(7);
    pk.pack(std::string("ok"));
    pk.pack_false();
    pk.pack(std::string("error"));
    pk.pack_map(2);
    pk.pack(std::string("kind"));
    pk.pack(std::string("invalid"));
    pk.pack(std::string("message"));
    pk.pack(std::string("bad"));
  });
  CHECK(encode_worker_reply(failed) == expected_error);
}
