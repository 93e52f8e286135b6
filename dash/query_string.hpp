// query_string: the strict reader of an HTTP request target's query, for
// pool-dash's endpoints. Invariant: what it accepts is small (at most
// max_bytes), well formed (every %XX a hex pair, no control bytes after
// decoding, valid UTF-8) and names only the parameters the endpoint knows, each once;
// anything else is an `invalid` error naming the problem (HTTP 400).
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>

#include "schemas/outcome.hpp"

namespace poolbus {

constexpr size_t max_query_bytes = 4096;

// `target` is the raw request target ("/api/allocs?owner=a%20b"); its query
// (after the first '?') is split on '&' into name=value pairs, decoded.
outcome<std::map<std::string, std::string>> parse_query(std::string_view target, const std::set<std::string>& known);

}  // namespace poolbus
