// Converts between poolbus's pool_error and caf::error, so an error's kind
// crosses actor boundaries unchanged: category atom("pool"), code = kind,
// context = the message. CAF's own errors (a request timeout, a dead actor)
// map to the kind a caller should act on (timeout, unavailable).
#pragma once

#include <caf/error.hpp>
#include <caf/typed_response_promise.hpp>

#include "schemas/outcome.hpp"
#include "schemas/pool_error.hpp"

namespace poolbus {

caf::error make_error(const pool_error& e);
caf::error make_error(error_kind kind, std::string message);
pool_error to_pool_error(const caf::error& e);

// Delivers an outcome: its value, or its error as make_error gives it.
template <class T>
void deliver(caf::typed_response_promise<T>& promise, outcome<T> result) {
  if (result)
    promise.deliver(std::move(*result));
  else
    promise.deliver(make_error(result.error()));
}

}  // namespace poolbus
