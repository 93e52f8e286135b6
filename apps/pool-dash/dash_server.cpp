#include "apps/pool-dash/dash_server.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <memory>

#include "apps/pool-dash/connection_threads.hpp"
#include "apps/pool-dash/stream_feed.hpp"
#include "apps/pool-dash/web_assets.hpp"
#include "dash/cluster_metrics.hpp"
#include "dash/dash_json.hpp"
#include "dash/query_string.hpp"

namespace poolbus {
namespace {

using httplib::Request;
using httplib::Response;
using query = std::map<std::string, std::string>;

constexpr auto sse_keepalive = std::chrono::seconds(15);  // a comment line when idle
constexpr int64_t max_tail_events = 1000;
constexpr int64_t default_log_tail = 16 * 1024;
constexpr int64_t max_log_tail = 1 << 20;
constexpr int max_log_chunks = 256;  // exec_logs reads per /api/logs (16 MiB of log at most)

void reply_json(Response& res, int status, std::string body) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(std::move(body), "application/json");
}

void reply_error(Response& res, const pool_error& e) {
  const int status = e.kind == error_kind::invalid        ? 400
                     : e.kind == error_kind::not_exist    ? 404
                     : e.kind == error_kind::unauthorized ? 403
                                                          : 502;
  reply_json(res, status, error_json(to_string(e.kind), e.message));
}

// The request's query, or a 400 already written.
std::optional<query> read_query(const Request& req, Response& res, const std::set<std::string>& known) {
  auto parsed = parse_query(req.target, known);
  if (!parsed) return reply_error(res, parsed.error()), std::nullopt;
  return std::move(*parsed);
}

// An integer parameter in [low, high], else `fallback` when absent; nullopt (400 written) when bad.
std::optional<int64_t> int_param(const query& q, const std::string& name, int64_t fallback, int64_t low, int64_t high,
                                 Response& res) {
  auto it = q.find(name);
  if (it == q.end()) return fallback;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), value);
  if (ec != std::errc() || end != it->second.data() + it->second.size() || value < low || value > high) {
    reply_error(res, make_pool_error(error_kind::invalid, name + ": an integer in [" + std::to_string(low) + ", " +
                                                              std::to_string(high) + "]"));
    return std::nullopt;
  }
  return value;
}

// A required parameter, non-empty; nullopt (400 written) when absent.
std::optional<std::string> required_param(const query& q, const std::string& name, Response& res) {
  auto it = q.find(name);
  if (it == q.end() || it->second.empty())
    return reply_error(res, make_pool_error(error_kind::invalid, name + ": missing")), std::nullopt;
  return it->second;
}

void install_static(httplib::Server& server) {
  for (const web_asset& asset : web_assets()) {
    auto serve = [asset](const Request&, Response& res) {
      res.set_header("Cache-Control", "no-cache");
      res.set_content(std::string(asset.body), std::string(asset.content_type).c_str());
    };
    server.Get(std::string(asset.path), serve);
    if (asset.path == "/index.html") server.Get("/", serve);
  }
  server.Get("/healthz", [](const Request&, Response& res) { res.set_content("ok\n", "text/plain"); });
}

void install_view_reads(httplib::Server& server, dashboard_state& state) {
  server.Get("/api/pools", [&state](const Request& req, Response& res) {
    if (!read_query(req, res, {})) return;
    std::lock_guard<std::mutex> lock(state.mutex);
    reply_json(res, 200, pools_json(state.view, wall_ms()));
  });
  server.Get("/api/queue", [&state](const Request& req, Response& res) {
    if (!read_query(req, res, {})) return;
    std::lock_guard<std::mutex> lock(state.mutex);
    reply_json(res, 200, queue_json(state.view, wall_ms()));
  });
  server.Get("/api/events", [&state](const Request& req, Response& res) {
    auto q = read_query(req, res, {"topic", "limit"});
    if (!q) return;
    auto limit = int_param(*q, "limit", 200, 1, max_tail_events, res);
    if (!limit) return;
    std::lock_guard<std::mutex> lock(state.mutex);
    reply_json(res, 200, events_json(state.view.tail((*q)["topic"], static_cast<size_t>(*limit))));
  });
  server.Get("/api/stats", [&state](const Request& req, Response& res) {
    if (!read_query(req, res, {})) return;
    std::lock_guard<std::mutex> lock(state.mutex);
    reply_json(res, 200, stats_json(stats_of(state, wall_ms())));
  });
}

void serve_allocs(broker_reader& reader, const Request& req, Response& res) {
  auto q = read_query(req, res, {"owner", "pool"});
  if (!q) return;
  auto allocs = reader.run("allocs", [&](pool_client& c) { return c.allocs((*q)["pool"]); });
  if (!allocs) return reply_error(res, allocs.error());
  if (q->count("owner")) {
    const std::string owner = (*q)["owner"];
    std::vector<AllocInspect> kept;
    for (auto& a : *allocs)
      if (a.meta.owner == owner) kept.push_back(std::move(a));
    *allocs = std::move(kept);
  }
  reply_json(res, 200, allocs_json(*allocs));
}

void serve_alloc(broker_reader& reader, const Request& req, Response& res) {
  auto q = read_query(req, res, {"uri"});
  if (!q) return;
  auto uri = required_param(*q, "uri", res);
  if (!uri) return;
  auto alloc = reader.run("inspect", [&](pool_client& c) { return c.inspect(*uri); });
  if (!alloc) return reply_error(res, alloc.error());
  auto execs = reader.run("execs", [&](pool_client& c) { return c.exec(make_exec_call(exec_op::list, *uri, "")); });
  if (!execs) return reply_error(res, execs.error());
  reply_json(res, 200, alloc_detail_json(*alloc, execs->execs));
}

// Reads the log forward in chunks, keeping its last `tail` bytes.
void serve_logs(broker_reader& reader, const Request& req, Response& res) {
  auto q = read_query(req, res, {"alloc", "exec", "stream", "tail"});
  if (!q) return;
  auto alloc = required_param(*q, "alloc", res);
  auto exec = alloc ? required_param(*q, "exec", res) : std::nullopt;
  auto tail = exec ? int_param(*q, "tail", default_log_tail, 1, max_log_tail, res) : std::nullopt;
  if (!tail) return;
  const std::string stream = q->count("stream") ? (*q)["stream"] : "stdout";
  if (stream != "stdout" && stream != "stderr")
    return reply_error(res, make_pool_error(error_kind::invalid, "stream: stdout or stderr"));
  exec_call call = make_exec_call(exec_op::logs, *alloc, *exec);
  call.stream = stream;
  call.max_bytes = max_exec_chunk_bytes;
  std::string kept;
  bool eof = false;
  for (int n = 0; n < max_log_chunks && !eof; ++n) {
    auto chunk = reader.run("exec_logs", [&](pool_client& c) { return c.exec(call); });
    if (!chunk) return reply_error(res, chunk.error());
    kept += chunk->data;
    if (kept.size() > static_cast<size_t>(*tail)) {
      kept.erase(0, kept.size() - static_cast<size_t>(*tail));
      size_t rest = 0;  // a cut inside a UTF-8 character drops its remains (continuation bytes)
      while (rest < kept.size() && rest < 3 && (static_cast<unsigned char>(kept[rest]) & 0xC0) == 0x80) ++rest;
      kept.erase(0, rest);
    }
    call.offset = chunk->offset;
    eof = chunk->eof;
    if (chunk->data.empty()) break;
  }
  reply_json(res, 200, log_tail_json(kept, call.offset, eof));
}

void install_broker_reads(httplib::Server& server, broker_reader& reader) {
  server.Get("/api/allocs", [&reader](const Request& req, Response& res) { serve_allocs(reader, req, res); });
  server.Get("/api/alloc", [&reader](const Request& req, Response& res) { serve_alloc(reader, req, res); });
  server.Get("/api/logs", [&reader](const Request& req, Response& res) { serve_logs(reader, req, res); });
}

// One browser's event stream: hello, then whatever the hub holds after its cursor.
void serve_stream(dashboard_state& state, const Request& req, Response& res) {
  if (!read_query(req, res, {})) return;
  auto session = std::make_shared<event_hub::session>(state.hub);
  // `retry`: how soon a browser reconnects after the stream ends (a reset, a restart).
  auto hello = std::make_shared<std::string>("retry: 2000\n" + event_hub::frame("hello", hello_json(wall_ms())));
  res.set_header("Cache-Control", "no-store");
  res.set_chunked_content_provider(
      "text/event-stream",
      [&state, session, hello](size_t, httplib::DataSink& sink) {
        if (!hello->empty()) {
          std::string first = std::move(*hello);
          hello->clear();
          return sink.write(first.data(), first.size());
        }
        auto got = state.hub.read(session->cursor, sse_keepalive);
        if (got.closed) return false;
        if (got.behind) {
          const std::string reset = event_hub::frame("reset", "{}");
          sink.write(reset.data(), reset.size());
          return false;  // the page reconnects and refetches
        }
        if (got.data.empty()) got.data = ": keepalive\n\n";
        return sink.write(got.data.data(), got.data.size());
      },
      [session](bool) {});
}

void serve_metrics(dashboard_state& state, const Request& req, Response& res) {
  if (!read_query(req, res, {})) return;
  metrics_text out;
  {
    std::lock_guard<std::mutex> lock(state.mutex);
    write_cluster_metrics(out, state.view, wall_ms());
  }
  out.family("poolbus_broker_up", "gauge", "1 while the broker answers pool-dash's pings.");
  out.sample("poolbus_broker_up", state.broker_up ? 1 : 0);
  out.family("poolbus_dash_sse_clients", "gauge", "Browsers connected to the live event stream.");
  out.sample("poolbus_dash_sse_clients", static_cast<double>(state.hub.readers()));
  out.family("poolbus_dash_sse_dropped_total", "counter", "Event streams ended because their reader fell behind.");
  out.sample("poolbus_dash_sse_dropped_total", static_cast<double>(state.hub.dropped()));
  out.family("poolbus_dash_api_errors_total", "counter", "pool-dash's API calls that failed.");
  out.sample("poolbus_dash_api_errors_total", static_cast<double>(state.api_errors.load()));
  state.latency.write(out, "poolbus_dash_api_request_duration_seconds",
                      "Latency of pool-dash's own calls to the broker's API, by op.");
  res.set_content(out.text(), "text/plain; version=0.0.4; charset=utf-8");
}

// httplib's own refusals (no route, a target over its limit) as JSON errors;
// an over-long target is a bad query like any other (400, not 414).
httplib::Server::HandlerResponse on_error(const Request&, Response& res) {
  if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
  if (res.status == 414) res.status = 400;
  const bool missing = res.status == 404;
  reply_json(res, res.status, error_json(missing ? "not_exist" : "invalid", missing ? "no such path" : "bad request"));
  return httplib::Server::HandlerResponse::Handled;
}

}  // namespace

void install_dash_routes(httplib::Server& server, dashboard_state& state, broker_reader& reader) {
  server.new_task_queue = [] { return new connection_threads(); };
  server.set_keep_alive_timeout(2);
  server.set_read_timeout(5);
  install_static(server);
  install_view_reads(server, state);
  install_broker_reads(server, reader);
  server.Get("/api/stream", [&state](const Request& req, Response& res) { serve_stream(state, req, res); });
  server.Get("/metrics", [&state](const Request& req, Response& res) { serve_metrics(state, req, res); });
  server.set_error_handler(httplib::Server::HandlerWithResponse(on_error));
  server.set_exception_handler([](const Request& req, Response& res, std::exception_ptr) {
    spdlog::error("http: {} {} failed with an exception", req.method, req.path);
    reply_json(res, 500, error_json("internal", "request failed"));
  });
}

}  // namespace poolbus
