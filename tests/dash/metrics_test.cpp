#include <catch2/catch.hpp>

#include "dash/cluster_metrics.hpp"
#include "schemas/worker_messages.hpp"

using namespace poolbus;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

}  // namespace

TEST_CASE("metrics_text: families once, label values escaped") {
  metrics_text out;
  out.family("x_total", "counter", "Things.\nMore.");
  out.sample("x_total", {{"pool", "a\"b\\c\nd"}}, 3);
  out.sample("x_total", {{"pool", "p"}}, 0.5);
  CHECK(out.text() ==
        "# HELP x_total Things. More.\n# TYPE x_total counter\n"
        "x_total{pool=\"a\\\"b\\\\c\\nd\"} 3\nx_total{pool=\"p\"} 0.5\n");
}

TEST_CASE("latency_histogram: cumulative buckets, sum and count per op") {
  latency_histogram h;
  h.observe("ping", 0.0002);
  h.observe("ping", 0.003);
  h.observe("ping", 30);
  metrics_text out;
  h.write(out, "lat_seconds", "Latency.");
  const std::string& t = out.text();
  CHECK(has_line(t, "lat_seconds_bucket{op=\"ping\",le=\"0.0001\"} 0"));
  CHECK(has_line(t, "lat_seconds_bucket{op=\"ping\",le=\"0.00025\"} 1"));
  CHECK(has_line(t, "lat_seconds_bucket{op=\"ping\",le=\"0.005\"} 2"));
  CHECK(has_line(t, "lat_seconds_bucket{op=\"ping\",le=\"10\"} 2"));
  CHECK(has_line(t, "lat_seconds_bucket{op=\"ping\",le=\"+Inf\"} 3"));
  CHECK(has_line(t, "lat_seconds_count{op=\"ping\"} 3"));
}

TEST_CASE("cluster metrics: the contract's series, in cores and bytes") {
  cluster_view v;
  offer_announcement a;
  a.pool = "w1";
  a.run = "r";
  a.seq = 1;
  a.resources = Resources{{"cpu", 4}, {"mem", 8 * GiB}};
  a.available = Resources{{"cpu", 3}, {"mem", 8 * GiB}};
  a.allocs = 1;
  v.on_message("offers.w1", encode_offer_announcement(a), 10000);
  alloc_event e;
  e.pool = "w1";
  e.alloc.id = "w1/1";
  v.on_message("allocs.w1", encode_alloc_event(e), 10000);
  metrics_text out;
  write_cluster_metrics(out, v, 12000);
  const std::string& t = out.text();
  CHECK(has_line(t, "poolbus_pools 1"));
  CHECK(has_line(t, "poolbus_pool_resources{pool=\"w1\",resource=\"cpu\"} 4"));
  CHECK(has_line(t, "poolbus_pool_resources{pool=\"w1\",resource=\"mem\"} 8589934592"));
  CHECK(has_line(t, "poolbus_pool_available{pool=\"w1\",resource=\"cpu\"} 3"));
  CHECK(has_line(t, "poolbus_pool_allocs{pool=\"w1\"} 1"));
  CHECK(has_line(t, "poolbus_pool_draining{pool=\"w1\"} 0"));
  CHECK(has_line(t, "poolbus_pool_last_seen_age_seconds{pool=\"w1\"} 2"));
  CHECK(has_line(t, "poolbus_queue_requests 0"));
  CHECK(has_line(t, "poolbus_alloc_events_total{event=\"created\"} 1"));
  CHECK(has_line(t, "poolbus_alloc_events_total{event=\"expired\"} 0"));
  CHECK(has_line(t, "poolbus_stream_messages_total{kind=\"offers\"} 1"));
  CHECK(has_line(t, "poolbus_stream_last_message_age_seconds 2"));
}
