// pool-worker: one pool of resources on this machine, served to a broker.
// Wiring only: flags, the pool and worker actors, and the I/O thread that
// owns the announce PUB and the DEALER to the broker.
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <random>

#include "actors/pool_actor.hpp"
#include "exec/process_supervisor.hpp"
#include "actors/worker_actor.hpp"
#include "apps/common/actor_settings.hpp"
#include "apps/common/flags.hpp"
#include "apps/common/logging.hpp"
#include "apps/common/shutdown_latch.hpp"
#include "apps/pool-worker/exec_setup.hpp"
#include "apps/pool-worker/machine_resources.hpp"
#include "schemas/placement.hpp"
#include "bus/endpoints.hpp"
#include "bus/io_thread.hpp"
#include "bus/security.hpp"
#include "schemas/worker_messages.hpp"
#include "store/state_store.hpp"

using namespace poolbus;

namespace {

std::string new_run_id() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(gen()));
  return buf;
}

std::string default_state_dir(const std::string& id) {
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "/tmp") + "/.local/state/poolbus/" + id;
}

// The peer id broker `i` of several is addressed by on the worker's ROUTER.
std::string broker_peer_id(size_t i) { return "broker-" + std::to_string(i); }

// Routes one message from a broker's ROUTER to the worker actor, or answers a
// malformed one at once (it never reaches an actor). With one broker the
// message is [body] (a DEALER); with several, [peer id, body] (a ROUTER).
void on_broker_message(std::vector<std::string>&& frames, const caf::actor& worker, frame_sink& sink,
                       const std::vector<std::string>& brokers) {
  const size_t want = brokers.empty() ? 1 : 2;
  if (frames.size() != want) {
    spdlog::warn("dropped a broker message of {} frames (want {})", frames.size(), want);
    return;
  }
  auto from = brokers.empty() ? brokers.end() : std::find(brokers.begin(), brokers.end(), frames.front());
  if (!brokers.empty() && from == brokers.end()) return;  // not one of ours: cannot be (we name them)
  uint64_t rid = 0;
  auto request = decode_worker_request(frames.back(), &rid);
  if (request) {
    request->broker = brokers.empty() ? 0 : static_cast<uint32_t>(from - brokers.begin());
    caf::anon_send(worker, wrequest_atom::value, std::move(*request));
    return;
  }
  spdlog::warn("malformed request from the broker: {}", request.error().to_string());
  if (rid == 0) return;
  worker_reply reply;
  reply.rid = rid;
  reply.ok = false;
  reply.error = request.error();
  frames.back() = encode_worker_reply(reply);
  sink.post({channel::broker, std::move(frames)});  // the same route back
}

struct worker_options {
  std::string id, state_dir, log_level = "info";
  // One broker each, in pairs: --connect (its workers ROUTER) and --announce (its announce SUB).
  std::vector<std::string> connects, announces;
  Resources resources;
  bool resources_given = false;
  int64_t heartbeat_ms = liveness::default_heartbeat_ms, max_idle_ms = 0;
  int64_t max_allocs = 10000;
  std::string sync = "full";
  std::string curve_dir, curve_name = "worker";
  std::vector<std::string> label_flags;  // KEY=VALUE each, checked by the flag
  exec_flags execs;
};

// --label KEY=VALUE, repeatable: the pool's labels (a key given twice keeps the last).
Labels labels_of(const std::vector<std::string>& flags) {
  Labels labels;
  for (const auto& flag : flags) {
    auto label = parse_label(flag);  // checked by the flag: always ok here
    labels.insert_or_assign(std::move(label->first), std::move(label->second));
  }
  return labels;
}

// Flags into `o`; `resources_flag` tells whether --resources was given.
CLI::Option* add_worker_flags(CLI::App& app, worker_options& o) {
  app.add_option("--id", o.id, "pool id (no '/')")->required();
  auto endpoint_check = [](const std::string& text) {
    return valid_endpoint(text) ? std::string() : "not an endpoint: " + text;
  };
  const broker_endpoints defaults;
  app.add_option("--connect", o.connects,
                 "a broker's workers ROUTER (default " + defaults.workers +
                     "); repeat, with --announce, to serve several brokers")
      ->check(endpoint_check);
  app.add_option("--announce", o.announces,
                 "that broker's announce SUB (default " + defaults.announce + "), in the same order as --connect")
      ->check(endpoint_check);
  auto* resources_flag = add_resources_flag(app, "--resources", o.resources, "the pool's total");
  app.add_option("--state-dir", o.state_dir, "where allocs live (default ~/.local/state/poolbus/ID)");
  add_duration_flag(app, "--heartbeat", o.heartbeat_ms, "how often to re-announce (default 1s)");
  add_duration_flag(app, "--max-idle", o.max_idle_ms, "stop after idling this long (default never)");
  app.add_option("--max-allocs", o.max_allocs,
                 "the most allocs the pool holds at once; an accept beyond it "
                 "answers unavailable (default 10000)")
      ->check(CLI::PositiveNumber);
  app.add_option("--sync", o.sync,
                 "when an acknowledged change is durable: full (default) = on disk (fdatasync) before the reply; "
                 "os = in the OS page cache before the reply: survives a crash or SIGKILL of the worker, not a "
                 "power loss or kernel crash, and makes each change cheaper (README \"Failure behaviour\")")
      ->check(CLI::IsMember({"full", "os"}));
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error");
  app.add_option("--curve-dir", o.curve_dir,
                 "turn CURVE on: DIR holds this worker's NAME.key (0600) and broker.pub (docs/security.md)");
  app.add_option("--curve-name", o.curve_name, "with --curve-dir: the key pair's name (default worker)");
  app.add_option("--label", o.label_flags, "KEY=VALUE: a label of the pool, for placement (repeatable)")
      ->check([](const std::string& text) {
        auto label = parse_label(text);
        return label ? std::string() : label.error().message;
      });
  add_exec_flags(app, o.execs);
  return resources_flag;
}

// The state dir made and protected, the machine's resources when none were
// given, and the store opened: the allocs of an earlier run come back from
// it. A store that cannot be read is reported and left untouched, never
// replaced by an empty one.
outcome<std::shared_ptr<state_store>> open_state(worker_options& o) {
  if (o.state_dir.empty()) o.state_dir = default_state_dir(o.id);
  std::error_code ec;
  std::filesystem::create_directories(o.state_dir, ec);
  if (ec) return pool_error{error_kind::internal, "cannot create state dir " + o.state_dir + ": " + ec.message()};
  if (auto protected_dir = protect_state_dir(o.state_dir); !protected_dir) return protected_dir.error();
  if (!o.resources_given) o.resources = machine_resources(o.state_dir);
  auto opened = state_store::open(o.state_dir, o.id, o.resources, o.sync == "os" ? store_sync::os : store_sync::full);
  if (!opened)
    return pool_error{opened.error().kind, "state store " +
                                               (std::filesystem::path(o.state_dir) / state_store::file_name).string() +
                                               ": " + opened.error().message};
  if (int from = (*opened)->upgraded_from())
    spdlog::info("state store {}: upgraded from schema {} to {}", (*opened)->path(), from, state_store::schema_version);
  return std::shared_ptr<state_store>(std::move(*opened));
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

// The peer ids of the brokers when there are several (empty: one, on a DEALER).
std::vector<std::string> broker_peers(const worker_options& o) {
  std::vector<std::string> peers;
  for (size_t i = 0; o.connects.size() > 1 && i < o.connects.size(); ++i) peers.push_back(broker_peer_id(i));
  return peers;
}

// One broker: a DEALER and a PUB. Several: one ROUTER connected to every broker
// (each addressed by its peer id, so a reply goes back where its request came
// from) and one PUB connected to every announce SUB (an announcement reaches all).
std::vector<socket_spec> worker_sockets(const worker_options& o, const std::optional<curve_client_keys>& curve) {
  const auto peers = broker_peers(o);
  auto broker_socket = socket_spec::connected(
      channel::broker, peers.empty() ? socket_kind::dealer : socket_kind::router, o.connects.front());
  broker_socket.more_endpoints.assign(o.connects.begin() + 1, o.connects.end());
  broker_socket.peer_ids = peers;
  broker_socket.routing_id = o.id;  // the broker routes requests to this pool by its id
  auto announce_socket = socket_spec::connected(channel::announce, socket_kind::pub, o.announces.front());
  announce_socket.more_endpoints.assign(o.announces.begin() + 1, o.announces.end());
  std::vector<socket_spec> specs{announce_socket, broker_socket};
  // A link that went silent (a partition) is given up after three heartbeats
  // (at least a second: a loaded machine's late PONG is no partition) and made
  // again, each attempt bounded by a heartbeat: after a heal the brokers hear
  // this pool within a few heartbeats, not after TCP's retransmission backoff.
  for (auto& spec : specs) {
    spec.heartbeat_ivl_ms = static_cast<int>(o.heartbeat_ms);
    spec.heartbeat_timeout_ms = static_cast<int>(std::max<int64_t>(3 * o.heartbeat_ms, 1000));
    spec.connect_timeout_ms = static_cast<int>(o.heartbeat_ms);
  }
  if (curve)
    for (auto& spec : specs)
      spec.curve = socket_curve{{}, curve->own.public_key, curve->own.secret_key, curve->server_public, {}, {}};
  return specs;
}

// Runs the pool until the latch opens; its exit code.
int serve(const worker_options& o, std::shared_ptr<state_store> store, const exec_runtime& execs,
          const std::optional<curve_client_keys>& curve, shutdown_latch& latch) {
  caf::actor_system_config cfg;
  caf::actor_system sys{io_thread_actors(cfg)};
  caf::actor worker;
  io_thread* io_ptr = nullptr;
  const auto brokers = broker_peers(o);
  auto io = std::make_shared<io_thread>(worker_sockets(o, curve),
                                        [&worker, &io_ptr, &brokers](channel via, std::vector<std::string>&& frames) {
                                          if (via == channel::broker)
                                            on_broker_message(std::move(frames), worker, *io_ptr, brokers);
                                        });
  io_ptr = io.get();
  auto run = new_run_id();
  auto on_store_failure = [&latch, path = store->path()](const pool_error& e) {
    std::cerr << "pool-worker: state store " << path << ": " << e.message << "\n";
    latch.trigger(1);
  };
  auto pool =
      spawn_pool_actor(sys, pool_actor_config{o.id, run, o.resources, labels_of(o.label_flags), wall_clock::real(),
                                              make_local_alloc_manager(o.state_dir, execs.users), store,
                                              on_store_failure, execs, o.max_allocs});
  worker = spawn_worker_actor(sys, worker_actor_config{o.id, run, pool, io, brokers, o.heartbeat_ms, o.max_idle_ms,
                                                       wall_clock::real(), [&latch] { latch.trigger(0); }});
  host_actors(sys, *io);
  int exit_code = 1;
  if (auto started = io->start(); !started) {
    std::cerr << "pool-worker: " << started.error().message << "\n";
  } else {
    spdlog::info("pool {} (run {}) serving {} to {}, announcing on {} (state store sync {})", o.id, run,
                 o.resources.to_string(), joined(o.connects), joined(o.announces), o.sync);
    exit_code = latch.wait();
  }
  caf::anon_send_exit(worker, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
  io->stop();
  worker = nullptr;
  return exit_code;
}

int fail(const std::string& message) {
  std::cerr << "pool-worker: " << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  shutdown_latch latch;
  CLI::App app{"pool-worker: serves this machine's resources as a pool to a poolbus broker", "pool-worker"};
  worker_options o;
  auto* resources_flag = add_worker_flags(app, o);
  add_config_flag(app);
  if (int rc = parse_flags(app, argc, argv); rc >= 0) return rc;
  o.resources_given = resources_flag->count() > 0;
  if (o.connects.empty()) o.connects.push_back(broker_endpoints{}.workers);
  if (o.announces.empty()) o.announces.push_back(broker_endpoints{}.announce);
  if (o.connects.size() != o.announces.size()) {
    std::cerr << "pool-worker: --connect and --announce come in pairs, one broker each (got " << o.connects.size()
              << " and " << o.announces.size() << ")\n";
    return 2;
  }
  if (!valid_pool_id(o.id)) {
    std::cerr << "pool-worker: --id must be non-empty and contain no '/'\n";
    return 2;
  }
  if (!setup_logging("pool-worker", o.log_level)) {
    std::cerr << "pool-worker: unknown --log-level " << o.log_level << "\n";
    return 2;
  }
  std::optional<curve_client_keys> curve;
  if (!o.curve_dir.empty()) {
    auto keys = load_client_keys(o.curve_dir, o.curve_name);
    if (!keys) return fail(keys.error().message);
    curve = std::move(*keys);
  }
  auto store = open_state(o);
  if (!store) return fail(store.error().message);
  // Runs the execs' processes; outlives the actors (its exit callbacks message
  // them) and kills whatever still runs when the worker stops.
  auto execs = make_exec_runtime(o.execs, o.id, o.state_dir);
  if (!execs) return fail(execs.error().message);
  int exit_code = serve(o, *store, *execs, curve, latch);
  spdlog::info("pool {} stopped", o.id);
  return exit_code;
}
