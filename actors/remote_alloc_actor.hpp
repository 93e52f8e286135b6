// remote alloc actor: reflow's Alloc for an alloc held through the broker,
// so the keepalive actor can drive it like a local one. Its calls go through
// an alloc_transport (the client library's synchronous calls); they block, so
// it is spawned detached, on a thread of its own.
#pragma once

#include <caf/fwd.hpp>

#include <functional>
#include <memory>
#include <string>

#include "actors/pool_api.hpp"

namespace poolbus {

// What the remote alloc needs from a client; apps implement it with bus/pool_client.
class alloc_transport {
 public:
  virtual ~alloc_transport() = default;
  virtual outcome<int64_t> keepalive(const std::string& alloc_uri, int64_t interval_ms) = 0;
  virtual outcome<AllocInspect> inspect(const std::string& alloc_uri) = 0;
  virtual outcome<void> free(const std::string& alloc_uri) = 0;
};

alloc_actor spawn_remote_alloc_actor(caf::actor_system& sys, std::string alloc_uri,
                                     std::shared_ptr<alloc_transport> transport);

}  // namespace poolbus
