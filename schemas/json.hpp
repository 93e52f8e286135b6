// JSON rendering of MessagePack bodies, for `poolctl --json` and `watch`:
// maps and arrays as JSON, bin as a hex string, non-finite floats as null.
// Output is always valid JSON, whatever the input (malformed -> `invalid`).
#pragma once

#include <string>
#include <string_view>

#include "schemas/outcome.hpp"

namespace poolbus {

outcome<std::string> msgpack_to_json(std::string_view body);

}  // namespace poolbus
