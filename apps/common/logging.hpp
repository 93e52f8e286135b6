// Logging set-up shared by the programs: spdlog to stderr, one line per event,
// level from --log-level (info by default: events that matter, no chatter).
#pragma once

#include <string>

namespace poolbus {

// Returns false for an unknown level name.
bool setup_logging(const std::string& program, const std::string& level);

}  // namespace poolbus
