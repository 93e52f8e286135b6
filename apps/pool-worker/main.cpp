// pool-worker: one pool of resources on this machine, served to a broker.
// Wiring only: flags, the pool and worker actors, and the I/O thread that
// owns the announce PUB and the DEALER to the broker.
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <random>

#include "actors/pool_actor.hpp"
#include "exec/process_supervisor.hpp"
#include "actors/worker_actor.hpp"
#include "apps/common/flags.hpp"
#include "apps/common/logging.hpp"
#include "apps/common/shutdown_latch.hpp"
#include "apps/pool-worker/exec_setup.hpp"
#include "apps/pool-worker/machine_resources.hpp"
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

// Routes one message from the broker's ROUTER to the worker actor, or answers a
// malformed one at once (it never reaches an actor).
void on_broker_message(std::vector<std::string>&& frames, const caf::actor& worker, frame_sink& sink) {
  if (frames.size() != 1) {
    spdlog::warn("dropped a broker message of {} frames (want 1)", frames.size());
    return;
  }
  uint64_t rid = 0;
  auto request = decode_worker_request(frames[0], &rid);
  if (request) {
    caf::anon_send(worker, wrequest_atom::value, std::move(*request));
    return;
  }
  spdlog::warn("malformed request from the broker: {}", request.error().to_string());
  if (rid == 0) return;
  worker_reply reply;
  reply.rid = rid;
  reply.ok = false;
  reply.error = request.error();
  sink.post({channel::broker, {encode_worker_reply(reply)}});
}

}  // namespace

int main(int argc, char** argv) {
  shutdown_latch latch;
  CLI::App app{"pool-worker: serves this machine's resources as a pool to a poolbus broker", "pool-worker"};
  std::string id, state_dir, log_level = "info";
  broker_endpoints endpoints;
  Resources resources;
  int64_t heartbeat_ms = 1000, max_idle_ms = 0;
  app.add_option("--id", id, "pool id (no '/')")->required();
  add_endpoint_flag(app, "--connect", endpoints.workers, "the broker's workers ROUTER");
  add_endpoint_flag(app, "--announce", endpoints.announce, "the broker's announce SUB");
  auto* resources_flag = add_resources_flag(app, "--resources", resources, "the pool's total");
  app.add_option("--state-dir", state_dir, "where allocs live (default ~/.local/state/poolbus/ID)");
  add_duration_flag(app, "--heartbeat", heartbeat_ms, "how often to re-announce (default 1s)");
  add_duration_flag(app, "--max-idle", max_idle_ms, "stop after idling this long (default never)");
  int64_t max_allocs = 10000;
  app.add_option("--max-allocs", max_allocs, "the most allocs the pool holds at once; an accept beyond it "
                                             "answers unavailable (default 10000)")->check(CLI::PositiveNumber);
  std::string sync = "full";
  app.add_option("--sync", sync,
                 "when an acknowledged change is durable: full (default) = on disk (fdatasync) before the reply; "
                 "os = in the OS page cache before the reply: survives a crash or SIGKILL of the worker, not a "
                 "power loss or kernel crash, and makes each change cheaper (README \"Failure behaviour\")")
      ->check(CLI::IsMember({"full", "os"}));
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  std::string curve_dir, curve_name = "worker";
  app.add_option("--curve-dir", curve_dir,
                 "turn CURVE on: DIR holds this worker's NAME.key (0600) and broker.pub (docs/security.md)");
  app.add_option("--curve-name", curve_name, "with --curve-dir: the key pair's name (default worker)");
  exec_flags execs;
  add_exec_flags(app, execs);
  if (int rc = parse_flags(app, argc, argv); rc >= 0) return rc;
  if (!valid_pool_id(id)) {
    std::cerr << "pool-worker: --id must be non-empty and contain no '/'\n";
    return 2;
  }
  if (!setup_logging("pool-worker", log_level)) {
    std::cerr << "pool-worker: unknown --log-level " << log_level << "\n";
    return 2;
  }
  std::optional<curve_client_keys> curve;
  if (!curve_dir.empty()) {
    auto keys = load_client_keys(curve_dir, curve_name);
    if (!keys) {
      std::cerr << "pool-worker: " << keys.error().message << "\n";
      return 1;
    }
    curve = std::move(*keys);
  }
  if (state_dir.empty()) state_dir = default_state_dir(id);
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec) {
    std::cerr << "pool-worker: cannot create state dir " << state_dir << ": " << ec.message() << "\n";
    return 1;
  }
  if (auto protected_dir = protect_state_dir(state_dir); !protected_dir) {
    std::cerr << "pool-worker: " << protected_dir.error().message << "\n";
    return 1;
  }
  if (resources_flag->count() == 0) resources = machine_resources(state_dir);
  // The allocs of an earlier run come back from here; a store that cannot be
  // read is reported and left untouched, never replaced by an empty one.
  auto opened = state_store::open(state_dir, id, resources, sync == "os" ? store_sync::os : store_sync::full);
  if (!opened) {
    std::cerr << "pool-worker: state store " << (std::filesystem::path(state_dir) / state_store::file_name).string()
              << ": " << opened.error().message << "\n";
    return 1;
  }
  std::shared_ptr<state_store> store = std::move(*opened);

  // Runs the execs' processes; outlives the actors (its exit callbacks message
  // them) and kills whatever still runs when the worker stops.
  auto exec_rt = make_exec_runtime(execs, id, state_dir);
  if (!exec_rt) {
    std::cerr << "pool-worker: " << exec_rt.error().message << "\n";
    return 1;
  }

  caf::actor_system_config cfg;
  cfg.set("scheduler.policy", caf::atom("sharing"));
  // One CAF thread: every actor hop of a call then stays on that thread
  // instead of waking another (on 2 cores a thread switch costs more than the
  // handlers themselves); the ZeroMQ and I/O threads keep the other core busy.
  cfg.set("scheduler.max-threads", 1);
  int exit_code = 0;
  {
    caf::actor_system sys{cfg};
    caf::actor worker;
    io_thread* io_ptr = nullptr;
    auto broker_socket = socket_spec::connected(channel::broker, socket_kind::dealer, endpoints.workers);
    broker_socket.routing_id = id;  // the broker routes requests to this pool by its id
    std::vector<socket_spec> specs{
        socket_spec::connected(channel::announce, socket_kind::pub, endpoints.announce),
        broker_socket,
    };
    if (curve)
      for (auto& spec : specs)
        spec.curve = socket_curve{{}, curve->own.public_key, curve->own.secret_key, curve->server_public, {}, {}};
    auto io = std::make_shared<io_thread>(
        std::move(specs),
        [&worker, &io_ptr](channel via, std::vector<std::string>&& frames) {
          if (via == channel::broker) on_broker_message(std::move(frames), worker, *io_ptr);
        });
    io_ptr = io.get();

    auto run = new_run_id();
    auto pool = spawn_pool_actor(sys, pool_actor_config{id, run, resources, wall_clock::real(),
                                                         make_local_alloc_manager(state_dir, exec_rt->users), store,
                                                         [&latch, path = store->path()](const pool_error& e) {
                                                           std::cerr << "pool-worker: state store " << path << ": "
                                                                     << e.message << "\n";
                                                           latch.trigger(1);
                                                         },
                                                         *exec_rt, max_allocs});
    worker = spawn_worker_actor(sys, worker_actor_config{id, run, pool, io, heartbeat_ms, max_idle_ms,
                                                         wall_clock::real(), [&latch] { latch.trigger(0); }});
    if (auto started = io->start(); !started) {
      std::cerr << "pool-worker: " << started.error().message << "\n";
      exit_code = 1;
    } else {
      spdlog::info("pool {} (run {}) serving {} to {}, announcing on {} (state store sync {})", id, run,
                   resources.to_string(), endpoints.workers, endpoints.announce, sync);
      exit_code = latch.wait();
    }
    caf::anon_send_exit(worker, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(pool, caf::exit_reason::user_shutdown);
    io->stop();
    worker = nullptr;
  }
  spdlog::info("pool {} stopped", id);
  return exit_code;
}
