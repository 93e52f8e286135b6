// reply_lists: offers and pools replies (10,000 entries, ~1 MB) read straight
// from their bytes with msgpack_cursor (msgpack_scan.hpp): no msgpack object
// tree, no paths.
// Invariant: it only ever answers what the strict decode (codec::unpack_body +
// the codec readers) answers for the same body; for anything but the exact
// shape encode_{offers,pools}_reply writes it answers nullopt ("not read"),
// and the caller runs the strict decode, which names the problem.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "schemas/api_messages.hpp"

namespace poolbus {

// The ok reply {"v": 1, "id": <scalar>, "ok": true, "pools"/"offers": [...]}
// that decode_api_reply's strict path would yield, or nullopt (which says
// nothing about whether the body is valid).
std::optional<api_reply> read_list_reply(std::string_view body);

// The id that reply_id_raw answers for such a reply, checking the same shape
// but building no entries; nullopt when the body is not of that shape.
std::optional<std::string> list_reply_id(std::string_view body);

}  // namespace poolbus
