// utf8_text: what pool-dash needs of UTF-8. Its JSON is UTF-8, while log
// bytes, and whatever a client puts in a query, are any bytes.
#pragma once

#include <string>
#include <string_view>

namespace poolbus {

// Whether `bytes` is well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
bool valid_utf8(std::string_view bytes);
// `bytes` with each byte that is not part of a well-formed sequence replaced by U+FFFD.
std::string utf8_lossy(std::string_view bytes);

}  // namespace poolbus
