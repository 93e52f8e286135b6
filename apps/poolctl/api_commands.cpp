#include "apps/poolctl/api_commands.hpp"

#include <algorithm>
#include <chrono>
#include <iostream>

#include "apps/common/flags.hpp"
#include "apps/poolctl/tables.hpp"
#include "bus/pool_client.hpp"
#include "schemas/json.hpp"
#include "schemas/units.hpp"

namespace poolbus {
namespace {

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

int fail(const pool_error& e) {
  std::cerr << "poolctl: " << e.to_string() << "\n";
  return 1;
}

outcome<Labels> parse_labels(const std::vector<std::string>& items) {
  Labels labels;
  for (const auto& item : items) {
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      return pool_error{error_kind::invalid, "label \"" + item + "\" is not key=value"};
    labels[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return labels;
}

// --json: print the broker's reply body as JSON; exit 1 (with the error on stderr) when it says ok=false.
int print_json_reply(pool_client& client, api_request request, int64_t extra_ms) {
  auto body = client.call_raw(std::move(request), extra_ms);
  if (!body) return fail(body.error());
  auto json = msgpack_to_json(*body);
  if (!json) return fail(json.error());
  std::cout << *json << "\n";
  auto reply = decode_api_reply(*body);
  if (!reply) return fail(reply.error());
  return 0;
}

void print_reply(const api_request& request, const api_reply& reply) {
  switch (request.op) {
    case api_op::pools: print_pools(std::cout, reply.pools, now_ms()); break;
    case api_op::offers: print_offers(std::cout, reply.offers); break;
    case api_op::allocs: print_allocs(std::cout, reply.allocs, now_ms()); break;
    case api_op::inspect:
    case api_op::accept:
    case api_op::allocate:
      if (request.place.gang)
        print_allocs(std::cout, reply.allocs, now_ms());
      else
        print_alloc(std::cout, reply.alloc, now_ms());
      break;
    case api_op::queue: print_queue(std::cout, reply.queue, now_ms()); break;
    case api_op::quotas: print_quotas(std::cout, reply.quotas); break;
    case api_op::drain:
      std::cout << "pool " << reply.pool.id << (reply.pool.draining ? " is draining" : " is no longer draining") << " ("
                << reply.pool.allocs << " allocs)\n";
      break;
    case api_op::keepalive:
      std::cout << "lease of " << request.uri << " renewed for " << format_duration(reply.interval_ms) << "\n";
      break;
    case api_op::free: std::cout << "freed " << request.uri << "\n"; break;
    default: break;
  }
}

}  // namespace

void add_api_commands(CLI::App& app, api_commands& c) {
  c.pools = app.add_subcommand("pools", "list the live pools");
  c.offers = app.add_subcommand("offers", "list every pool's offer");
  c.allocs = app.add_subcommand("allocs", "list allocs");
  c.allocs->add_option("--pool", c.pool_filter, "only this pool's allocs");
  c.inspect = app.add_subcommand("inspect", "show an alloc");
  c.inspect->add_option("URI", c.uri, "alloc URI <pool>/<id>")->required();
  c.accept = app.add_subcommand("accept", "accept an offer");
  c.accept->add_option("URI", c.uri, "offer URI <pool>/<id>")->required();
  add_resources_flag(*c.accept, "--want", c.want, "what to take")->required();
  c.accept->add_option("--owner", c.owner, "owner recorded in the alloc's meta");
  c.accept->add_option("--label", c.labels, "label key=value (repeatable)");
  c.allocate = app.add_subcommand("allocate", "let the broker place a requirement");
  add_resources_flag(*c.allocate, "--min", c.min, "the least to take")->required();
  c.allocate->add_option("--width", c.width, "take up to min*(1+width)")->check(CLI::NonNegativeNumber);
  c.allocate->add_option("--owner", c.owner, "owner recorded in the alloc's meta");
  c.allocate->add_option("--label", c.labels, "label key=value (repeatable)");
  add_duration_flag(*c.allocate, "--wait", c.wait_ms, "wait in the broker's queue up to this long (at most 24h)");
  c.allocate->add_option("--priority", c.priority, "queue order: higher first (default 0)");
  c.allocate->add_option("--count", c.count, "a gang: this many allocs, all or none")
      ->check([](const std::string& text) { return std::stoll(text) >= 1 ? std::string() : "must be at least 1"; });
  c.allocate->add_flag("--spread", c.spread, "with --count: each alloc on a different pool");
  c.allocate->add_option("--constraint", c.constraints, "KEY=VALUE[,VALUE...]: only pools so labelled (repeatable)");
  c.queue = app.add_subcommand("queue", "list the requests waiting in the broker's queue");
  c.quotas = app.add_subcommand("quotas", "list the owners' quotas and what they use");
  c.drain = app.add_subcommand("drain", "drain a pool: it keeps its allocs but takes no new ones");
  c.drain->add_option("POOL", c.pool, "pool id")->required();
  c.drain->add_flag("--undo", c.undo, "take new allocs again");
  c.keepalive = app.add_subcommand("keepalive", "renew an alloc's lease");
  c.keepalive->add_option("URI", c.uri, "alloc URI")->required();
  add_duration_flag(*c.keepalive, "--interval", c.interval_ms, "lease to ask for (at most 5m)")->required();
  c.free = app.add_subcommand("free", "free an alloc");
  c.free->add_option("URI", c.uri, "alloc URI")->required();
}

bool api_commands::parsed() const {
  for (auto* command : {pools, offers, allocs, inspect, accept, allocate, keepalive, free, queue, quotas, drain})
    if (command && command->parsed()) return true;
  return false;
}

outcome<placement> api_commands::placement_of() const {
  placement p;
  p.min = min;
  p.width = width;
  p.wait_ms = wait_ms;
  p.priority = priority;
  p.gang = count > 0;
  p.count = std::max<int64_t>(count, 1);
  p.spread = spread;
  for (const auto& text : constraints) {
    auto constraint = parse_constraint(text);
    if (!constraint) return pool_error{error_kind::invalid, "--constraint: " + constraint.error().message};
    p.constraints[constraint->first] = constraint->second;
  }
  if (auto refused = placement_refusal(p)) return *refused;
  return p;
}

outcome<api_request> api_commands::request() const {
  auto parsed_labels = parse_labels(labels);
  if (!parsed_labels) return parsed_labels.error();
  api_request request;
  for (auto* command : {inspect, accept, keepalive, free})
    if (command->parsed()) request.uri = uri;
  if (pools->parsed()) request.op = api_op::pools;
  if (offers->parsed()) request.op = api_op::offers;
  if (allocs->parsed()) {
    request.op = api_op::allocs;
    request.pool = pool_filter;
  }
  if (inspect->parsed()) request.op = api_op::inspect;
  if (accept->parsed()) {
    request.op = api_op::accept;
    request.meta = AllocMeta{want, owner, *parsed_labels};
  }
  if (allocate->parsed()) {
    auto place = placement_of();
    if (!place) return place.error();
    request.op = api_op::allocate;
    request.meta = AllocMeta{{}, owner, *parsed_labels};
    request.place = std::move(*place);
  }
  if (queue->parsed()) request.op = api_op::queue;
  if (quotas->parsed()) request.op = api_op::quotas;
  if (drain->parsed()) {
    request.op = api_op::drain;
    request.pool = pool;
    request.drain = !undo;
  }
  if (keepalive->parsed()) {
    request.op = api_op::keepalive;
    request.interval_ms = interval_ms;
  }
  if (free->parsed()) request.op = api_op::free;
  return request;
}

int run_api_command(const api_commands& commands, const std::string& api, int64_t timeout_ms, bool json,
                    const std::optional<curve_client_keys>& curve) {
  auto request = commands.request();
  if (!request) return fail(request.error());
  auto connected = pool_client::connect(api, timeout_ms, curve);
  if (!connected) return fail(connected.error());
  auto& client = **connected;
  auto extra_ms = request->op == api_op::allocate ? request->place.wait_ms : 0;  // a wait is no timeout
  if (json) return print_json_reply(client, std::move(*request), extra_ms);
  auto body = client.call_raw(*request, extra_ms);
  if (!body) return fail(body.error());
  auto reply = decode_api_reply(*body);
  if (!reply) return fail(reply.error());
  print_reply(*request, *reply);
  return 0;
}

}  // namespace poolbus
