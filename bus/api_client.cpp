#include "bus/api_client.hpp"

#include <chrono>
#include <iterator>
#include <vector>

#include <spdlog/spdlog.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "bus/curve_socket.hpp"
#include "schemas/api_messages.hpp"

namespace poolbus {
namespace {

using steady = std::chrono::steady_clock;

constexpr int64_t max_reply_bytes = 64 << 20;  // a reply can carry up to 1 MiB of logs; be generous

pool_error no_answer(int64_t timeout_ms) { return timeout_error("broker", timeout_ms); }

// Milliseconds left until `deadline`, rounded up (so a wait never ends just
// short of it), never negative.
std::chrono::milliseconds left_until(steady::time_point deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - steady::now());
  return left.count() > 0 ? left : std::chrono::milliseconds{0};
}

bool passed(steady::time_point deadline) { return steady::now() >= deadline; }

}  // namespace

struct api_client::connection {
  zmq::context_t context{1};
  zmq::socket_t socket{context, zmq::socket_type::dealer};
};

outcome<std::unique_ptr<api_client>> api_client::connect(const std::string& endpoint,
                                                         const std::optional<curve_client_keys>& curve) {
  auto conn = std::make_unique<connection>();
  try {
    conn->socket.set(zmq::sockopt::linger, 0);
    conn->socket.set(zmq::sockopt::reconnect_ivl, 100);
    conn->socket.set(zmq::sockopt::maxmsgsize, max_reply_bytes);
    if (curve) {
      set_curve_client(conn->socket, curve->server_public, curve->own.public_key, curve->own.secret_key);
    }
    conn->socket.connect(endpoint);
  } catch (const zmq::error_t& e) {
    return make_pool_error(error_kind::invalid, "cannot connect to " + endpoint + ": " + e.what());
  }
  return std::unique_ptr<api_client>(new api_client(endpoint, std::move(conn)));
}

api_client::api_client(std::string endpoint, std::unique_ptr<connection> conn)
    : endpoint_(std::move(endpoint)), conn_(std::move(conn)) {}

api_client::~api_client() = default;

outcome<std::string> api_client::call(std::string body, int64_t timeout_ms) {
  std::lock_guard<std::mutex> guard(call_mutex_);
  auto deadline = steady::now() + std::chrono::milliseconds(timeout_ms > 0 ? timeout_ms : 0);
  auto& socket = conn_->socket;
  const std::string request_id = reply_id_raw(body);

  // A connected DEALER queues while the broker is away; it refuses only when
  // its queue is full, so wait for room until the deadline.
  zmq::pollitem_t writable{socket.handle(), 0, ZMQ_POLLOUT, 0};
  try {
    while (zmq::poll(&writable, 1, left_until(deadline)) == 0)
      if (passed(deadline)) return no_answer(timeout_ms);
    std::vector<zmq::message_t> request;
    request.emplace_back();  // empty delimiter: the broker echoes it, as for REQ
    request.emplace_back(body.data(), body.size());
    if (!zmq::send_multipart(socket, request, zmq::send_flags::dontwait)) return no_answer(timeout_ms);
  } catch (const zmq::error_t& e) {
    return make_pool_error(error_kind::unavailable, "cannot send to " + endpoint_ + ": " + e.what());
  }

  zmq::pollitem_t readable{socket.handle(), 0, ZMQ_POLLIN, 0};
  for (;;) {
    try {
      if (zmq::poll(&readable, 1, left_until(deadline)) == 0) {
        if (passed(deadline)) return no_answer(timeout_ms);
        continue;
      }
      std::vector<zmq::message_t> frames;
      if (!zmq::recv_multipart(socket, std::back_inserter(frames), zmq::recv_flags::dontwait)) continue;
      if (frames.size() != 2 || frames[0].size() != 0) {
        spdlog::debug("api_client: ignored a reply of {} frames without the delimiter", frames.size());
        continue;
      }
      std::string reply = frames[1].to_string();
      if (reply_id_raw(reply) == request_id) return reply;
      spdlog::debug("api_client: ignored a reply to another request (a late answer to an earlier call)");
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      return make_pool_error(error_kind::internal, "receive from " + endpoint_ + " failed: " + e.what());
    }
  }
}

}  // namespace poolbus
