// Frames as actors see them: a multipart message bound for one of the
// process's sockets, and the sink that takes it (the bus's I/O thread). Actors
// never touch a socket; they post frames here. No ZeroMQ in this header.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace poolbus {

// Which socket a message goes out of (or came in on).
enum class channel : uint8_t {
  api,       // broker: client ROUTER
  stream,    // broker: offer stream PUB
  workers,   // broker: workers ROUTER
  announce,  // broker: announce SUB (in) / worker: announce PUB (out)
  broker,    // worker: DEALER to the broker's workers ROUTER
};

// A ROUTER's reply route: the identity and envelope frames a request came
// with, up to and including the empty delimiter if there was one. Replies
// carry it back unchanged (Majordomo-style explicit envelopes).
using reply_route = std::vector<std::string>;

struct outbound_frames {
  channel via = channel::api;
  std::vector<std::string> frames;
};

// Thread-safe: any actor may post at any time.
class frame_sink {
 public:
  virtual ~frame_sink() = default;
  virtual void post(outbound_frames message) = 0;
};

using frame_sink_ptr = std::shared_ptr<frame_sink>;

}  // namespace poolbus
