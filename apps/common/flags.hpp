// Flag parsing shared by the programs: DURATION and RES values validated at
// parse time, so a bad flag is a one-line error and a non-zero exit.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

#include "schemas/resources.hpp"

namespace poolbus {

// --name DURATION ("500ms", "30s", "2m", "1h") into milliseconds.
CLI::Option* add_duration_flag(CLI::App& app, const std::string& name, int64_t& target_ms,
                               const std::string& description);
// --name SIZE ("64MiB", "1GB", "4096") into bytes; 0 allowed.
CLI::Option* add_size_flag(CLI::App& app, const std::string& name, int64_t& target_bytes,
                           const std::string& description);
// --name ENDPOINT (tcp://host:port, ipc://path).
CLI::Option* add_endpoint_flag(CLI::App& app, const std::string& name, std::string& target,
                               const std::string& description);
// --name EP[,EP...]: one endpoint or several, comma-separated (client failover order).
CLI::Option* add_endpoint_list_flag(CLI::App& app, const std::string& name, std::string& target,
                                    const std::string& description);
// RES ("cpu=4,mem=8GiB") into Resources.
CLI::Option* add_resources_flag(CLI::App& app, const std::string& name, Resources& target,
                                const std::string& description);

// --config FILE: every flag of the program read from a TOML (or INI) file, one
// `name = value` per flag (`connect = ["tcp://a:7702", "tcp://b:7702"]` for a
// repeated one); a flag given on the command line wins over the file.
void add_config_flag(CLI::App& app);

// Runs app.parse; on error prints one line "<program>: <error>" and returns the exit code to use.
// Returns -1 when the program should go on.
int parse_flags(CLI::App& app, int argc, char** argv);

}  // namespace poolbus
