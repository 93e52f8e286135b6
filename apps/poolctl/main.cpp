// poolctl: the command line of poolbus (protocol.md "Command-line contract").
// Readable tables by default, the broker's reply as JSON with --json; errors
// go to stderr as one line and exit 1.
#include <chrono>
#include <iostream>

#include <spdlog/spdlog.h>

#include "apps/common/flags.hpp"
#include "apps/common/shutdown_latch.hpp"
#include "apps/poolctl/exec_commands.hpp"
#include "apps/poolctl/hold.hpp"
#include "apps/poolctl/keygen.hpp"
#include "apps/poolctl/tables.hpp"
#include "bus/endpoints.hpp"
#include "bus/pool_client.hpp"
#include "bus/stream_subscriber.hpp"
#include "schemas/json.hpp"
#include "schemas/units.hpp"

using namespace poolbus;

namespace {

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

int fail(const pool_error& e) {
  std::cerr << "poolctl: " << e.to_string() << "\n";
  return 1;
}

// --json: print the broker's reply body as JSON; exit 1 (with the error on stderr) when it says ok=false.
int print_json_reply(pool_client& client, api_request request) {
  auto body = client.call_raw(std::move(request));
  if (!body) return fail(body.error());
  auto json = msgpack_to_json(*body);
  if (!json) return fail(json.error());
  std::cout << *json << "\n";
  auto reply = decode_api_reply(*body);
  if (!reply) return fail(reply.error());
  return 0;
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

int watch(const std::string& stream, const std::string& topic, bool json, shutdown_latch& latch,
          const std::optional<curve_client_keys>& curve) {
  auto sub = stream_subscriber::connect(stream, topic, curve);
  if (!sub) return fail(sub.error());
  while (!latch.wait_for(std::chrono::milliseconds(0))) {
    auto message = (*sub)->next(200);
    if (!message) {
      if (message.error().kind == error_kind::timeout) continue;
      return fail(message.error());
    }
    auto body = msgpack_to_json(message->second);
    if (!body) continue;
    if (json)
      std::cout << "{\"topic\":\"" << message->first << "\",\"body\":" << *body << "}" << std::endl;
    else
      std::cout << message->first << "  " << *body << std::endl;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // `run ... -- CMD [ARG...]`: everything after the first "--" is the command,
  // kept away from the flag parser (its arguments may look like flags).
  std::vector<std::string> run_cmd;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--") {
      run_cmd.assign(argv + i + 1, argv + argc);
      argc = i;
      break;
    }
  shutdown_latch latch;
  CLI::App app{"poolctl: inspect and use a poolbus broker", "poolctl"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags (--json, --api, ...) may follow the subcommand
  broker_endpoints endpoints;
  bool json = false;
  int64_t timeout_ms = 10000;
  add_endpoint_flag(app, "--api", endpoints.api, "the broker's client API");
  add_endpoint_flag(app, "--stream", endpoints.stream, "the broker's offer stream");
  add_duration_flag(app, "--timeout", timeout_ms, "how long to wait for the broker (default 10s)");
  app.add_flag("--json", json, "print the broker's reply as JSON");
  std::string curve_dir, curve_name = "client";
  app.add_option("--curve-dir", curve_dir, "CURVE: DIR holds NAME.key (0600) and broker.pub (docs/security.md)");
  app.add_option("--curve-name", curve_name, "with --curve-dir: the key pair's name (default client)");
  keygen_request keygen_args;
  auto* keygen = app.add_subcommand("keygen", "write a CURVE key pair NAME.key (0600) + NAME.pub into DIR");
  keygen->add_option("--out", keygen_args.out_dir, "directory to write into")->required();
  keygen->add_option("--name", keygen_args.name, "the key pair's name (e.g. alice, w1, broker)")->required();
  keygen->add_option("--role", keygen_args.role, "role for the printed authorized_keys line (default client)");

  std::string uri, topic, owner;
  std::vector<std::string> labels;
  Resources want, min;
  int64_t width = 0, interval_ms = 0;

  auto* pools = app.add_subcommand("pools", "list the live pools");
  auto* offers = app.add_subcommand("offers", "list every pool's offer");
  auto* allocs = app.add_subcommand("allocs", "list allocs");
  std::string pool_filter;
  allocs->add_option("--pool", pool_filter, "only this pool's allocs");
  auto* inspect = app.add_subcommand("inspect", "show an alloc");
  inspect->add_option("URI", uri, "alloc URI <pool>/<id>")->required();
  auto* accept = app.add_subcommand("accept", "accept an offer");
  accept->add_option("URI", uri, "offer URI <pool>/<id>")->required();
  add_resources_flag(*accept, "--want", want, "what to take")->required();
  accept->add_option("--owner", owner, "owner recorded in the alloc's meta");
  accept->add_option("--label", labels, "label key=value (repeatable)");
  auto* allocate = app.add_subcommand("allocate", "let the broker place a requirement");
  add_resources_flag(*allocate, "--min", min, "the least to take")->required();
  allocate->add_option("--width", width, "take up to min*(1+width)")->check(CLI::NonNegativeNumber);
  allocate->add_option("--owner", owner, "owner recorded in the alloc's meta");
  allocate->add_option("--label", labels, "label key=value (repeatable)");
  auto* keepalive = app.add_subcommand("keepalive", "renew an alloc's lease");
  keepalive->add_option("URI", uri, "alloc URI")->required();
  add_duration_flag(*keepalive, "--interval", interval_ms, "lease to ask for (at most 5m)")->required();
  auto* free_cmd = app.add_subcommand("free", "free an alloc");
  free_cmd->add_option("URI", uri, "alloc URI")->required();
  auto* watch_cmd = app.add_subcommand("watch", "print the offer stream");
  watch_cmd->add_option("TOPIC", topic, "topic prefix (default: everything)");
  auto* hold = app.add_subcommand("hold", "take an alloc and keep it alive until Ctrl-C, then free it");
  hold->add_option("URI", uri, "offer URI to accept (else --min)");
  add_resources_flag(*hold, "--want", want, "with URI: what to take (default: the whole offer)");
  auto* hold_min = add_resources_flag(*hold, "--min", min, "allocate at least this");
  hold->add_option("--width", width, "with --min: take up to min*(1+width)")->check(CLI::NonNegativeNumber);
  hold->add_option("--owner", owner, "owner recorded in the alloc's meta");

  auto* execs_cmd = app.add_subcommand("execs", "list an alloc's execs");
  execs_cmd->add_option("URI", uri, "alloc URI")->required();
  std::string exec_id;
  bool logs_stderr = false, logs_follow = false;
  auto* logs_cmd = app.add_subcommand("logs", "print an exec's output");
  logs_cmd->add_option("URI", uri, "alloc URI")->required();
  logs_cmd->add_option("EXEC", exec_id, "exec id")->required();
  logs_cmd->add_flag("--stderr", logs_stderr, "stderr instead of stdout");
  logs_cmd->add_flag("--follow,-f", logs_follow, "keep printing until the exec completes");
  run_command_request run_args;
  auto* run_cmd_flag = app.add_subcommand("run", "run a command in an alloc: run (URI | --min RES) [--id ID] "
                                                 "[--output PATH]... -- CMD [ARG...]");
  run_cmd_flag->add_option("URI", run_args.alloc_uri, "alloc URI (else --min)");
  auto* run_min = add_resources_flag(*run_cmd_flag, "--min", run_args.min, "allocate at least this, free after");
  run_cmd_flag->add_option("--id", run_args.exec_id, "exec id (default: a fresh one)");
  run_cmd_flag->add_option("--output", run_args.outputs, "an output file to keep in the alloc's repository");

  if (int rc = parse_flags(app, argc, argv); rc >= 0) return rc;
  spdlog::set_level(spdlog::level::warn);  // a command-line tool: its output is the answer, not our events

  if (keygen->parsed()) return run_keygen(keygen_args);
  std::optional<curve_client_keys> curve;
  if (!curve_dir.empty()) {
    auto keys = load_client_keys(curve_dir, curve_name);
    if (!keys) return fail(keys.error());
    curve = std::move(*keys);
  }
  exec_command_context exec_ctx{endpoints.api, timeout_ms, json, curve};
  if (execs_cmd->parsed()) return run_execs_command(exec_ctx, uri);
  if (logs_cmd->parsed()) return run_logs_command(exec_ctx, uri, exec_id, logs_stderr, logs_follow, latch);
  if (run_cmd_flag->parsed()) {
    if (run_args.alloc_uri.empty() == (run_min->count() == 0)) {
      std::cerr << "poolctl: run takes an alloc URI or --min, not both or neither\n";
      return 2;
    }
    if (run_cmd.empty()) {
      std::cerr << "poolctl: run needs a command after --\n";
      return 2;
    }
    run_args.cmd = run_cmd;
    return run_run_command(exec_ctx, run_args, latch);
  }
  if (watch_cmd->parsed()) return watch(endpoints.stream, topic, json, latch, curve);
  if (hold->parsed()) {
    if (uri.empty() == (hold_min->count() == 0)) {
      std::cerr << "poolctl: hold takes an offer URI or --min, not both or neither\n";
      return 2;
    }
    return run_hold(hold_request{endpoints.api, uri, want, min, width, owner, timeout_ms, json, curve}, latch);
  }

  auto parsed_labels = parse_labels(labels);
  if (!parsed_labels) return fail(parsed_labels.error());
  auto connected = pool_client::connect(endpoints.api, timeout_ms, curve);
  if (!connected) return fail(connected.error());
  auto& client = **connected;

  api_request request;
  if (pools->parsed()) {
    request.op = api_op::pools;
  } else if (offers->parsed()) {
    request.op = api_op::offers;
  } else if (allocs->parsed()) {
    request.op = api_op::allocs;
    request.pool = pool_filter;
  } else if (inspect->parsed()) {
    request.op = api_op::inspect;
    request.uri = uri;
  } else if (accept->parsed()) {
    request.op = api_op::accept;
    request.uri = uri;
    request.meta = AllocMeta{want, owner, *parsed_labels};
  } else if (allocate->parsed()) {
    request.op = api_op::allocate;
    request.meta = AllocMeta{min, owner, *parsed_labels};
    request.width = width;
  } else if (keepalive->parsed()) {
    request.op = api_op::keepalive;
    request.uri = uri;
    request.interval_ms = interval_ms;
  } else if (free_cmd->parsed()) {
    request.op = api_op::free;
    request.uri = uri;
  }
  if (json) return print_json_reply(client, std::move(request));

  auto body = client.call_raw(request);
  if (!body) return fail(body.error());
  auto reply = decode_api_reply(*body);
  if (!reply) return fail(reply.error());
  switch (request.op) {
    case api_op::pools: print_pools(std::cout, reply->pools, now_ms()); break;
    case api_op::offers: print_offers(std::cout, reply->offers); break;
    case api_op::allocs: print_allocs(std::cout, reply->allocs, now_ms()); break;
    case api_op::inspect:
    case api_op::accept:
    case api_op::allocate: print_alloc(std::cout, reply->alloc, now_ms()); break;
    case api_op::keepalive: std::cout << "lease of " << uri << " renewed for " << format_duration(reply->interval_ms) << "\n"; break;
    case api_op::free: std::cout << "freed " << uri << "\n"; break;
    default: break;
  }
  return 0;
}
