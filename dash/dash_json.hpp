// dash_json: the JSON bodies of pool-dash's /api endpoints and of its live
// stream's events (docs/dashboard.md lists them). Each is written as a
// MessagePack map and rendered by the one JSON renderer (schemas/json), so a
// field name or a number looks the same here as in `poolctl --json`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dash/cluster_view.hpp"
#include "schemas/exec.hpp"

namespace poolbus {

// The figures of /api/stats and of the stream's `stats` event.
struct dash_stats {
  int64_t now_ms = 0;
  double events_per_s = 0;
  size_t pools = 0;
  size_t queue = 0;
  bool broker_up = false;
  size_t sse_clients = 0;
};

std::string pool_json(const pool_view& pool);
std::string pools_json(const cluster_view& view, int64_t now_ms);  // {"now_ms", "pools": [...]}
std::string queue_json(const cluster_view& view, int64_t now_ms);  // {"now_ms", "queue": [... with "why"]}
std::string tail_json(const tail_event& event);
std::string events_json(const std::vector<const tail_event*>& events);  // {"events": [...]}
std::string stats_json(const dash_stats& stats);
// {"now_ms", "quiet": [...]}: every other pool was heard since the last one.
std::string seen_json(const std::vector<std::string>& quiet, int64_t now_ms);
std::string gone_json(std::string_view pool);
std::string hello_json(int64_t now_ms);
// What pool-dash read from the API for the page.
std::string allocs_json(const std::vector<AllocInspect>& allocs);  // {"allocs": [...]}
std::string alloc_detail_json(const AllocInspect& alloc, const std::vector<ExecInspect>& execs);
// {"text", "size", "eof"}: a log's tail as text (invalid UTF-8 shown as U+FFFD).
std::string log_tail_json(std::string_view bytes, int64_t size, bool eof);
// {"error": {"kind", "message"}}
std::string error_json(std::string_view kind, std::string_view message);
// A MessagePack body as JSON ("null" if it is not MessagePack).
std::string body_json(std::string_view msgpack_body);

}  // namespace poolbus
