#include "apps/common/flags.hpp"

#include <iostream>

#include "bus/endpoints.hpp"
#include "schemas/units.hpp"

namespace poolbus {

CLI::Option* add_duration_flag(CLI::App& app, const std::string& name, int64_t& target_ms,
                               const std::string& description) {
  return app.add_option_function<std::string>(
      name,
      [&target_ms, name](const std::string& text) {
        auto parsed = parse_duration_ms(text);
        if (!parsed) throw CLI::ValidationError(name, parsed.error().message);
        if (*parsed <= 0) throw CLI::ValidationError(name, "must be positive");
        target_ms = *parsed;
      },
      description + " (DURATION: 500ms, 30s, 2m, 1h)");
}

CLI::Option* add_size_flag(CLI::App& app, const std::string& name, int64_t& target_bytes,
                           const std::string& description) {
  return app.add_option_function<std::string>(
      name,
      [&target_bytes, name](const std::string& text) {
        auto parsed = parse_size_bytes(text);
        if (!parsed) throw CLI::ValidationError(name, parsed.error().message);
        if (*parsed < 0 || *parsed > 9.0e18) throw CLI::ValidationError(name, "out of range");
        target_bytes = static_cast<int64_t>(*parsed);
      },
      description + " (SIZE: 4096, 64MiB, 1GB)");
}

CLI::Option* add_endpoint_flag(CLI::App& app, const std::string& name, std::string& target,
                               const std::string& description) {
  return app.add_option_function<std::string>(
      name,
      [&target, name](const std::string& text) {
        if (!valid_endpoint(text)) throw CLI::ValidationError(name, "not an endpoint: " + text);
        target = text;
      },
      description + " (default " + target + ")");
}

CLI::Option* add_endpoint_list_flag(CLI::App& app, const std::string& name, std::string& target,
                                    const std::string& description) {
  return app.add_option_function<std::string>(
      name,
      [&target, name](const std::string& text) {
        for (const std::string& one : split_endpoints(text))
          if (!valid_endpoint(one)) throw CLI::ValidationError(name, "not an endpoint: " + one);
        target = text;
      },
      description + " (default " + target + ")");
}

CLI::Option* add_resources_flag(CLI::App& app, const std::string& name, Resources& target,
                                const std::string& description) {
  return app.add_option_function<std::string>(
      name,
      [&target, name](const std::string& text) {
        auto parsed = parse_resources(text);
        if (!parsed) throw CLI::ValidationError(name, parsed.error().message);
        target = *parsed;
      },
      description + " (RES: cpu=4,mem=8GiB,disk=100GiB)");
}

void add_config_flag(CLI::App& app) {
  app.set_config("--config", "", "read flags from this TOML file (the command line wins; docs/operations.md)");
}

int parse_flags(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << app.get_name() << ": " << e.what() << "\n";
    return e.get_exit_code() == 0 ? 2 : e.get_exit_code();
  }
  return -1;
}

}  // namespace poolbus
