// units: the command line's human units. DURATION ("500ms", "30s", "2m", "1h",
// "1m30s") to milliseconds, sizes ("8GiB", "100GB", "512") to bytes, RES
// strings ("cpu=4,mem=8GiB") to Resources, and Resources back to a table cell.
// Invariant: parsers accept the whole string or return `invalid` naming the bad part.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "schemas/resources.hpp"

namespace poolbus {

// Sequence of <number><unit>, unit one of ms s m h; numbers may have a
// fraction ("1.5s"); the total is rounded to whole milliseconds. A bare number
// (no unit) is invalid, as is a negative one.
outcome<int64_t> parse_duration_ms(std::string_view text);

// <number>[unit], unit one of B KiB MiB GiB TiB (powers of 1024) or KB MB GB
// TB (powers of 1000); no unit means bytes.
outcome<double> parse_size_bytes(std::string_view text);

// "cpu=4,mem=8GiB,disk=100GiB,gpu=1": mem and disk take sizes, every other
// key a plain non-negative number. Keys may not repeat.
outcome<Resources> parse_resources(std::string_view text);

// "cpu 4  mem 8.0GiB  disk 100GiB  gpu 1": cpu, mem, disk first (those present),
// then the rest by name, two spaces apart; "-" when there are none.
std::string format_resources(const Resources& resources);

// A size for a table cell: "512B", "8.0GiB", "100GiB" (no fraction from 100 up).
std::string format_bytes(double bytes);

}  // namespace poolbus
