#include <catch2/catch.hpp>

#include "dash/cluster_view.hpp"
#include "schemas/exec.hpp"
#include "schemas/worker_messages.hpp"

using namespace poolbus;

namespace {

offer_announcement offer(const std::string& pool, int64_t seq, double cpu_free, int64_t allocs = 0) {
  offer_announcement a;
  a.pool = pool;
  a.run = "r1";
  a.seq = seq;
  a.resources = Resources{{"cpu", 4}, {"mem", 8 * GiB}};
  a.available = Resources{{"cpu", cpu_free}, {"mem", 8 * GiB}};
  a.allocs = allocs;
  a.labels = {{"zone", "z1"}};
  a.ts_ms = 1000 + seq;
  return a;
}

view_change feed(cluster_view& v, const offer_announcement& a, int64_t now = 5000) {
  return v.on_message(offers_topic(a.pool), encode_offer_announcement(a), now);
}

view_change feed_pool_event(cluster_view& v, const std::string& pool, pool_event_kind kind) {
  return v.on_message(pools_topic(pool), encode_pool_event({pool, kind, 1234}), 5000);
}

queue_entry waiting(const std::string& id, int64_t priority, int64_t queued_ms) {
  queue_entry q;
  q.id = id;
  q.min = Resources{{"cpu", 1}};
  q.priority = priority;
  q.queued_ms = queued_ms;
  q.deadline_ms = queued_ms + 60000;
  return q;
}

view_change feed_demand(cluster_view& v, demand_event_kind kind, const queue_entry& q) {
  demand_event e;
  e.event = kind;
  e.request = q;
  e.ts_ms = 77;
  return v.on_message(demand_topic, encode_demand_event(e), 5000);
}

}  // namespace

TEST_CASE("cluster_view: a pool appears with its first offer and changes only forward") {
  cluster_view v;
  auto first = feed(v, offer("w1", 3, 4));
  REQUIRE(first.pool_changed == std::optional<std::string>("w1"));
  CHECK(v.pools().at("w1").latest.labels.at("zone") == "z1");

  auto change = feed(v, offer("w1", 4, 2, 1));
  CHECK(change.pool_changed);
  CHECK(v.pools().at("w1").latest.allocs == 1);

  auto stale = feed(v, offer("w1", 3, 4), 6000);  // overtaken on the way: ignored
  CHECK_FALSE(stale.pool_changed);
  CHECK(v.pools().at("w1").latest.seq == 4);
  CHECK(v.pools().at("w1").last_seen_ms == 6000);  // but the pool was heard
}

TEST_CASE("cluster_view: a heartbeat is heard, not a change; the quiet ones are listed") {
  cluster_view v;
  feed(v, offer("w1", 1, 4));
  feed(v, offer("w2", 1, 4));
  CHECK(v.take_quiet().empty());
  auto beat = feed(v, offer("w1", 1, 4), 7000);
  CHECK_FALSE(beat.pool_changed);
  CHECK_FALSE(beat.tail);
  CHECK(v.pools().at("w1").last_seen_ms == 7000);
  CHECK(v.take_quiet() == std::vector<std::string>{"w2"});
  CHECK(v.take_quiet() == std::vector<std::string>{"w1", "w2"});
}

TEST_CASE("cluster_view: left and stopped pools are gone from the view; drains flip the flag") {
  cluster_view v;
  feed(v, offer("w1", 1, 4));
  feed(v, offer("w2", 1, 4));
  auto drained = feed_pool_event(v, "w2", pool_event_kind::draining);
  CHECK(drained.pool_changed == std::optional<std::string>("w2"));
  CHECK(v.pools().at("w2").latest.draining);
  feed_pool_event(v, "w2", pool_event_kind::undrained);
  CHECK_FALSE(v.pools().at("w2").latest.draining);

  auto left = feed_pool_event(v, "w1", pool_event_kind::left);
  CHECK(left.pool_gone == std::optional<std::string>("w1"));
  REQUIRE(left.tail);
  CHECK(left.tail->topic == "pools.w1");
  CHECK(left.tail->event == "left");
  CHECK(v.pools().count("w1") == 0);
  CHECK(v.counters().pool_events.at("left") == 1);
  feed_pool_event(v, "w2", pool_event_kind::stopped);
  CHECK(v.pools().empty());
}

TEST_CASE("cluster_view: alloc and exec events go to the tail and the counters") {
  cluster_view v(3);
  alloc_event a;
  a.pool = "w1";
  a.event = alloc_event_kind::created;
  a.alloc.id = "w1/a1";
  a.alloc.pool = "w1";
  a.ts_ms = 10;
  for (int i = 0; i < 4; ++i) v.on_message(allocs_topic("w1"), encode_alloc_event(a), 5000);
  a.event = alloc_event_kind::freed;
  auto freed = v.on_message(allocs_topic("w1"), encode_alloc_event(a), 5000);
  REQUIRE(freed.tail);
  CHECK(freed.tail->kind == "allocs");
  CHECK(v.counters().alloc_events.at("created") == 4);
  CHECK(v.counters().alloc_events.at("freed") == 1);
  auto tail = v.tail("", 10);
  REQUIRE(tail.size() == 3);  // the capacity
  CHECK(tail.back()->event == "freed");

  exec_event e;
  e.pool = "w1";
  e.event = exec_event_kind::completed;
  e.exec.id = "x1";
  e.exec.alloc = "w1/a1";
  v.on_message(execs_topic("w1"), encode_exec_event(e), 5000);
  CHECK(v.tail("execs.", 10).size() == 1);
  CHECK(v.tail("allocs.", 10).size() == 2);
  CHECK(v.counters().exec_events.at("completed") == 1);
}

TEST_CASE("cluster_view: garbage is counted and changes nothing") {
  cluster_view v;
  feed(v, offer("w1", 1, 4));
  for (const char* topic : {"offers.w1", "pools.w1", "allocs.w1", "execs.w1", "demand"}) {
    auto change = v.on_message(topic, "\x81\xa1x\xc3 trailing", 5000);
    CHECK_FALSE(change.pool_changed);
    CHECK_FALSE(change.tail);
  }
  CHECK(v.counters().malformed == 5);
  CHECK(v.pools().at("w1").latest.seq == 1);
  CHECK_FALSE(v.on_message("weather.today", "\x80", 5000).tail);
}

TEST_CASE("cluster_view: the queue follows demand events in the broker's order") {
  cluster_view v;
  feed_demand(v, demand_event_kind::queued, waiting("q1", 0, 100));
  feed_demand(v, demand_event_kind::queued, waiting("q2", 5, 200));
  feed_demand(v, demand_event_kind::queued, waiting("q3", 0, 50));
  auto again = feed_demand(v, demand_event_kind::queued, waiting("q3", 0, 50));  // a repeat adds nothing
  CHECK(again.queue_changed);
  REQUIRE(v.queue().size() == 3);
  CHECK(v.queue()[0].id == "q2");
  CHECK(v.queue()[1].id == "q3");
  CHECK(v.queue()[2].id == "q1");
  feed_demand(v, demand_event_kind::placed, waiting("q2", 5, 200));
  feed_demand(v, demand_event_kind::expired, waiting("q1", 0, 100));
  REQUIRE(v.queue().size() == 1);
  CHECK(v.queue()[0].id == "q3");
  CHECK(v.tail("demand", 10).size() == 6);  // the repeat too: it was on the stream
}

TEST_CASE("cluster_view: the API's snapshots add, heal and drop pools; the queue is replaced") {
  cluster_view v;
  feed(v, offer("heard", 1, 4), 9000);  // heard after the snapshot was asked: kept
  feed(v, offer("old", 1, 4), 1000);    // neither listed nor heard since: gone
  PoolStatus listed;
  listed.id = "listed";
  listed.resources = Resources{{"cpu", 2}};
  listed.available = Resources{{"cpu", 1}};
  listed.allocs = 1;
  listed.last_seen_ms = 4000;
  listed.draining = true;
  auto changed = v.on_pools_snapshot({listed}, 5000);
  CHECK(v.pools().count("heard") == 1);
  CHECK(v.pools().count("old") == 0);
  REQUIRE(v.pools().count("listed") == 1);
  CHECK(v.pools().at("listed").latest.draining);
  CHECK(std::find(changed.begin(), changed.end(), "old") != changed.end());
  CHECK(std::find(changed.begin(), changed.end(), "listed") != changed.end());
  // The first stream message of a snapshot pool supersedes it.
  auto a = offer("listed", 1, 2);
  a.draining = true;
  CHECK(feed(v, a, 9500).pool_changed);

  CHECK(v.on_queue_snapshot({waiting("b", 0, 2), waiting("a", 1, 3)}));
  CHECK(v.queue().front().id == "a");
  CHECK_FALSE(v.on_queue_snapshot({waiting("b", 0, 2), waiting("a", 1, 3)}));
}

TEST_CASE("cluster_view: the event rate counts the last ten seconds") {
  cluster_view v;
  for (int i = 0; i < 50; ++i) feed(v, offer("w1", 1, 4), 100000 + i * 100);  // 50 in 5 s
  CHECK(v.events_per_second(104999) == Approx(5.0));
  CHECK(v.events_per_second(120000) == Approx(0.0));
}
