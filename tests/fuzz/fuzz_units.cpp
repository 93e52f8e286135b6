// Fuzz target: the command line's unit parsers (durations, sizes, RES
// strings). Invariants: no crash; a failure is `invalid`; a duration or size
// is finite and >= 0; parsed resources format for a table and survive the
// MessagePack codec unchanged.
#include <cmath>

#include "fuzz_invariants.hpp"
#include "schemas/codec.hpp"
#include "schemas/units.hpp"

using namespace poolbus;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = fuzz::bytes_of(data, size);
  if (auto duration = parse_duration_ms(text)) {
    FUZZ_CHECK(*duration >= 0, "a duration is never negative");
  } else {
    fuzz::check_invalid(duration.error());
  }
  if (auto bytes = parse_size_bytes(text)) {
    FUZZ_CHECK(std::isfinite(*bytes) && *bytes >= 0, "a size is finite and >= 0");
    FUZZ_CHECK(!format_bytes(*bytes).empty(), "a size formats");
  } else {
    fuzz::check_invalid(bytes.error());
  }
  if (auto resources = parse_resources(text)) {
    FUZZ_CHECK(!format_resources(*resources).empty(), "resources format");
    fuzz::check_round_trip(*resources, encode_resources, decode_resources, "resources");
  } else {
    fuzz::check_invalid(resources.error());
  }
  return 0;
}
