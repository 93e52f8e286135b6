#include <catch2/catch.hpp>

#include "schemas/codec.hpp"
#include "schemas/worker_messages.hpp"

using namespace poolbus;
using codec::pack_string;
using codec::packer;

namespace {

AllocInspect sample_inspect(const std::string& local) {
  AllocInspect a;
  a.id = "w1/" + local;
  a.pool = "w1";
  a.taskdb_alloc_id = taskdb_alloc_id(a.id);
  a.resources = {{"cpu", 1}};
  a.meta.want = a.resources;
  a.created_ms = 100;
  a.expires_ms = 120100;
  return a;
}

worker_request round_trip(const worker_request& request) {
  uint64_t rid = 0;
  auto decoded = decode_worker_request(encode_worker_request(request), &rid);
  REQUIRE(decoded.ok());
  CHECK(decoded->rid == request.rid);
  CHECK(rid == request.rid);
  CHECK(decoded->op == request.op);
  return *decoded;
}

worker_reply reply_round_trip(const worker_reply& reply) {
  auto decoded = decode_worker_message(encode_worker_reply(reply));
  REQUIRE(decoded.ok());
  REQUIRE(std::holds_alternative<worker_reply>(*decoded));
  auto out = std::get<worker_reply>(*decoded);
  CHECK(out.rid == reply.rid);
  CHECK(out.ok == reply.ok);
  return out;
}

template <class Write>
std::string map_body(uint32_t entries, Write write) {
  return codec::pack_body([&](msgpack::sbuffer&, packer& pk) {
    pk.pack_map(entries);
    write(pk);
  });
}

}  // namespace

TEST_CASE("worker: every request op round-trips with its rid") {
  worker_request accept{1, worker_op::accept, "1", "", AllocMeta{{{"cpu", 2}}, "me", {{"a", "b"}}}, 0};
  auto accepted = round_trip(accept);
  CHECK(accepted.offer_id == "1");
  CHECK(accepted.meta == accept.meta);

  worker_request keepalive{2, worker_op::keepalive, "", "a7", {}, 90000};
  auto kept = round_trip(keepalive);
  CHECK(kept.alloc_id == "a7");
  CHECK(kept.interval_ms == 90000);

  for (worker_op op : {worker_op::free, worker_op::inspect}) {
    worker_request r{3, op, "", "a9", {}, 0};
    CHECK(round_trip(r).alloc_id == "a9");
  }
  for (worker_op op : {worker_op::allocs, worker_op::offers}) round_trip(worker_request{~0ull >> 1, op, "", "", {}, 0});
}

TEST_CASE("worker: a pace request carries the heartbeat the broker asks, within an hour") {
  worker_request pace;
  pace.op = worker_op::pace;
  pace.heartbeat_ms = 16000;
  CHECK(round_trip(pace).heartbeat_ms == 16000);
  pace.heartbeat_ms = 0;  // no ask
  CHECK(round_trip(pace).heartbeat_ms == 0);
  for (int64_t bad : {int64_t{-1}, int64_t{3600 * 1000 + 1}}) {
    pace.heartbeat_ms = bad;
    uint64_t rid = 7;
    auto decoded = decode_worker_request(encode_worker_request(pace), &rid);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().kind == error_kind::invalid);
    CHECK(rid == 0);
  }
}

TEST_CASE("worker: op names and topics") {
  CHECK(to_string(worker_op::keepalive) == "keepalive");
  CHECK(worker_op_from_string("offers") == worker_op::offers);
  CHECK_FALSE(worker_op_from_string("ping").has_value());
  CHECK(to_string(alloc_event_kind::collected) == "collected");
  CHECK(alloc_event_kind_from_string("expired") == alloc_event_kind::expired);
  CHECK(to_string(pool_event_kind::stopped) == "stopped");
  CHECK(pool_event_kind_from_string("left") == pool_event_kind::left);
  CHECK_FALSE(pool_event_kind_from_string("gone").has_value());
  CHECK(offers_topic("w1") == "offers.w1");
  CHECK(allocs_topic("w1") == "allocs.w1");
  CHECK(pools_topic("w1") == "pools.w1");
}

TEST_CASE("worker: malformed requests are invalid, keeping a readable rid") {
  uint64_t rid = 99;
  auto not_msgpack = decode_worker_request(std::string("\xc1", 1), &rid);
  REQUIRE_FALSE(not_msgpack.ok());
  CHECK(rid == 0);

  auto bad_alloc = decode_worker_request(map_body(3,
                                                  [](packer& pk) {
                                                    pack_string(pk, "rid");
                                                    pk.pack_int(12);
                                                    pack_string(pk, "op");
                                                    pack_string(pk, "free");
                                                    pack_string(pk, "alloc");
                                                    pack_string(pk, "w1/a1");
                                                  }),
                                         &rid);
  REQUIRE_FALSE(bad_alloc.ok());
  CHECK(bad_alloc.error().kind == error_kind::invalid);
  CHECK(bad_alloc.error().message == "alloc: a local id may not contain '/'");
  CHECK(rid == 12);

  auto expect_invalid = [](const std::string& body, const std::string& message) {
    auto decoded = decode_worker_request(body, nullptr);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().kind == error_kind::invalid);
    CHECK(decoded.error().message == message);
  };
  expect_invalid(map_body(1,
                          [](packer& pk) {
                            pack_string(pk, "op");
                            pack_string(pk, "free");
                          }),
                 "rid: missing");
  expect_invalid(map_body(2,
                          [](packer& pk) {
                            pack_string(pk, "rid");
                            pk.pack_int(-1);
                            pack_string(pk, "op");
                            pack_string(pk, "free");
                          }),
                 "rid: negative");
  expect_invalid(map_body(2,
                          [](packer& pk) {
                            pack_string(pk, "rid");
                            pk.pack_int(1);
                            pack_string(pk, "op");
                            pack_string(pk, "explode");
                          }),
                 "op: unknown op \"explode\"");
  expect_invalid(map_body(3,
                          [](packer& pk) {
                            pack_string(pk, "v");
                            pk.pack_int(2);
                            pack_string(pk, "rid");
                            pk.pack_int(1);
                            pack_string(pk, "op");
                            pack_string(pk, "offers");
                          }),
                 "v: unsupported v 2 (only 1 is spoken)");
  expect_invalid(map_body(4,
                          [](packer& pk) {
                            pack_string(pk, "rid");
                            pk.pack_int(1);
                            pack_string(pk, "op");
                            pack_string(pk, "keepalive");
                            pack_string(pk, "alloc");
                            pack_string(pk, "a1");
                            pack_string(pk, "interval_ms");
                            pk.pack_int(0);
                          }),
                 "interval_ms: must be > 0");
  expect_invalid(map_body(2,
                          [](packer& pk) {
                            pack_string(pk, "rid");
                            pk.pack_int(1);
                            pack_string(pk, "op");
                            pack_string(pk, "accept");
                          }),
                 "offer: missing");
  expect_invalid(std::string("\xdd\xff\xff\xff\xff", 5), "body: over a size limit (array size overflow)");
}

TEST_CASE("worker: replies round-trip, ok and failed") {
  worker_reply with_alloc;
  with_alloc.rid = 5;
  with_alloc.alloc = sample_inspect("a1");
  CHECK(reply_round_trip(with_alloc).alloc == with_alloc.alloc);

  worker_reply lists;
  lists.rid = 6;
  lists.allocs = {sample_inspect("a1"), sample_inspect("a2")};
  lists.offers = {OfferInfo{"1", "w1", {{"cpu", 3}}}};
  auto lists_back = reply_round_trip(lists);
  CHECK(lists_back.allocs == lists.allocs);
  CHECK(lists_back.offers == lists.offers);

  worker_reply keepalive;
  keepalive.rid = 7;
  keepalive.interval_ms = 300000;
  CHECK(reply_round_trip(keepalive).interval_ms == 300000);

  worker_reply empty;
  empty.rid = 8;
  auto empty_back = reply_round_trip(empty);
  CHECK(empty_back.allocs.empty());
  CHECK(empty_back.alloc.id.empty());

  worker_reply failed;
  failed.rid = 9;
  failed.ok = false;
  failed.error = {error_kind::not_exist, "offer 1 shrank"};
  CHECK(reply_round_trip(failed).error == failed.error);
}

TEST_CASE("worker: hello round-trips; unknown or missing types are invalid") {
  auto decoded = decode_worker_message(encode_worker_hello({"w1", "run-abc", 1234}));
  REQUIRE(decoded.ok());
  REQUIRE(std::holds_alternative<worker_hello>(*decoded));
  const auto& hello = std::get<worker_hello>(*decoded);
  CHECK(hello.pool == "w1");
  CHECK(hello.run == "run-abc");
  CHECK(hello.ts_ms == 1234);

  auto no_type = decode_worker_message(map_body(1, [](packer& pk) {
    pack_string(pk, "rid");
    pk.pack_int(1);
  }));
  REQUIRE_FALSE(no_type.ok());
  CHECK(no_type.error().message == "type: missing");
  auto odd_type = decode_worker_message(map_body(1, [](packer& pk) {
    pack_string(pk, "type");
    pack_string(pk, "bye");
  }));
  REQUIRE_FALSE(odd_type.ok());
  CHECK(odd_type.error().message == "type: unknown message type \"bye\"");
  auto slash_pool = decode_worker_message(encode_worker_hello({"a/b", "r", 1}));
  REQUIRE_FALSE(slash_pool.ok());
  auto reply_without_ok = decode_worker_message(map_body(2, [](packer& pk) {
    pack_string(pk, "type");
    pack_string(pk, "reply");
    pack_string(pk, "rid");
    pk.pack_int(3);
  }));
  REQUIRE_FALSE(reply_without_ok.ok());
  CHECK(reply_without_ok.error().message == "ok: missing");
}

TEST_CASE("worker: offer announcements round-trip with protocol.md's keys plus run and heartbeat_ms") {
  offer_announcement a;
  a.pool = "w1";
  a.run = "r-1";
  a.seq = 42;
  a.resources = {{"cpu", 4}, {"mem", 8 * GiB}};
  a.available = {{"cpu", 3}, {"mem", 6 * GiB}};
  a.offers = {OfferInfo{"w1/1", "w1", a.available}};
  a.allocs = 1;
  a.ts_ms = 1700000000000;
  a.heartbeat_ms = 1000;
  std::string body = encode_offer_announcement(a);
  auto decoded = decode_offer_announcement(body);
  REQUIRE(decoded.ok());
  CHECK(decoded->pool == a.pool);
  CHECK(decoded->run == a.run);
  CHECK(decoded->seq == 42);
  CHECK(decoded->resources == a.resources);
  CHECK(decoded->available == a.available);
  CHECK(decoded->offers == a.offers);
  CHECK(decoded->allocs == 1);
  CHECK(decoded->ts_ms == a.ts_ms);
  CHECK(decoded->heartbeat_ms == 1000);

  auto handle = msgpack::unpack(body.data(), body.size());
  codec::map_view view(handle.get(), "");
  for (const char* key : {"v", "pool", "seq", "resources", "available", "offers", "allocs", "labels", "draining",
                          "ts_ms", "run", "heartbeat_ms"})
    CHECK(view.find(key) != nullptr);
  CHECK(handle.get().via.map.size == 12);

  auto missing_seq = decode_offer_announcement(map_body(1, [](packer& pk) {
    pack_string(pk, "pool");
    pack_string(pk, "w1");
  }));
  REQUIRE_FALSE(missing_seq.ok());
  CHECK(missing_seq.error().message == "seq: missing");
}

TEST_CASE("worker: alloc and pool events round-trip; unknown events are invalid") {
  alloc_event e{"w1", alloc_event_kind::expired, sample_inspect("a3"), 555};
  auto decoded = decode_alloc_event(encode_alloc_event(e));
  REQUIRE(decoded.ok());
  CHECK(decoded->pool == "w1");
  CHECK(decoded->event == alloc_event_kind::expired);
  CHECK(decoded->alloc == e.alloc);
  CHECK(decoded->ts_ms == 555);

  for (pool_event_kind kind : {pool_event_kind::joined, pool_event_kind::left, pool_event_kind::stopped}) {
    auto p = decode_pool_event(encode_pool_event({"w2", kind, 77}));
    REQUIRE(p.ok());
    CHECK(p->event == kind);
    CHECK(p->pool == "w2");
    CHECK(p->ts_ms == 77);
  }
  auto odd = decode_pool_event(map_body(3, [](packer& pk) {
    pack_string(pk, "pool");
    pack_string(pk, "w1");
    pack_string(pk, "event");
    pack_string(pk, "exploded");
    pack_string(pk, "ts_ms");
    pk.pack_int(1);
  }));
  REQUIRE_FALSE(odd.ok());
  CHECK(odd.error().message == "event: unknown pool event \"exploded\"");
}

namespace {

worker_reply allocs_reply(int count) {
  worker_reply reply;
  reply.rid = 77;
  for (int i = 0; i < count; ++i) reply.allocs.push_back(sample_inspect("a" + std::to_string(i)));
  return reply;
}

}  // namespace

TEST_CASE("worker: relaying decode keeps a long allocs list as the worker's bytes, each entry checked") {
  auto reply = allocs_reply(2000);
  reply.interval_ms = 5;  // a field after the list still decodes
  auto body = encode_worker_reply(reply);
  auto decoded = decode_worker_message_relaying(body);
  REQUIRE(decoded.ok());
  const auto& relayed = std::get<worker_reply>(*decoded);
  CHECK(relayed.rid == 77);
  CHECK(relayed.ok);
  CHECK(relayed.interval_ms == 5);
  CHECK(relayed.allocs.empty());
  REQUIRE(relayed.allocs_entries.count == 2000);
  CHECK(relayed.allocs_entries.bytes == encode_alloc_entries(reply.allocs).bytes);  // the very bytes sent
  auto back = decode_alloc_entries(relayed.allocs_entries);
  REQUIRE(back.ok());
  CHECK(*back == reply.allocs);
  // Re-encoded, it is the same message.
  CHECK(encode_worker_reply(relayed) == body);
}

TEST_CASE("worker: relaying decode of short, failed or hello messages is the plain decode") {
  auto small = encode_worker_reply(allocs_reply(3));
  auto decoded = decode_worker_message_relaying(small);
  REQUIRE(decoded.ok());
  CHECK(std::get<worker_reply>(*decoded).allocs.size() == 3);
  CHECK(std::get<worker_reply>(*decoded).allocs_entries.count == 0);
  worker_reply failed;
  failed.rid = 3;
  failed.ok = false;
  failed.error = {error_kind::not_exist, "gone"};
  auto failed_decoded = decode_worker_message_relaying(encode_worker_reply(failed));
  REQUIRE(failed_decoded.ok());
  CHECK(std::get<worker_reply>(*failed_decoded).error == failed.error);
  auto hello = decode_worker_message_relaying(encode_worker_hello({"w1", "r", 5}));
  REQUIRE(hello.ok());
  CHECK(std::holds_alternative<worker_hello>(*hello));
}

TEST_CASE("worker: relaying decode refuses what the plain decode refuses, naming the bad entry") {
  auto reply = allocs_reply(1000);
  reply.allocs[700].id.clear();  // still a string: well-formed
  auto good = decode_worker_message_relaying(encode_worker_reply(reply));
  REQUIRE(good.ok());
  // Entry 600 without its required created_ms: build the bytes by hand.
  std::string entries;
  for (int i = 0; i < 1000; ++i) {
    if (i != 600) {
      entries += encode_alloc_inspect(reply.allocs[i]);
      continue;
    }
    msgpack::sbuffer buffer;
    packer pk(&buffer);
    pk.pack_map(2);
    pack_string(pk, "id");
    pack_string(pk, "w1/x");
    pack_string(pk, "pool");
    pack_string(pk, "w1");
    entries.append(buffer.data(), buffer.size());
  }
  worker_reply carrier;
  carrier.rid = 9;
  carrier.allocs_entries = {1000, entries};
  auto body = encode_worker_reply(carrier);
  auto relayed = decode_worker_message_relaying(body);
  REQUIRE_FALSE(relayed.ok());
  CHECK(relayed.error().kind == error_kind::invalid);
  CHECK(relayed.error().message.find("allocs[600]") != std::string::npos);
  auto plain = decode_worker_message(body);
  REQUIRE_FALSE(plain.ok());
  CHECK(plain.error().kind == error_kind::invalid);
  // Truncated anywhere in the list: invalid, never a crash.
  for (std::size_t cut : {body.size() - 1, body.size() / 2, std::size_t{20000}})
    CHECK_FALSE(decode_worker_message_relaying(std::string_view(body).substr(0, cut)).ok());
}
