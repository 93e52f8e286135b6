// poolctl: the command line of poolbus (protocol.md "Command-line contract").
// Readable tables by default, the broker's reply as JSON with --json; errors
// go to stderr as one line and exit 1.
#include <chrono>
#include <iostream>

#include <spdlog/spdlog.h>

#include "apps/common/flags.hpp"
#include "apps/common/shutdown_latch.hpp"
#include "apps/poolctl/api_commands.hpp"
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

int fail(const pool_error& e) {
  std::cerr << "poolctl: " << e.to_string() << "\n";
  return 1;
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
  add_config_flag(app);
  broker_endpoints endpoints;
  bool json = false;
  int64_t timeout_ms = 10000;
  add_endpoint_list_flag(app, "--api", endpoints.api, "the broker's client API; EP1,EP2,...: fail over in turn");
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

  api_commands api;
  add_api_commands(app, api);
  std::string uri, topic, owner;
  Resources want, min;
  int64_t width = 0;
  auto* watch_cmd = app.add_subcommand("watch", "print the offer stream");
  watch_cmd->add_option("TOPIC", topic, "topic prefix (default: everything)");
  auto* hold = app.add_subcommand("hold", "take an alloc and keep it alive until Ctrl-C, then free it");
  hold->add_option("URI", uri, "offer URI to accept (else --min)");
  add_resources_flag(*hold, "--want", want, "with URI: what to take (default: the whole offer)");
  auto* hold_min = add_resources_flag(*hold, "--min", min, "allocate at least this");
  hold->add_option("--width", width, "with --min: take up to min*(1+width)")->check(CLI::NonNegativeNumber);
  hold->add_option("--owner", owner, "owner recorded in the alloc's meta");

  exec_commands execs;
  add_exec_commands(app, execs);

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
  if (execs.parsed()) return run_exec_command(execs, exec_ctx, std::move(run_cmd), latch);
  if (watch_cmd->parsed()) return watch(endpoints.stream, topic, json, latch, curve);
  if (hold->parsed()) {
    if (uri.empty() == (hold_min->count() == 0)) {
      std::cerr << "poolctl: hold takes an offer URI or --min, not both or neither\n";
      return 2;
    }
    return run_hold(hold_request{endpoints.api, uri, want, min, width, owner, timeout_ms, json, curve}, latch);
  }

  return run_api_command(api, endpoints.api, timeout_ms, json, curve);
}
