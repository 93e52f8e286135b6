// pool-dash: the live web dashboard and Prometheus metrics of a poolbus
// cluster (protocol.md "Dashboard and metrics", docs/dashboard.md). A
// subscriber of the offer stream plus a client of the API: it never talks to
// workers and changes nothing. Its threads: the stream feed (the one writer
// of the view), the broker check (pings, snapshots for the feed), the HTTP
// server (a thread per connection), and main waiting for SIGINT/SIGTERM.
#include <algorithm>
#include <atomic>
#include <iostream>
#include <thread>

#include <spdlog/spdlog.h>

#include "apps/common/flags.hpp"
#include "apps/common/logging.hpp"
#include "apps/common/shutdown_latch.hpp"
#include "apps/pool-dash/broker_reader.hpp"
#include "apps/pool-dash/dash_server.hpp"
#include "apps/pool-dash/stream_feed.hpp"
#include "bus/endpoints.hpp"
#include "bus/stream_subscriber.hpp"

using namespace poolbus;

namespace {

struct dash_options {
  broker_endpoints endpoints;
  std::string http = "127.0.0.1:7710";
  int64_t timeout_ms = 5000;
  std::string curve_dir, client_name = "client", observer_name = "observer";
  std::string log_level = "info";
};

void add_flags(CLI::App& app, dash_options& o) {
  add_endpoint_list_flag(app, "--api", o.endpoints.api, "the broker's client API; EP1,EP2,...: fail over in turn");
  add_endpoint_list_flag(app, "--stream", o.endpoints.stream,
                         "the broker's offer stream; EP1,EP2,...: several brokers'");
  app.add_option("--http", o.http, "HOST:PORT to serve on (default 127.0.0.1:7710; loopback unless told)");
  add_duration_flag(app, "--timeout", o.timeout_ms, "how long one API call may take (default 5s)");
  app.add_option("--curve-dir", o.curve_dir, "CURVE: DIR holds the key pairs and broker.pub (docs/security.md)");
  app.add_option("--curve-name", o.client_name, "with --curve-dir: the client key for API reads (default client)");
  app.add_option("--observer-name", o.observer_name, "with --curve-dir: the key for the stream (default observer)");
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error");
}

// "host:port" (host may be [v6]); nullopt when malformed.
std::optional<std::pair<std::string, int>> split_host_port(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  try {
    size_t used = 0;
    const int port = std::stoi(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1 || port < 0 || port > 65535) return std::nullopt;
    return std::make_pair(host, port);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<curve_client_keys> keys_or_exit(const dash_options& o, const std::string& name) {
  if (o.curve_dir.empty()) return std::nullopt;
  auto keys = load_client_keys(o.curve_dir, name);
  if (!keys) {
    std::cerr << "pool-dash: " << keys.error().to_string() << "\n";
    std::exit(1);
  }
  return std::move(*keys);
}

int serve(const dash_options& o, const std::pair<std::string, int>& http, shutdown_latch& latch) {
  auto stream = stream_subscriber::connect(o.endpoints.stream, "", keys_or_exit(o, o.observer_name));
  if (!stream) return std::cerr << "pool-dash: " << stream.error().to_string() << "\n", 1;
  dashboard_state state;
  broker_reader check_reader(o.endpoints.api, std::min(o.timeout_ms, broker_check::timeout_ms),
                             keys_or_exit(o, o.client_name), state);
  broker_reader page_reader(o.endpoints.api, o.timeout_ms, keys_or_exit(o, o.client_name), state);
  httplib::Server server;
  install_dash_routes(server, state, page_reader);
  if (!server.bind_to_port(http.first, http.second))
    return std::cerr << "pool-dash: cannot listen on " << o.http << "\n", 1;
  if (http.first != "127.0.0.1" && http.first != "localhost" && http.first != "::1")
    spdlog::warn("serving on {}, beyond loopback: the dashboard has no login of its own", o.http);
  std::atomic<bool> stopping{false};
  auto stop = [&] { return stopping.load(); };
  broker_check check(state, check_reader);
  std::thread checker([&] { check.run(stop); });
  std::thread feed([&] { stream_feed(state, check, std::move(*stream)).run(stop); });
  std::thread web([&] { server.listen_after_bind(); });
  spdlog::info("pool-dash up: http://{}/ (api {}, stream {})", o.http, o.endpoints.api, o.endpoints.stream);
  const int exit_code = latch.wait();
  stopping = true;
  feed.join();  // closes the hub: every event stream ends
  checker.join();
  server.stop();
  web.join();
  spdlog::info("pool-dash stopped");
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  shutdown_latch latch;
  CLI::App app{"pool-dash: the live web dashboard and Prometheus metrics of a poolbus broker", "pool-dash"};
  dash_options o;
  add_flags(app, o);
  add_config_flag(app);
  if (int rc = parse_flags(app, argc, argv); rc >= 0) return rc;
  if (!setup_logging("pool-dash", o.log_level)) return std::cerr << "pool-dash: unknown --log-level\n", 2;
  auto http = split_host_port(o.http);
  if (!http) return std::cerr << "pool-dash: --http wants HOST:PORT, not " << o.http << "\n", 2;
  return serve(o, *http, latch);
}
