// poolctl's one-request commands (protocol.md "Command-line contract"):
// pools, offers, allocs [--pool], inspect URI, accept URI --want RES,
// allocate --min RES [--width N], keepalive URI --interval D, free URI. Each
// is one api_request; its reply is printed as a table (tables.hpp) or, with
// --json, as the broker's reply body.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bus/security.hpp"
#include "schemas/api_messages.hpp"

namespace poolbus {

// The flags and subcommands of the one-request commands, as parsed.
struct api_commands {
  std::string uri, owner, pool_filter, pool;
  std::vector<std::string> labels, constraints;
  Resources want, min;
  int64_t width = 0, interval_ms = 0, wait_ms = 0, priority = 0, count = 0;
  bool spread = false, undo = false;
  CLI::App *pools = nullptr, *offers = nullptr, *allocs = nullptr, *inspect = nullptr, *accept = nullptr,
           *allocate = nullptr, *keepalive = nullptr, *free = nullptr, *queue = nullptr, *quotas = nullptr,
           *drain = nullptr;

  // Whether one of them was given on the command line.
  bool parsed() const;
  // The request the parsed command sends; `invalid` for a bad --label or --constraint.
  outcome<api_request> request() const;
  // allocate's placement from its flags, checked as the broker checks it.
  outcome<placement> placement_of() const;
};

void add_api_commands(CLI::App& app, api_commands& commands);

// Sends the parsed command's request and prints the reply; the exit code.
int run_api_command(const api_commands& commands, const std::string& api, int64_t timeout_ms, bool json,
                    const std::optional<curve_client_keys>& curve);

}  // namespace poolbus
