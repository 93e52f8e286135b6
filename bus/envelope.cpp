#include "bus/envelope.hpp"

#include <algorithm>
#include <iterator>

namespace poolbus {

router_request split_router_message(std::vector<std::string>&& frames) {
  router_request request;
  if (frames.empty()) return request;
  // Frame 0 is the identity the ROUTER added; a delimiter is searched after it.
  auto delimiter = std::find_if(frames.begin() + 1, frames.end(), [](const std::string& f) { return f.empty(); });
  auto route_end = delimiter == frames.end() ? frames.begin() + 1 : delimiter + 1;
  request.route.assign(std::make_move_iterator(frames.begin()), std::make_move_iterator(route_end));
  if (std::distance(route_end, frames.end()) == 1) {
    request.body = std::move(*route_end);
    request.well_formed = true;
  }
  return request;
}

outbound_frames make_reply(channel via, reply_route route, std::string body) {
  outbound_frames reply;
  reply.via = via;
  reply.frames = std::move(route);
  reply.frames.push_back(std::move(body));
  return reply;
}

}  // namespace poolbus
