#include "apps/poolctl/exec_commands.hpp"

#include "apps/common/flags.hpp"

#include <caf/all.hpp>

#include <iomanip>
#include <iostream>
#include <random>

#include "actors/keepalive_actor.hpp"
#include "actors/remote_alloc_actor.hpp"
#include "apps/poolctl/client_transport.hpp"
#include "apps/poolctl/tables.hpp"
#include "bus/pool_client.hpp"
#include "schemas/json.hpp"
#include "schemas/units.hpp"

namespace poolbus {
namespace {

// How long one exec_wait waits while output is being streamed: the pace of
// `logs --follow` and `run` (exec_wait returns at once when the exec ends).
constexpr int64_t follow_wait_ms = 250;

int fail(const pool_error& e) {
  std::cerr << "poolctl: " << e.to_string() << "\n";
  return 1;
}

outcome<std::unique_ptr<pool_client>> connect(const exec_command_context& ctx) {
  return pool_client::connect(ctx.api, ctx.timeout_ms, ctx.curve);
}

api_request exec_request(exec_call call) {
  api_request r;
  r.op = *api_op_from_string(to_string(call.op));
  r.uri = call.alloc;
  r.exec = std::move(call);
  return r;
}

outcome<exec_answer> call_exec(pool_client& client, exec_call call) { return client.exec(std::move(call)); }


// Writes what is new on one stream since *offset; sets *eof once complete and all read.
outcome<void> drain(pool_client& client, const std::string& alloc, const std::string& exec, const std::string& stream,
                    int64_t* offset, bool* eof, std::ostream& out) {
  while (!*eof) {
    auto call = make_exec_call(exec_op::logs, alloc, exec);
    call.stream = stream;
    call.offset = *offset;
    call.max_bytes = max_exec_chunk_bytes;
    auto chunk = call_exec(client, call);
    if (!chunk) return chunk.error();
    out.write(chunk->data.data(), static_cast<std::streamsize>(chunk->data.size()));
    out.flush();
    *offset = chunk->offset;
    *eof = chunk->eof;
    if (chunk->data.empty()) break;
  }
  return {};
}

// Waits up to follow_wait_ms for the exec to complete: its inspect once complete.
outcome<std::optional<ExecInspect>> wait_a_little(pool_client& client, const std::string& alloc,
                                                  const std::string& exec) {
  auto call = make_exec_call(exec_op::wait, alloc, exec);
  call.timeout_ms = follow_wait_ms;
  auto done = call_exec(client, call);
  if (done) return std::optional<ExecInspect>(done->exec);
  if (done.error().kind == error_kind::timeout) return std::optional<ExecInspect>();
  return done.error();
}

int exit_code_of(const ExecInspect& e) {
  if (e.has_exit_code) return static_cast<int>(e.exit_code);
  if (e.has_signal) return 128 + static_cast<int>(e.signal);
  return 127;  // it never ran (the error says why), as a shell says for a missing command
}

std::string fresh_exec_id() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd());
  char buf[32];
  std::snprintf(buf, sizeof buf, "run-%016llx", static_cast<unsigned long long>(gen()));
  return buf;
}

// Streams the exec's output until it is complete and all read; the final inspect.
outcome<ExecInspect> stream_until_done(pool_client& client, const std::string& alloc, const std::string& exec,
                                       shutdown_latch& latch, bool* interrupted) {
  int64_t out_offset = 0, err_offset = 0;
  bool out_eof = false, err_eof = false;
  std::optional<ExecInspect> final;
  for (;;) {
    if (auto ok = drain(client, alloc, exec, "stdout", &out_offset, &out_eof, std::cout); !ok) return ok.error();
    if (auto ok = drain(client, alloc, exec, "stderr", &err_offset, &err_eof, std::cerr); !ok) return ok.error();
    if (final && out_eof && err_eof) return *final;
    if (latch.wait_for(std::chrono::milliseconds(0))) {
      *interrupted = true;
      return make_pool_error(error_kind::internal, "interrupted");
    }
    auto waited = wait_a_little(client, alloc, exec);
    if (!waited) return waited.error();
    if (*waited) final = **waited;
  }
}

}  // namespace

int run_execs_command(const exec_command_context& ctx, const std::string& alloc_uri) {
  auto client = connect(ctx);
  if (!client) return fail(client.error());
  auto call = make_exec_call(exec_op::list, alloc_uri, "");
  if (ctx.json) {
    auto body = (*client)->call_raw(exec_request(call));
    if (!body) return fail(body.error());
    auto reply = decode_api_reply(*body);
    if (!reply) return fail(reply.error());
    auto json = msgpack_to_json(*body);
    if (!json) return fail(json.error());
    std::cout << *json << "\n";
    return 0;
  }
  auto listed = call_exec(**client, call);
  if (!listed) return fail(listed.error());
  std::cout << std::left << std::setw(24) << "EXEC" << std::setw(10) << "STATE" << std::setw(8) << "EXIT"
            << std::setw(12) << "DURATION" << std::setw(12) << "MAX RSS"
            << "ERROR\n";
  for (const auto& e : listed->execs) {
    std::string exit = e.has_exit_code ? std::to_string(e.exit_code)
                       : e.has_signal  ? "sig " + std::to_string(e.signal)
                                       : "-";
    std::string duration = e.started_ms && e.finished_ms ? format_duration(e.finished_ms - e.started_ms) : "-";
    std::string rss = e.has_profile ? format_size(static_cast<double>(e.profile.max_rss_bytes)) : "-";
    std::cout << std::left << std::setw(24) << e.id << std::setw(10) << to_string(e.state) << std::setw(8) << exit
              << std::setw(12) << duration << std::setw(12) << rss << (e.error.empty() ? "-" : e.error) << "\n";
  }
  return 0;
}

int run_logs_command(const exec_command_context& ctx, const std::string& alloc_uri, const std::string& exec_id,
                     bool stderr_stream, bool follow, shutdown_latch& latch) {
  auto client = connect(ctx);
  if (!client) return fail(client.error());
  int64_t offset = 0;
  bool eof = false;
  const std::string stream = stderr_stream ? "stderr" : "stdout";
  for (;;) {
    if (auto ok = drain(**client, alloc_uri, exec_id, stream, &offset, &eof, std::cout); !ok) return fail(ok.error());
    if (!follow || eof || latch.wait_for(std::chrono::milliseconds(0))) return 0;
    if (auto waited = wait_a_little(**client, alloc_uri, exec_id); !waited) return fail(waited.error());
  }
}

int run_run_command(const exec_command_context& ctx, const run_command_request& request, shutdown_latch& latch) {
  auto connected = connect(ctx);
  if (!connected) return fail(connected.error());
  auto& client = **connected;
  bool owned = request.alloc_uri.empty();
  AllocInspect alloc;
  if (owned) {
    auto taken = client.allocate(request.min, 0);
    if (!taken) return fail(taken.error());
    alloc = *taken;
  } else {
    auto found = client.inspect(request.alloc_uri);
    if (!found) return fail(found.error());
    alloc = *found;
  }
  auto free_if_owned = [&] {
    if (!owned) return true;
    auto freed = client.free(alloc.id);
    if (!freed) std::cerr << "poolctl: free " << alloc.id << ": " << freed.error().to_string() << "\n";
    return freed.ok();
  };

  int exit_code = 1;
  caf::actor_system_config cfg;
  cfg.set("scheduler.policy", caf::atom("sharing"));
  {
    caf::actor_system sys{cfg};
    auto keepalive_client = connect(ctx);
    if (!keepalive_client) {
      free_if_owned();
      return fail(keepalive_client.error());
    }
    auto remote =
        spawn_remote_alloc_actor(sys, alloc.id, std::make_shared<client_transport>(std::move(*keepalive_client)));
    {
      caf::scoped_actor owner{sys};
      keepalive_config config;
      config.alloc_name = alloc.id;
      auto keeper = spawn_keepalive_actor(sys, remote, owner, config);

      exec_call put = make_exec_call(exec_op::put, alloc.id, request.exec_id.empty() ? fresh_exec_id() : request.exec_id);
      put.config.cmd = request.cmd;
      put.config.resources = alloc.resources;  // the command may use all of the alloc
      put.config.outputs = request.outputs;
      auto started = call_exec(client, put);
      if (!started) {
        exit_code = fail(started.error());
      } else {
        bool interrupted = false;
        auto done = stream_until_done(client, alloc.id, put.exec, latch, &interrupted);
        if (interrupted) {
          call_exec(client, make_exec_call(exec_op::remove, alloc.id, put.exec));  // kills it
          exit_code = 130;
        } else if (!done) {
          exit_code = fail(done.error());
        } else {
          exit_code = exit_code_of(*done);
          if (!done->error.empty()) std::cerr << "poolctl: exec " << put.exec << ": " << done->error << "\n";
          for (const auto& [path, file] : done->files)
            std::cerr << "poolctl: output " << path << " " << file.digest << " (" << file.size << " bytes)\n";
        }
      }
      owner->send(keeper, stop_atom::value);
      owner->receive([](stop_atom) {}, [&](lost_atom, const pool_error&) {},
                     caf::after(std::chrono::seconds(1)) >> [] {});
      caf::anon_send_exit(keeper, caf::exit_reason::user_shutdown);
    }
    caf::anon_send_exit(remote, caf::exit_reason::user_shutdown);
  }
  if (!free_if_owned() && exit_code == 0) exit_code = 1;
  return exit_code;
}

void add_exec_commands(CLI::App& app, exec_commands& c) {
  c.execs = app.add_subcommand("execs", "list an alloc's execs");
  c.execs->add_option("URI", c.uri, "alloc URI")->required();
  c.logs = app.add_subcommand("logs", "print an exec's output");
  c.logs->add_option("URI", c.uri, "alloc URI")->required();
  c.logs->add_option("EXEC", c.exec_id, "exec id")->required();
  c.logs->add_flag("--stderr", c.logs_stderr, "stderr instead of stdout");
  c.logs->add_flag("--follow,-f", c.logs_follow, "keep printing until the exec completes");
  c.run_cmd = app.add_subcommand("run",
                                 "run a command in an alloc: run (URI | --min RES) [--id ID] "
                                 "[--output PATH]... -- CMD [ARG...]");
  c.run_cmd->add_option("URI", c.run.alloc_uri, "alloc URI (else --min)");
  c.run_min = add_resources_flag(*c.run_cmd, "--min", c.run.min, "allocate at least this, free after");
  c.run_cmd->add_option("--id", c.run.exec_id, "exec id (default: a fresh one)");
  c.run_cmd->add_option("--output", c.run.outputs, "an output file to keep in the alloc's repository");
}

int run_exec_command(exec_commands& c, const exec_command_context& ctx, std::vector<std::string> cmd,
                     shutdown_latch& latch) {
  if (c.execs->parsed()) return run_execs_command(ctx, c.uri);
  if (c.logs->parsed()) return run_logs_command(ctx, c.uri, c.exec_id, c.logs_stderr, c.logs_follow, latch);
  if (c.run.alloc_uri.empty() == (c.run_min->count() == 0)) {
    std::cerr << "poolctl: run takes an alloc URI or --min, not both or neither\n";
    return 2;
  }
  if (cmd.empty()) {
    std::cerr << "poolctl: run needs a command after --\n";
    return 2;
  }
  c.run.cmd = std::move(cmd);
  return run_run_command(ctx, c.run, latch);
}

}  // namespace poolbus
