// Converts between poolbus's pool_error and caf::error, so an error's kind
// crosses actor boundaries unchanged: category atom("pool"), code = kind,
// context = the message. CAF's own errors (a request timeout, a dead actor)
// map to the kind a caller should act on (timeout, unavailable).
#pragma once

#include <caf/error.hpp>

#include "schemas/pool_error.hpp"

namespace poolbus {

caf::error make_error(const pool_error& e);
caf::error make_error(error_kind kind, std::string message);
pool_error to_pool_error(const caf::error& e);

}  // namespace poolbus
