// poolctl's exec commands (protocol.md "Command-line contract"): `execs URI`
// lists an alloc's execs, `logs URI EXEC [--stderr] [--follow]` prints an
// exec's output, `run (URI | --min RES) [--id ID] [--output PATH]... -- CMD...`
// runs a command in an alloc (taking one and freeing it after with --min),
// keeps the alloc alive meanwhile, streams the command's stdout/stderr to its
// own and exits with the command's exit code (128+signal when killed).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "apps/common/shutdown_latch.hpp"
#include "bus/security.hpp"
#include "schemas/alloc.hpp"

namespace poolbus {

struct exec_command_context {
  std::string api;
  int64_t timeout_ms = 10000;
  bool json = false;
  std::optional<curve_client_keys> curve;
};

int run_execs_command(const exec_command_context& ctx, const std::string& alloc_uri);
int run_logs_command(const exec_command_context& ctx, const std::string& alloc_uri, const std::string& exec_id,
                     bool stderr_stream, bool follow, shutdown_latch& latch);

struct run_command_request {
  std::string alloc_uri;  // run here, or (empty) allocate `min` and free after
  Resources min;
  std::string exec_id;  // empty: a fresh random id
  std::vector<std::string> outputs;
  std::vector<std::string> cmd;
};
// Returns the process exit code.
int run_run_command(const exec_command_context& ctx, const run_command_request& request, shutdown_latch& latch);

// The flags and subcommands of execs, logs and run, as parsed.
struct exec_commands {
  std::string uri, exec_id;
  bool logs_stderr = false, logs_follow = false;
  run_command_request run;
  CLI::App *execs = nullptr, *logs = nullptr, *run_cmd = nullptr;
  CLI::Option* run_min = nullptr;

  bool parsed() const { return execs->parsed() || logs->parsed() || run_cmd->parsed(); }
};

void add_exec_commands(CLI::App& app, exec_commands& commands);
// Runs the parsed one; `cmd` is what followed "--". The exit code (2 for bad usage).
int run_exec_command(exec_commands& commands, const exec_command_context& ctx, std::vector<std::string> cmd,
                     shutdown_latch& latch);

}  // namespace poolbus
