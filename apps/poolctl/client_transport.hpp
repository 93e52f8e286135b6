// client_transport: the remote alloc actor's calls (actors/remote_alloc_actor)
// made with the client library's synchronous pool_client. One per held alloc,
// on its own connection, so keepalives never queue behind other calls.
#pragma once

#include <memory>
#include <string>

#include "actors/remote_alloc_actor.hpp"
#include "bus/pool_client.hpp"

namespace poolbus {

class client_transport : public alloc_transport {
 public:
  explicit client_transport(std::unique_ptr<pool_client> client) : client_(std::move(client)) {}
  outcome<int64_t> keepalive(const std::string& uri, int64_t interval_ms) override {
    return client_->keepalive(uri, interval_ms);
  }
  outcome<AllocInspect> inspect(const std::string& uri) override { return client_->inspect(uri); }
  outcome<void> free(const std::string& uri) override { return client_->free(uri); }

 private:
  std::unique_ptr<pool_client> client_;
};

}  // namespace poolbus
