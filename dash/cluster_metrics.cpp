#include "dash/cluster_metrics.hpp"

#include <initializer_list>
#include <string>

namespace poolbus {
namespace {

void write_counter(metrics_text& out, const char* name, const char* help, const char* label,
                   std::initializer_list<const char*> known, const std::map<std::string, uint64_t>& counts) {
  std::map<std::string, uint64_t> all(counts);
  for (const char* k : known) all.emplace(k, 0);
  out.family(name, "counter", help);
  for (const auto& [key, n] : all) out.sample(name, {{label, key}}, static_cast<double>(n));
}

void write_pool_resources(metrics_text& out, const cluster_view& view, const char* name, const char* help,
                          Resources offer_announcement::*field) {
  out.family(name, "gauge", help);
  for (const auto& [id, pool] : view.pools())
    for (const auto& [resource, value] : (pool.latest.*field).values())
      out.sample(name, {{"pool", id}, {"resource", resource}}, value);
}

void write_pool_gauges(metrics_text& out, const cluster_view& view, int64_t now_ms) {
  out.family("poolbus_pools", "gauge", "Pools connected to the broker.");
  out.sample("poolbus_pools", static_cast<double>(view.pools().size()));
  write_pool_resources(out, view, "poolbus_pool_resources", "A pool's total resources (cpu cores, bytes).",
                       &offer_announcement::resources);
  write_pool_resources(out, view, "poolbus_pool_available", "A pool's resources not held by a live alloc.",
                       &offer_announcement::available);
  out.family("poolbus_pool_allocs", "gauge", "A pool's live allocs.");
  for (const auto& [id, pool] : view.pools())
    out.sample("poolbus_pool_allocs", {{"pool", id}}, static_cast<double>(pool.latest.allocs));
  out.family("poolbus_pool_draining", "gauge", "1 while a pool is drained.");
  for (const auto& [id, pool] : view.pools())
    out.sample("poolbus_pool_draining", {{"pool", id}}, pool.latest.draining ? 1 : 0);
  out.family("poolbus_pool_last_seen_age_seconds", "gauge", "Time since the stream last carried the pool.");
  for (const auto& [id, pool] : view.pools())
    out.sample("poolbus_pool_last_seen_age_seconds", {{"pool", id}}, (now_ms - pool.last_seen_ms) / 1000.0);
}

}  // namespace

void write_cluster_metrics(metrics_text& out, const cluster_view& view, int64_t now_ms) {
  write_pool_gauges(out, view, now_ms);
  out.family("poolbus_queue_requests", "gauge", "Requests waiting in the broker's queue.");
  out.sample("poolbus_queue_requests", static_cast<double>(view.queue().size()));
  const stream_counters& c = view.counters();
  write_counter(out, "poolbus_alloc_events_total", "Alloc events on the stream.", "event",
                {"created", "freed", "expired", "collected"}, c.alloc_events);
  write_counter(out, "poolbus_pool_events_total", "Pool membership events on the stream.", "event",
                {"joined", "left", "stopped", "draining", "undrained"}, c.pool_events);
  write_counter(out, "poolbus_exec_events_total", "Exec events on the stream.", "event",
                {"started", "completed", "lost"}, c.exec_events);
  write_counter(out, "poolbus_stream_messages_total", "Stream messages by topic kind.", "kind",
                {"offers", "pools", "allocs", "execs", "demand"}, c.messages);
  out.family("poolbus_stream_malformed_total", "counter", "Stream messages pool-dash could not decode.");
  out.sample("poolbus_stream_malformed_total", static_cast<double>(c.malformed));
  out.family("poolbus_stream_events_per_second", "gauge", "Stream messages per second over the last 10 s.");
  out.sample("poolbus_stream_events_per_second", view.events_per_second(now_ms));
  out.family("poolbus_stream_last_message_age_seconds", "gauge", "Time since the last stream message (-1: none yet).");
  out.sample("poolbus_stream_last_message_age_seconds",
             view.last_message_ms() ? (now_ms - view.last_message_ms()) / 1000.0 : -1.0);
}

}  // namespace poolbus
