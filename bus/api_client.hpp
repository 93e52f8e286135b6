// api_client: a synchronous client of the broker's client API (protocol.md),
// for poolctl and the C++ client library. One DEALER (with the empty delimiter
// frame); a call returns only the reply whose "id" equals its request's, so a
// late reply to an earlier, timed-out call is never taken for a newer one.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "bus/security.hpp"
#include "schemas/outcome.hpp"

namespace poolbus {

class api_client {
 public:
  // Connects (ZeroMQ connects in the background, so an absent broker shows
  // only as a timeout on call). Fails only on a bad endpoint. With `curve`
  // the connection is CURVE-encrypted and authenticated (a broker that refuses
  // the key also shows only as a timeout).
  static outcome<std::unique_ptr<api_client>> connect(const std::string& endpoint,
                                                      const std::optional<curve_client_keys>& curve = std::nullopt);
  ~api_client();
  api_client(const api_client&) = delete;
  api_client& operator=(const api_client&) = delete;

  // Sends one MessagePack request body and waits up to timeout_ms for the reply
  // with the same "id" (give each request its own id: with equal ids a late
  // reply can pass for a newer one). Returns the reply body as it came;
  // `timeout` when none arrives in time. Thread-safe: calls take turns.
  outcome<std::string> call(std::string body, int64_t timeout_ms);

  const std::string& endpoint() const { return endpoint_; }

 private:
  struct connection;
  api_client(std::string endpoint, std::unique_ptr<connection> conn);

  std::string endpoint_;
  std::mutex call_mutex_;
  std::unique_ptr<connection> conn_;
};

}  // namespace poolbus
