#include <catch2/catch.hpp>

#include "dash/dash_json.hpp"
#include "dash/utf8_text.hpp"
#include "schemas/worker_messages.hpp"

using namespace poolbus;

TEST_CASE("dash_json: a pool as the page reads it") {
  pool_view p;
  p.latest.pool = "w\"1";
  p.latest.seq = 7;
  p.latest.resources = Resources{{"cpu", 4}};
  p.latest.available = Resources{{"cpu", 2.5}};
  p.latest.allocs = 2;
  p.latest.labels = {{"zone", "z1"}};
  p.last_seen_ms = 99;
  CHECK(pool_json(p) ==
        "{\"id\":\"w\\\"1\",\"resources\":{\"cpu\":4},\"available\":{\"cpu\":2.5},\"allocs\":2,"
        "\"labels\":{\"zone\":\"z1\"},\"draining\":false,\"last_seen_ms\":99,\"seq\":7,\"run\":\"\"}");
}

TEST_CASE("dash_json: a tail event embeds the stream body as JSON") {
  tail_event e{"pools.w1", "pools", "joined", "w1", 5, encode_pool_event({"w1", pool_event_kind::joined, 5})};
  const std::string json = tail_json(e);
  CHECK(json.find("\"topic\":\"pools.w1\"") != std::string::npos);
  CHECK(json.find("\"body\":{") != std::string::npos);
  CHECK(json.find("\"event\":\"joined\"") != std::string::npos);
}

TEST_CASE("dash_json: a log tail is valid UTF-8 whatever the bytes") {
  const std::string json = log_tail_json("ok \xff\xfe \xe2\x82\xac \xe2\x82", 12, false);
  CHECK(json ==
        "{\"text\":\"ok \xEF\xBF\xBD\xEF\xBF\xBD \xe2\x82\xac \xEF\xBF\xBD\xEF\xBF\xBD\",\"size\":12,\"eof\":false}");
}

TEST_CASE("dash_json: errors and the queue's reasons") {
  CHECK(error_json("invalid", "query: bad") == "{\"error\":{\"kind\":\"invalid\",\"message\":\"query: bad\"}}");
  cluster_view v;
  queue_entry q;
  q.id = "q1";
  q.min = Resources{{"cpu", 1}};
  v.on_queue_snapshot({q});
  CHECK(queue_json(v, 3).find("\"why\":\"no pool is connected\"") != std::string::npos);
}

TEST_CASE("utf8_text: well-formed or not, and the lossy form") {
  CHECK(valid_utf8("plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  for (const char* bad : {"\xff", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}) {
    INFO(bad);
    CHECK_FALSE(valid_utf8(bad));
    CHECK(valid_utf8(utf8_lossy(bad)));
  }
  CHECK(error_json("invalid", "uri \"\xff\"") ==
        "{\"error\":{\"kind\":\"invalid\",\"message\":\"uri \\\"\xEF\xBF\xBD\\\"\"}}");
}
