// api_driver: a client of the broker's API that keeps many requests in flight
// on one DEALER (protocol.md allows it; "id" pairs replies up), for the
// benchmark's load. Ids are MessagePack uints chosen here.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "schemas/api_messages.hpp"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace poolbus::bench {

struct received_reply {
  uint64_t id = 0;
  outcome<api_reply> reply;
  size_t body_bytes = 0;
  double decode_us = 0;  // time spent decoding the body here, in the client
};

class api_driver {
 public:
  api_driver(zmq::context_t& ctx, const std::string& api_endpoint);
  ~api_driver();

  // Sends without waiting; returns the id the reply will carry. Encoded size in *bytes.
  uint64_t send(api_request request, size_t* bytes = nullptr);
  // The next reply, waiting up to timeout_ms; nullopt when none came.
  std::optional<received_reply> receive(int timeout_ms);
  // Sends and waits for that request's reply (others arriving meanwhile are dropped).
  // *decode_us: the client's own share of the call (decoding the reply).
  outcome<api_reply> call(api_request request, int timeout_ms, size_t* reply_bytes = nullptr,
                          double* decode_us = nullptr);

  void* handle();  // for zmq::poll over many drivers

 private:
  std::unique_ptr<zmq::socket_t> socket_;
  uint64_t next_id_ = 1;
};

api_request accept_request(const std::string& offer_uri, const Resources& want);
api_request free_request(const std::string& alloc_uri);
api_request keepalive_request(const std::string& alloc_uri, int64_t interval_ms);
api_request allocate_request(const Resources& min);
api_request plain_request(api_op op);  // ping, pools, offers, allocs

}  // namespace poolbus::bench
