#include "bus/stream_subscriber.hpp"

#include <chrono>
#include <deque>
#include <functional>
#include <iterator>
#include <unordered_set>
#include <vector>

#include <spdlog/spdlog.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "bus/curve_socket.hpp"
#include "bus/endpoints.hpp"

namespace poolbus {
namespace {
using steady = std::chrono::steady_clock;
constexpr int64_t max_event_bytes = 16 << 20;
}  // namespace

// The last messages yielded, by a hash of their bytes: with several brokers
// each republishes a worker's message verbatim, so a copy is an exact repeat.
class recent_messages {
 public:
  static constexpr size_t window = 4096;
  // Whether (topic, body) was among the last `window`; remembers it either way.
  bool repeat(const std::string& topic, const std::string& body) {
    const size_t key = std::hash<std::string>{}(topic)*31 + std::hash<std::string>{}(body);
    const bool seen = keys_.count(key) > 0;
    order_.push_back(key);
    keys_.insert(key);
    if (order_.size() > window) keys_.erase(keys_.find(order_.front())), order_.pop_front();
    return seen;
  }

 private:
  std::deque<size_t> order_;
  std::unordered_multiset<size_t> keys_;
};

struct stream_subscriber::connection {
  zmq::context_t context{1};
  zmq::socket_t socket{context, zmq::socket_type::sub};
  bool several = false;  // connected to more than one broker: drop repeats
  recent_messages recent;
};

outcome<std::unique_ptr<stream_subscriber>> stream_subscriber::connect(const std::string& endpoint,
                                                                       const std::string& topic_prefix,
                                                                       const std::optional<curve_client_keys>& curve) {
  auto conn = std::make_unique<connection>();
  try {
    conn->socket.set(zmq::sockopt::linger, 0);
    conn->socket.set(zmq::sockopt::reconnect_ivl, 100);
    conn->socket.set(zmq::sockopt::maxmsgsize, max_event_bytes);
    conn->socket.set(zmq::sockopt::subscribe, topic_prefix);
    if (curve) {
      set_curve_client(conn->socket, curve->server_public, curve->own.public_key, curve->own.secret_key);
    }
    const auto endpoints = split_endpoints(endpoint);
    for (const std::string& one : endpoints) conn->socket.connect(one);
    conn->several = endpoints.size() > 1;
  } catch (const zmq::error_t& e) {
    return make_pool_error(error_kind::invalid, "cannot connect to " + endpoint + ": " + e.what());
  }
  return std::unique_ptr<stream_subscriber>(new stream_subscriber(std::move(conn)));
}

stream_subscriber::stream_subscriber(std::unique_ptr<connection> conn) : conn_(std::move(conn)) {}

stream_subscriber::~stream_subscriber() = default;

void stream_subscriber::subscribe(const std::string& topic_prefix) {
  std::lock_guard<std::mutex> guard(mutex_);
  conn_->socket.set(zmq::sockopt::subscribe, topic_prefix);
}

outcome<stream_subscriber::topic_and_body> stream_subscriber::next(int64_t timeout_ms) {
  std::lock_guard<std::mutex> guard(mutex_);
  auto deadline = steady::now() + std::chrono::milliseconds(timeout_ms > 0 ? timeout_ms : 0);
  zmq::pollitem_t readable{conn_->socket.handle(), 0, ZMQ_POLLIN, 0};
  for (;;) {
    // Rounded up, and re-checked, so the wait never ends short of the deadline.
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - steady::now());
    if (left.count() < 0) left = std::chrono::milliseconds{0};
    try {
      if (zmq::poll(&readable, 1, left) == 0) {
        if (steady::now() < deadline) continue;
        return make_pool_error(error_kind::timeout, "no stream message within " + std::to_string(timeout_ms) + " ms");
      }
      std::vector<zmq::message_t> frames;
      if (!zmq::recv_multipart(conn_->socket, std::back_inserter(frames), zmq::recv_flags::dontwait)) continue;
      if (frames.size() != 2) {
        spdlog::debug("stream_subscriber: skipped a message of {} frames", frames.size());
        continue;
      }
      topic_and_body message{frames[0].to_string(), frames[1].to_string()};
      if (conn_->several && conn_->recent.repeat(message.first, message.second)) continue;  // the other broker's copy
      return message;
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      return make_pool_error(error_kind::internal, std::string("stream receive failed: ") + e.what());
    }
  }
}

}  // namespace poolbus
