// envelope: a ROUTER message split into the route it came by and its one body
// frame, and a reply put back on that same route. The route is everything up
// to and including the first empty delimiter (just the identity when there is
// none), so REQ, and DEALER with or without a delimiter, each get replies the
// way they sent.
#pragma once

#include <string>
#include <vector>

#include "schemas/frames.hpp"

namespace poolbus {

struct router_request {
  reply_route route;  // always set when the message had an identity frame
  std::string body;
  // False when there was no body frame, or more than one, after the route:
  // the caller replies `invalid` on `route` (if non-empty) instead of decoding.
  bool well_formed = false;
};

router_request split_router_message(std::vector<std::string>&& frames);

// The frames of a reply: `route` unchanged, then `body`.
outbound_frames make_reply(channel via, reply_route route, std::string body);

}  // namespace poolbus
