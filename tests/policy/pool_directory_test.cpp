// pool_directory under a hand-driven intake clock: membership, the supersede
// rule, liveness, heartbeat batches, a worker restart, and the spliced reply
// arrays' byte identity with the encoder.
#include "policy/pool_directory.hpp"

#include <catch2/catch.hpp>

#include "schemas/api_messages.hpp"

using namespace poolbus;

namespace {

const Resources small{{"mem", 10}, {"cpu", 1}, {"disk", 20}};
const Resources medium = small.scale(2);
const Resources large = small.scale(4);
constexpr int64_t worker_timeout_ms = 3000;

offer_announcement announcement_of(const std::string& pool, const Resources& total, const Resources& available,
                                   int64_t seq, std::string run = "r1") {
  offer_announcement a;
  a.pool = pool;
  a.run = std::move(run);
  a.seq = seq;
  a.resources = total;
  a.available = available;
  a.ts_ms = 1000 + seq;
  if (available.units("cpu") > 0) a.offers.push_back(OfferInfo{pool + "/1", pool, available});
  return a;
}

PoolStatus status_of(const offer_announcement& a, int64_t last_seen_ms) {
  return PoolStatus{a.pool, a.resources, a.available, a.allocs, last_seen_ms};
}

OfferInfo offer_of(const offer_announcement& a) { return OfferInfo{a.pool + "/1", a.pool, a.available}; }

struct directory_fixture {
  pool_directory dir{worker_timeout_ms};
  const std::string id_raw =
      "\xa2"
      "id";

  // Joins `a.pool`: its announcement, then its hello.
  void join(offer_announcement a) {
    auto pool = a.pool;
    CHECK_FALSE(dir.on_announcement(std::move(a)).joined);
    CHECK(dir.on_hello(pool));
  }

  // The replies the api actor splices from the directory must be the bytes
  // encode_*_reply writes for the values the test expects.
  void check_replies(const std::vector<OfferInfo>& offers, const std::vector<PoolStatus>& pools) {
    CHECK(encode_offers_reply_spliced(id_raw, dir.offer_entries()) == encode_offers_reply(id_raw, offers));
    CHECK(encode_pools_reply_spliced(id_raw, dir.status_entries()) == encode_pools_reply(id_raw, pools));
  }
};

}  // namespace

TEST_CASE_METHOD(directory_fixture, "pool_directory: a pool joins once it has announced and said hello") {
  CHECK_FALSE(dir.on_hello("a"));
  CHECK(dir.joined("a") == nullptr);
  CHECK(dir.on_announcement(announcement_of("a", large, large, 1)).joined);
  REQUIRE(dir.joined("a") != nullptr);
  // And the other way round.
  CHECK_FALSE(dir.on_announcement(announcement_of("b", small, small, 1)).joined);
  CHECK(dir.joined("b") == nullptr);
  check_replies({offer_of(announcement_of("a", large, large, 1))},
                {status_of(announcement_of("a", large, large, 1), 1001)});
  CHECK(dir.on_hello("b"));
  CHECK_FALSE(dir.on_hello("b"));  // joins once
  CHECK(dir.joined_count() == 2);
  CHECK(dir.local_offers().size() == 2);
  CHECK(dir.local_offers().at(1).id == "1");
  CHECK(dir.local_offers().at(1).pool == "b");
  CHECK(dir.on_reply("b"));
  CHECK_FALSE(dir.on_reply("nobody"));
}

TEST_CASE_METHOD(directory_fixture, "pool_directory: an announcement never goes backwards within a run") {
  join(announcement_of("a", large, large, 3));
  dir.on_announcement(announcement_of("a", large, small, 2));  // overtaken on the way: ignored
  CHECK(dir.joined("a")->latest.seq == 3);
  CHECK(dir.joined("a")->latest.available == large);
  dir.on_announcement(announcement_of("a", large, medium, 4));
  CHECK(dir.joined("a")->latest.available == medium);
  // A restarted worker (a new run) restarts seq: it replaces whatever was held.
  dir.on_announcement(announcement_of("a", large, small, 1, "r2"));
  CHECK(dir.joined("a")->latest.run == "r2");
  CHECK(dir.joined("a")->latest.available == small);
  check_replies({offer_of(announcement_of("a", large, small, 1, "r2"))},
                {status_of(announcement_of("a", large, small, 1, "r2"), 1001)});
}

TEST_CASE_METHOD(directory_fixture, "pool_directory: silent pools leave at the worker timeout, by the intake's clock") {
  dir.on_announcement(announcement_of("early", small, small, 1));  // before any flush
  CHECK(dir.on_flushed(10'000).silent.empty());                    // the first flush: heard just now
  join(announcement_of("a", large, large, 1));
  dir.on_announcement(announcement_of("never-routable", small, small, 1));
  for (int64_t now = 10'100; now <= 13'000; now += 100) {
    CHECK(dir.on_flushed(now).silent.empty());
    if (now % 1000 == 0) dir.on_seen({{"a", now}}, {{"a", now}});
  }
  // "early" and "never-routable" were last heard at 10,000: 3,000 ms is not yet silent.
  auto result = dir.on_flushed(13'100);
  REQUIRE(result.silent.size() == 2);
  CHECK(result.silent.at(0).pool == "early");
  CHECK_FALSE(result.silent.at(0).was_joined);
  CHECK(result.silent.at(1).pool == "never-routable");
  CHECK(dir.joined("a") != nullptr);  // heard at 13,000
  for (int64_t now = 13'200; now <= 16'000; now += 100) CHECK(dir.on_flushed(now).silent.empty());
  result = dir.on_flushed(16'100);
  REQUIRE(result.silent.size() == 1);
  CHECK(result.silent.at(0).pool == "a");
  CHECK(result.silent.at(0).was_joined);
  CHECK(dir.joined_count() == 0);
  check_replies({}, {});
}

TEST_CASE_METHOD(directory_fixture, "pool_directory: a slow heartbeat, its own or paced, gives three of them") {
  CHECK(dir.on_flushed(10'000).silent.empty());
  auto slow = announcement_of("slow", large, large, 1);
  slow.heartbeat_ms = 5000;  // its own --heartbeat 5s: silent after 15 s, not 3 s
  join(slow);
  join(announcement_of("usual", large, large, 1));  // heartbeat_ms 0 (unknown): the worker timeout
  for (int64_t now = 10'100; now <= 13'000; now += 100) CHECK(dir.on_flushed(now).silent.empty());
  auto result = dir.on_flushed(13'100);
  REQUIRE(result.silent.size() == 1);
  CHECK(result.silent.at(0).pool == "usual");
  for (int64_t now = 13'200; now <= 25'000; now += 100) CHECK(dir.on_flushed(now).silent.empty());
  CHECK(dir.on_flushed(25'100).silent.size() == 1);
  // The broker's pace covers every pool, whatever it last announced.
  join(announcement_of("paced", large, large, 1));
  dir.on_paced(8000);
  for (int64_t now = 25'200; now <= 49'100; now += 100) CHECK(dir.on_flushed(now).silent.empty());
  CHECK(dir.on_flushed(49'200).silent.size() == 1);
}

TEST_CASE_METHOD(directory_fixture, "pool_directory: flushes skip the walk, yet a pool that can fall silent sooner is judged on time") {
  CHECK(dir.on_flushed(10'000).silent.empty());
  auto slow = announcement_of("slow", large, large, 1);
  slow.heartbeat_ms = 10'000;  // silent only after 30 s
  join(slow);
  CHECK(dir.on_flushed(10'100).silent.empty());  // the walk: nobody before 40,000
  CHECK(dir.on_flushed(10'200).silent.empty());
  join(announcement_of("quick", large, large, 1));  // heard at 10,200: silent after 13,200
  for (int64_t now = 10'300; now <= 13'200; now += 100) CHECK(dir.on_flushed(now).silent.empty());
  auto result = dir.on_flushed(13'300);
  REQUIRE(result.silent.size() == 1);
  CHECK(result.silent.at(0).pool == "quick");
  // The slow pool speeds up (a new announcement with 1 s): three of those, or the worker timeout.
  auto faster = announcement_of("slow", large, large, 2);
  faster.heartbeat_ms = 1000;
  dir.on_announcement(std::move(faster));  // heard at 13,300
  for (int64_t now = 13'400; now <= 16'300; now += 100) CHECK(dir.on_flushed(now).silent.empty());
  CHECK(dir.on_flushed(16'400).silent.size() == 1);
  // And a lifted pace shortens everyone's.
  join(announcement_of("paced", large, large, 1));  // heard at 16,400
  dir.on_paced(20'000);
  for (int64_t now = 16'500; now <= 17'000; now += 100) CHECK(dir.on_flushed(now).silent.empty());
  dir.on_paced(0);
  for (int64_t now = 17'100; now <= 19'400; now += 100) CHECK(dir.on_flushed(now).silent.empty());
  CHECK(dir.on_flushed(19'500).silent.size() == 1);
}

TEST_CASE_METHOD(directory_fixture, "pool_directory: a flush after a stall of the I/O thread judges nobody") {
  CHECK(dir.on_flushed(1'000).silent.empty());
  join(announcement_of("a", large, large, 1));
  auto stalled = dir.on_flushed(1'000 + worker_timeout_ms + 500);  // the I/O thread was busy meanwhile
  CHECK(stalled.stalled_ms == worker_timeout_ms + 500);
  CHECK(stalled.silent.empty());
  CHECK(dir.joined("a") != nullptr);
  // The heartbeat that waited behind the stall arrives; the next flush judges as usual.
  dir.on_seen({{"a", 5000}}, {});
  CHECK(dir.on_flushed(4'600).silent.empty());
}

TEST_CASE_METHOD(directory_fixture, "pool_directory: a stopped pool leaves at once") {
  join(announcement_of("a", large, large, 1));
  auto gone = dir.on_stopped("a");
  REQUIRE(gone);
  CHECK(gone->was_joined);
  CHECK_FALSE(dir.on_stopped("a"));
  CHECK(dir.joined("a") == nullptr);
  check_replies({}, {});
}

TEST_CASE_METHOD(directory_fixture, "pool_directory: heartbeat batches move the time only; unknown senders are named") {
  join(announcement_of("a", large, large, 1));
  dir.on_announcement(announcement_of("quiet", small, small, 1));  // announced, no hello yet
  auto unknown = dir.on_seen({{"a", 2000}, {"nobody", 5}}, {{"quiet", 7}, {"a", 2000}});
  CHECK(unknown == std::vector<std::string>{"nobody", "quiet"});
  CHECK(dir.joined("a")->latest.ts_ms == 2000);
  CHECK(dir.joined("a")->latest.seq == 1);
  dir.on_seen({{"a", 1500}}, {});  // older: ignored
  CHECK(dir.joined("a")->latest.ts_ms == 2000);
}

TEST_CASE_METHOD(directory_fixture,
                 "pool_directory: spliced offers and pools are the encoder's bytes, whatever changes") {
  check_replies({}, {});
  auto a = announcement_of("a", large, medium, 1);
  a.allocs = 2;
  auto b = announcement_of("b", medium, medium, 1);
  auto c = announcement_of("c", small, Resources{}, 1);  // nothing to offer: in pools, not in offers
  REQUIRE(c.offers.empty());
  join(b);
  join(a);
  join(c);
  check_replies({offer_of(a), offer_of(b)}, {status_of(a, a.ts_ms), status_of(b, b.ts_ms), status_of(c, c.ts_ms)});
  CHECK(dir.announced_allocs("") == 2);
  CHECK(dir.announced_allocs("a") == 2);
  CHECK(dir.announced_allocs("b") == 0);

  // A newer announcement replaces the pool's entries; an older one does not.
  auto a2 = announcement_of("a", large, small, 2);
  a2.allocs = 5;
  dir.on_announcement(offer_announcement(a2));
  dir.on_announcement(announcement_of("a", large, large, 1));
  check_replies({offer_of(a2), offer_of(b)}, {status_of(a2, a2.ts_ms), status_of(b, b.ts_ms), status_of(c, c.ts_ms)});

  // Seen batches move last_seen_ms only, across every int width msgpack picks
  // (1002 is a uint16, epoch ms a uint64); older times and unknown pools are ignored.
  int64_t epoch_ms = 1795000000000;
  dir.on_seen({{"a", epoch_ms}, {"c", 70000}, {"nobody", 5}, {"b", b.ts_ms - 1}}, {});
  check_replies({offer_of(a2), offer_of(b)}, {status_of(a2, epoch_ms), status_of(b, b.ts_ms), status_of(c, 70000)});
  dir.on_seen({{"a", epoch_ms + 1}, {"b", 4294967296}}, {});
  check_replies({offer_of(a2), offer_of(b)},
                {status_of(a2, epoch_ms + 1), status_of(b, 4294967296), status_of(c, 70000)});
  // Times of the same width are patched into the kept pools array in place.
  dir.on_seen({{"a", epoch_ms + 2}, {"c", 70001}}, {});
  check_replies({offer_of(a2), offer_of(b)},
                {status_of(a2, epoch_ms + 2), status_of(b, 4294967296), status_of(c, 70001)});
  dir.on_seen({{"b", 4294967297}}, {});
  dir.on_seen({{"a", epoch_ms + 3}, {"c", 1 << 20}}, {});
  check_replies({offer_of(a2), offer_of(b)},
                {status_of(a2, epoch_ms + 3), status_of(b, 4294967297), status_of(c, 1 << 20)});
  // A new run replaces the entries, time included (the announcement's own ts_ms).
  auto a3 = announcement_of("a", large, large, 1, "r2");
  dir.on_announcement(offer_announcement(a3));
  check_replies({offer_of(a3), offer_of(b)},
                {status_of(a3, a3.ts_ms), status_of(b, 4294967297), status_of(c, 1 << 20)});

  // A pool that stops takes its entries out; joining again starts from its new announcement.
  dir.on_stopped("b");
  check_replies({offer_of(a3)}, {status_of(a3, a3.ts_ms), status_of(c, 1 << 20)});
  auto b2 = announcement_of("b", large, small, 7);
  join(b2);
  check_replies({offer_of(a3), offer_of(b2)},
                {status_of(a3, a3.ts_ms), status_of(b2, b2.ts_ms), status_of(c, 1 << 20)});
  dir.on_stopped("a");
  dir.on_stopped("b");
  dir.on_stopped("c");
  check_replies({}, {});
}

TEST_CASE("pool_directory: 10,001 pools splice into one pools reply") {
  pool_directory dir{worker_timeout_ms};
  std::vector<PoolStatus> expected;
  for (int i = 0; i < 10'001; ++i) {
    auto a = announcement_of("p" + std::to_string(100'000 + i), small, small, 1);
    expected.push_back(status_of(a, a.ts_ms));
    dir.on_hello(a.pool);
    dir.on_announcement(std::move(a));
  }
  CHECK(dir.joined_count() == 10'001);
  CHECK(dir.status_entries().count == 10'001);
  CHECK(encode_pools_reply_spliced("\x01", dir.status_entries()) == encode_pools_reply("\x01", expected));
}
