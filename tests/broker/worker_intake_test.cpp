#include <catch2/catch.hpp>

#include <thread>

#include "broker/worker_intake.hpp"

using namespace poolbus;

namespace {

struct recording_sink : frame_sink {
  std::vector<outbound_frames> posted;
  void post(outbound_frames message) override { posted.push_back(std::move(message)); }
};

struct intake_fixture {
  recording_sink stream;
  std::vector<offer_announcement> changed;
  std::vector<pool_event> stopped;
  std::vector<std::pair<std::string, worker_hello>> hellos;
  std::vector<std::pair<std::string, worker_reply>> replies;
  std::vector<std::pair<std::vector<pool_seen>, std::vector<pool_seen>>> seen;
  std::vector<int64_t> flushes;
  worker_intake intake{stream, outputs(), 3000};

  worker_intake_outputs outputs() {
    worker_intake_outputs out;
    out.offers_changed = [this](offer_announcement&& a) { changed.push_back(std::move(a)); };
    out.pool_stopped = [this](pool_event&& e) { stopped.push_back(std::move(e)); };
    out.hello = [this](std::string&& id, worker_hello&& h) { hellos.emplace_back(std::move(id), std::move(h)); };
    out.reply = [this](std::string&& id, worker_reply&& r) { replies.emplace_back(std::move(id), std::move(r)); };
    out.seen = [this](std::vector<pool_seen>&& a, std::vector<pool_seen>&& h) {
      seen.emplace_back(std::move(a), std::move(h));
    };
    out.flushed = [this](int64_t now_ms) { flushes.push_back(now_ms); };
    return out;
  }

  void announce(const offer_announcement& a, int64_t now_ms) {
    intake.on_announcement(offers_topic(a.pool), encode_offer_announcement(a), now_ms);
  }
};

offer_announcement announcement(const std::string& pool, int64_t seq, int64_t ts_ms) {
  offer_announcement a;
  a.pool = pool;
  a.run = "run-1";
  a.seq = seq;
  a.resources = Resources{{"cpu", 4}, {"mem", 8 * GiB}};
  a.available = a.resources;
  a.offers = {OfferInfo{"1", pool, a.available}};
  a.ts_ms = ts_ms;
  return a;
}

constexpr int64_t t0 = 1764300000000;

}  // namespace

TEST_CASE_METHOD(intake_fixture, "every valid announcement is republished; only changes reach the mux") {
  announce(announcement("w1", 1, t0), 0);
  announce(announcement("w1", 1, t0 + 1000), 1000);  // heartbeat: same offer
  announce(announcement("w1", 1, t0 + 2000), 2000);
  announce(announcement("w1", 2, t0 + 2500), 2500);  // a change
  REQUIRE(stream.posted.size() == 4);
  for (const auto& p : stream.posted) {
    CHECK(p.via == channel::stream);
    CHECK(p.frames.at(0) == "offers.w1");
  }
  CHECK(stream.posted[1].frames[1] == encode_offer_announcement(announcement("w1", 1, t0 + 1000)));
  REQUIRE(changed.size() == 2);
  CHECK(changed[0].seq == 1);
  CHECK(changed[1].seq == 2);
  CHECK(seen.empty());  // nothing handed on until a flush
  intake.flush(2600);
  REQUIRE(seen.size() == 1);
  REQUIRE(seen[0].first.size() == 1);
  CHECK(seen[0].first[0].pool == "w1");
  CHECK(seen[0].first[0].ts_ms == t0 + 2000);  // the newest repeat
  CHECK(seen[0].second.empty());
  intake.flush(2700);
  CHECK(seen.size() == 1);  // an empty batch is not sent
}

TEST_CASE_METHOD(intake_fixture, "malformed or mislabelled announcements reach no one, even repeated") {
  intake.on_announcement("offers.w1", "\x81\xa1v\x01", 0);
  intake.on_announcement("offers.w1", "\x81\xa1v\x01", 1);
  intake.on_announcement("offers.w2", encode_offer_announcement(announcement("w1", 1, t0)), 2);
  intake.on_announcement("offers.w2", encode_offer_announcement(announcement("w1", 1, t0 + 1)), 3);
  intake.on_announcement("nonsense", "x", 4);
  intake.on_announcement("allocs.w1", "garbage", 5);
  intake.flush(10);
  CHECK(stream.posted.empty());
  CHECK(changed.empty());
  CHECK(seen.empty());
}

TEST_CASE_METHOD(intake_fixture, "stopped is republished and passed on, and the pool is heard afresh after") {
  announce(announcement("w1", 1, t0), 0);
  pool_event stop{"w1", pool_event_kind::stopped, t0 + 10};
  intake.on_announcement(pools_topic("w1"), encode_pool_event(stop), 10);
  pool_event joined{"w1", pool_event_kind::joined, t0 + 11};
  intake.on_announcement(pools_topic("w1"), encode_pool_event(joined), 11);  // not the worker's to say
  REQUIRE(stopped.size() == 1);
  CHECK(stopped[0].pool == "w1");
  CHECK(stream.posted.size() == 2);
  announce(announcement("w1", 1, t0 + 20), 20);  // same offer as before the stop
  CHECK(changed.size() == 2);
}

TEST_CASE_METHOD(intake_fixture, "hellos: the first passes, repeats are batched, a wrong identity is dropped") {
  intake.on_worker_message("w1", encode_worker_hello({"w1", "run-1", t0}), 0);
  intake.on_worker_message("w1", encode_worker_hello({"w1", "run-1", t0 + 1000}), 1000);
  intake.on_worker_message("w1", encode_worker_hello({"w1", "run-2", t0 + 1000}), 1000);  // a new run
  intake.on_worker_message("w9", encode_worker_hello({"w1", "run-1", t0}), 1000);
  worker_reply reply;
  reply.rid = 42;
  intake.on_worker_message("w1", encode_worker_reply(reply), 1001);
  REQUIRE(hellos.size() == 2);
  CHECK(hellos[1].second.run == "run-2");
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].first == "w1");
  CHECK(replies[0].second.rid == 42);
  intake.flush(1100);
  REQUIRE(seen.size() == 1);
  REQUIRE(seen[0].second.size() == 1);
  CHECK(seen[0].second[0].pool == "w1");
  CHECK(seen[0].second[0].ts_ms == t0 + 1000);
}

TEST_CASE_METHOD(intake_fixture, "a sender silent for half the worker timeout is heard afresh") {
  announce(announcement("w1", 1, t0), 0);
  intake.flush(1000);
  announce(announcement("w1", 1, t0 + 1000), 1000);  // repeat
  CHECK(changed.size() == 1);
  intake.flush(2600);  // last heard 1000; 1600 > 3000 / 2
  announce(announcement("w1", 1, t0 + 2600), 2600);
  CHECK(changed.size() == 2);
}

TEST_CASE_METHOD(intake_fixture, "forget, from another thread, takes effect at the next flush") {
  announce(announcement("w1", 1, t0), 0);
  intake.on_worker_message("w1", encode_worker_hello({"w1", "run-1", t0}), 0);
  std::thread mux_thread([this] { intake.forget("w1"); });
  mux_thread.join();
  intake.flush(10);
  announce(announcement("w1", 1, t0 + 20), 20);
  intake.on_worker_message("w1", encode_worker_hello({"w1", "run-1", t0 + 20}), 20);
  CHECK(changed.size() == 2);
  CHECK(hellos.size() == 2);
}

TEST_CASE("flush period: a tenth of the worker timeout, between 5 and 100 ms") {
  recording_sink sink;
  CHECK(worker_intake(sink, {}, 3000).flush_period_ms() == 100);
  CHECK(worker_intake(sink, {}, 600).flush_period_ms() == 60);
  CHECK(worker_intake(sink, {}, 10).flush_period_ms() == 5);
}

TEST_CASE_METHOD(intake_fixture, "every flush reports its time, after its batch, even when it has none") {
  intake.on_worker_message("w1", encode_worker_hello({"w1", "r", t0}), 100);
  intake.on_worker_message("w1", encode_worker_hello({"w1", "r", t0 + 1}), 200);  // a repeat: batched
  intake.flush(250);
  intake.flush(350);
  CHECK(flushes == std::vector<int64_t>{250, 350});
  CHECK(seen.size() == 1);
}

TEST_CASE_METHOD(intake_fixture, "a long allocs list in a reply is passed on as the worker's bytes") {
  worker_reply reply;
  reply.rid = 12;
  for (int i = 0; i < 500; ++i) {
    AllocInspect a;
    a.id = "w1/a" + std::to_string(i);
    a.pool = "w1";
    a.resources = {{"cpu", 0.001}};
    a.meta.want = a.resources;
    reply.allocs.push_back(a);
  }
  intake.on_worker_message("w1", encode_worker_reply(reply), 100);
  REQUIRE(replies.size() == 1);
  const auto& passed = replies[0].second;
  CHECK(passed.rid == 12);
  CHECK(passed.allocs.empty());
  CHECK(passed.allocs_entries.count == 500);
  CHECK(passed.allocs_entries.bytes == encode_alloc_entries(reply.allocs).bytes);
}
