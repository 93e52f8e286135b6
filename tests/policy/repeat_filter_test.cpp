#include <catch2/catch.hpp>

#include "policy/repeat_filter.hpp"
#include "schemas/worker_messages.hpp"

using namespace poolbus;

namespace {

offer_announcement announcement(int64_t seq, int64_t ts_ms, double cpu = 4) {
  offer_announcement a;
  a.pool = "w1";
  a.run = "run-1";
  a.seq = seq;
  a.resources = Resources{{"cpu", 4}, {"mem", 8 * GiB}};
  a.available = Resources{{"cpu", cpu}, {"mem", 8 * GiB}};
  a.allocs = 0;
  a.ts_ms = ts_ms;
  a.heartbeat_ms = 1000;
  return a;
}

}  // namespace

TEST_CASE("a heartbeat that differs only in its time is a repeat, with that time") {
  repeat_filter filter;
  filter.remember("offers.w1", encode_offer_announcement(announcement(3, 1764300000000)), 10);
  auto ts = filter.repeat_ts("offers.w1", encode_offer_announcement(announcement(3, 1764300001000)), 20);
  REQUIRE(ts);
  CHECK(*ts == 1764300001000);
}

TEST_CASE("any other change is not a repeat") {
  repeat_filter filter;
  filter.remember("offers.w1", encode_offer_announcement(announcement(3, 1764300000000)), 10);
  CHECK_FALSE(filter.repeat_ts("offers.w1", encode_offer_announcement(announcement(4, 1764300001000)), 20));
  CHECK_FALSE(filter.repeat_ts("offers.w1", encode_offer_announcement(announcement(3, 1764300001000, 3)), 20));
  CHECK_FALSE(filter.repeat_ts("offers.w2", encode_offer_announcement(announcement(3, 1764300001000)), 20));
  // A time of another width (a small number) changes the encoding: not a repeat.
  CHECK_FALSE(filter.repeat_ts("offers.w1", encode_offer_announcement(announcement(3, 5)), 20));
  // Same size, one byte changed outside the time.
  auto body = encode_offer_announcement(announcement(3, 1764300001000));
  body[body.size() / 3] ^= 0x01;
  CHECK_FALSE(filter.repeat_ts("offers.w1", body, 20));
}

TEST_CASE("a body without a time repeats only when identical") {
  repeat_filter filter;
  filter.remember("k",
                  "\x81\xa1"
                  "a\x01",
                  0);
  CHECK(filter.repeat_ts("k",
                         "\x81\xa1"
                         "a\x01",
                         1));
  CHECK_FALSE(filter.repeat_ts("k",
                               "\x81\xa1"
                               "a\x02",
                               1));
}

TEST_CASE("forget and forget_silent make the next message fresh") {
  repeat_filter filter;
  auto first = encode_worker_hello({"w1", "r", 1764300000000});
  auto again = encode_worker_hello({"w1", "r", 1764300001000});
  filter.remember("w1", first, 100);
  filter.remember("w2", encode_worker_hello({"w2", "r", 1764300000000}), 100);
  REQUIRE(filter.repeat_ts("w1", again, 500));  // heard at 500
  CHECK(filter.forget_silent(200) == 1);        // w2, last heard at 100
  CHECK(filter.size() == 1);
  CHECK(filter.repeat_ts("w1", again, 600));
  filter.forget("w1");
  CHECK_FALSE(filter.repeat_ts("w1", again, 700));
  CHECK(filter.size() == 0);
}

TEST_CASE("forget_silent skips its walk only while nobody can be older than its cutoff") {
  repeat_filter filter;
  filter.remember("w1", encode_worker_hello({"w1", "r", 1764300000000}), 100);
  CHECK(filter.forget_silent(50) == 0);
  filter.remember("w2", encode_worker_hello({"w2", "r", 1764300000000}), 150);
  CHECK(filter.forget_silent(120) == 1);  // w1
  CHECK(filter.forget_silent(140) == 0);  // w2 is the oldest, at 150
  filter.remember("w3", encode_worker_hello({"w3", "r", 1764300000000}), 300);
  CHECK(filter.forget_silent(200) == 1);  // w2
  CHECK(filter.size() == 1);
  CHECK(filter.forget_silent(301) == 1);
  CHECK(filter.size() == 0);
}
