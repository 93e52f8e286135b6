// pool-broker: the one broker. Wiring only: flags, the mux and api actors,
// the worker intake and CURVE gate (broker/), and the I/O thread that owns the api ROUTER, stream PUB, workers
// ROUTER and announce SUB. Malformed client requests are answered on the I/O
// thread itself and never reach an actor.
#include <sys/resource.h>

#include <fstream>
#include <sstream>
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <iostream>

#include "actors/api_actor.hpp"
#include "actors/mux_actor.hpp"
#include "apps/common/actor_settings.hpp"
#include "apps/common/flags.hpp"
#include "apps/common/logging.hpp"
#include "apps/common/shutdown_latch.hpp"
#include "broker/broker_gate.hpp"
#include "broker/worker_intake.hpp"
#include "bus/endpoints.hpp"
#include "bus/envelope.hpp"
#include "bus/io_thread.hpp"
#include "broker/worker_intake.hpp"
#include "schemas/api_messages.hpp"

using namespace poolbus;

namespace {

struct broker_actors {
  caf::actor api;
  mux_actor mux;
};

void on_client_message(std::vector<std::string>&& frames, std::string&& caller, const broker_actors& actors,
                       frame_sink& sink) {
  auto request = split_router_message(std::move(frames));
  if (!request.well_formed) {
    if (!request.route.empty())
      sink.post(make_reply(channel::api, std::move(request.route),
                           encode_error_reply(nil_id_raw, {error_kind::invalid, "want exactly one body frame"})));
    return;
  }
  std::string id_raw;
  auto decoded = decode_api_request(request.body, &id_raw);
  if (!decoded) {
    sink.post(make_reply(channel::api, std::move(request.route), encode_error_reply(id_raw, decoded.error())));
    return;
  }
  decoded->caller = std::move(caller);  // CURVE identity, never from the wire
  caf::anon_send(actors.api, api_atom::value, std::move(request.route), std::move(*decoded));
}

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void on_broker_message(channel via, std::vector<std::string>&& frames, std::string&& user_id,
                       const broker_actors& actors, frame_sink& sink, worker_intake& intake, int64_t now_ms) {
  switch (via) {
    case channel::api: on_client_message(std::move(frames), std::move(user_id), actors, sink); return;
    case channel::announce:
      if (frames.size() == 2)
        intake.on_announcement(std::move(frames[0]), std::move(frames[1]), now_ms);
      else
        spdlog::debug("dropped an announcement of {} frames", frames.size());
      return;
    case channel::workers:
      if (frames.size() == 2)
        intake.on_worker_message(std::move(frames[0]), std::move(frames[1]), now_ms);
      else
        spdlog::debug("dropped a worker message of {} frames", frames.size());
      return;
    default: return;
  }
}

// What the intake passes on goes to the mux, one actor message each (the
// repeats: one per flush).
worker_intake_outputs to_mux(const broker_actors& actors) {
  worker_intake_outputs out;
  out.offers_changed = [&actors](offer_announcement&& a) {
    caf::anon_send(actors.mux, announce_atom::value, std::move(a));
  };
  out.pool_stopped = [&actors](pool_event&& e) { caf::anon_send(actors.mux, announce_atom::value, std::move(e)); };
  out.hello = [&actors](std::string&& identity, worker_hello&& hello) {
    caf::anon_send(actors.mux, hello_atom::value, std::move(identity), std::move(hello));
  };
  out.reply = [&actors](std::string&& identity, worker_reply&& reply) {
    caf::anon_send(actors.mux, wreply_atom::value, std::move(identity), std::move(reply));
  };
  out.seen = [&actors](std::vector<pool_seen>&& announced, std::vector<pool_seen>&& hellos) {
    caf::anon_send(actors.mux, seen_atom::value, std::move(announced), std::move(hellos));
  };
  // The mux's clock for liveness: the I/O thread's, not its own.
  out.flushed = [&actors](int64_t now_ms) { caf::anon_send(actors.mux, sweep_atom::value, now_ms); };
  return out;
}

struct broker_options {
  broker_endpoints endpoints;
  int64_t worker_timeout_ms = liveness::default_worker_timeout_ms;
  int64_t request_timeout_ms = liveness::default_request_timeout_ms;
  int64_t max_heartbeats = liveness::default_max_heartbeats_per_second;
  std::string log_level = "info";
  std::string curve_dir;
  bool curve_generate = false;
  std::string quota_file;
  quota_book quotas;  // read from quota_file
};

// --quota FILE: read and checked before anything starts (a bad line is exit 1).
outcome<quota_book> read_quota_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return pool_error{error_kind::invalid, "cannot read quota file " + path};
  std::stringstream text;
  text << in.rdbuf();
  auto book = parse_quota_book(text.str());
  if (!book) return pool_error{error_kind::invalid, path + ": " + book.error().message};
  return book;
}

void add_broker_flags(CLI::App& app, broker_options& o) {
  add_endpoint_flag(app, "--api", o.endpoints.api, "client API ROUTER");
  add_endpoint_flag(app, "--stream", o.endpoints.stream, "offer stream PUB");
  add_endpoint_flag(app, "--workers", o.endpoints.workers, "workers ROUTER");
  add_endpoint_flag(app, "--announce", o.endpoints.announce, "announce SUB");
  add_duration_flag(app, "--worker-timeout", o.worker_timeout_ms, "drop a pool silent this long (default 3s)");
  add_duration_flag(app, "--request-timeout", o.request_timeout_ms, "a worker's time to answer (default 5s)");
  app.add_option("--max-heartbeats", o.max_heartbeats,
                 "heartbeats per second from all pools before the broker slows them (default 10000)")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000000}));
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error");
  app.add_option("--curve-dir", o.curve_dir,
                 "turn CURVE on: DIR holds broker.key (0600) and authorized_keys (docs/security.md)");
  app.add_flag("--curve-generate", o.curve_generate, "with --curve-dir: create broker.key/broker.pub if missing");
  app.add_option("--quota", o.quota_file, "owner quotas: one \"<owner> <resources>\" per line (docs/scheduling.md)");
}

// The broker's four sockets, as the protocol fixes them.
std::vector<socket_spec> broker_sockets(const broker_endpoints& endpoints) {
  auto workers_socket = socket_spec::bound(channel::workers, socket_kind::router, endpoints.workers);
  workers_socket.router_handover = true;  // a restarted worker takes its routing id back at once
  auto announce_socket = socket_spec::bound(channel::announce, socket_kind::sub, endpoints.announce);
  announce_socket.subscriptions = {""};
  return {
      socket_spec::bound(channel::api, socket_kind::router, endpoints.api),
      socket_spec::bound(channel::stream, socket_kind::pub, endpoints.stream),
      workers_socket,
      announce_socket,
  };
}

void spawn_broker_actors(caf::actor_system& sys, const broker_options& o, std::shared_ptr<io_thread> io,
                         std::shared_ptr<worker_intake> intake, broker_gate* gate, broker_actors& actors) {
  mux_config mux_settings;
  mux_settings.sink = io;
  mux_settings.worker_timeout_ms = o.worker_timeout_ms;
  mux_settings.request_timeout_ms = o.request_timeout_ms;
  mux_settings.forget_pool = [intake](const std::string& pool) { intake->forget(pool); };
  mux_settings.quotas = o.quotas;
  mux_settings.max_heartbeats_per_second = o.max_heartbeats;
  mux_settings.paced = [intake, gate](int64_t heartbeat_ms) {
    intake->on_paced(heartbeat_ms);
    if (gate) gate->on_paced(heartbeat_ms);
  };
  actors.mux = spawn_mux_actor(sys, std::move(mux_settings));
  actors.api = spawn_api_actor(sys, api_actor_config{actors.mux, io, o.request_timeout_ms});
}

// Runs the broker until the latch opens; its exit code.
int serve(const broker_options& o, broker_gate* gate, shutdown_latch& latch) {
  caf::actor_system_config cfg;
  caf::actor_system sys{io_thread_actors(cfg)};
  broker_actors actors;
  io_thread* io_ptr = nullptr;
  auto specs = broker_sockets(o.endpoints);
  if (gate) gate->secure(specs);
  std::shared_ptr<worker_intake> intake;  // used on the I/O thread; made once the io_thread exists
  auto io = std::make_shared<io_thread>(
      std::move(specs),
      io_thread::authenticated_handler(
          [&actors, &io_ptr, gate, &intake](channel via, std::vector<std::string>&& frames, std::string&& user_id) {
            auto now_ms = steady_ms();  // one clock read per message, for the gate and the intake
            if (gate && !gate->admit(via, frames, user_id, now_ms)) return;
            on_broker_message(via, std::move(frames), std::move(user_id), actors, *io_ptr, *intake, now_ms);
          }));
  io_ptr = io.get();
  intake = std::make_shared<worker_intake>(*io, to_mux(actors), o.worker_timeout_ms);
  io->set_tick(std::chrono::milliseconds(intake->flush_period_ms()), [&intake] { intake->flush(steady_ms()); });
  if (gate)
    if (auto zap = gate->start_zap(*io); !zap) {
      std::cerr << "pool-broker: " << zap.error().message << "\n";
      return 1;
    }
  spawn_broker_actors(sys, o, io, intake, gate, actors);
  host_actors(sys, *io);
  int exit_code = 1;
  if (auto started = io->start(); !started) {
    std::cerr << "pool-broker: " << started.error().message << "\n";
  } else {
    spdlog::info("broker up: api {}, stream {}, workers {}, announce {}", o.endpoints.api, o.endpoints.stream,
                 o.endpoints.workers, o.endpoints.announce);
    exit_code = latch.wait();
  }
  io->stop();
  if (gate) gate->stop_zap();  // only now: while no ZAP handler is bound, libzmq admits anyone
  caf::anon_send_exit(actors.api, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(actors.mux, caf::exit_reason::user_shutdown);
  actors = {};
  return exit_code;
}

}  // namespace

// A pool holds one descriptor in the broker (its workers connection), so the
// soft limit goes up to the hard one (Debian's soft default is 1024); the
// packaged unit sets LimitNOFILE=1048576.
void raise_open_file_limit() {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0 || files.rlim_cur == files.rlim_max) return;
  files.rlim_cur = files.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &files) == 0) spdlog::debug("open file limit raised to {}", files.rlim_cur);
}

int main(int argc, char** argv) {
  shutdown_latch latch;
  CLI::App app{"pool-broker: places work on the pools of many workers", "pool-broker"};
  broker_options o;
  add_broker_flags(app, o);
  add_config_flag(app);
  if (int rc = parse_flags(app, argc, argv); rc >= 0) return rc;
  if (!setup_logging("pool-broker", o.log_level)) {
    std::cerr << "pool-broker: unknown --log-level " << o.log_level << "\n";
    return 2;
  }
  raise_open_file_limit();
  if (!o.quota_file.empty()) {
    auto book = read_quota_file(o.quota_file);
    if (!book) {
      std::cerr << "pool-broker: " << book.error().message << "\n";
      return 1;
    }
    o.quotas = std::move(*book);
    spdlog::info("quotas from {}: {} owners{}", o.quota_file, o.quotas.owners.size(),
                 o.quotas.everyone_else ? " and everyone else" : "");
  }
  std::unique_ptr<broker_gate> gate;  // CURVE security; null = plaintext
  if (!o.curve_dir.empty()) {
    auto loaded = broker_gate::load(o.curve_dir, o.curve_generate, o.worker_timeout_ms);
    if (!loaded) {
      std::cerr << "pool-broker: " << loaded.error().message << "\n";
      return 1;
    }
    gate = std::move(*loaded);
  } else if (o.curve_generate) {
    std::cerr << "pool-broker: --curve-generate needs --curve-dir\n";
    return 2;
  }
  int exit_code = serve(o, gate.get(), latch);
  spdlog::info("broker stopped");
  return exit_code;
}
