#include "bench/api_driver.hpp"

#include <chrono>
#include <msgpack.hpp>
#include <zmq.hpp>

namespace poolbus::bench {
namespace {

std::string pack_id(uint64_t id) {
  msgpack::sbuffer buf;
  msgpack::pack(buf, id);
  return std::string(buf.data(), buf.size());
}

uint64_t unpack_id(const std::string& raw) {
  try {
    auto handle = msgpack::unpack(raw.data(), raw.size());
    if (handle.get().type == msgpack::type::POSITIVE_INTEGER) return handle.get().as<uint64_t>();
  } catch (...) {
  }
  return 0;
}

}  // namespace

api_driver::api_driver(zmq::context_t& ctx, const std::string& api_endpoint)
    : socket_(std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer)) {
  socket_->set(zmq::sockopt::linger, 0);
  socket_->set(zmq::sockopt::sndhwm, 100000);
  socket_->set(zmq::sockopt::rcvhwm, 100000);
  socket_->connect(api_endpoint);
}

api_driver::~api_driver() = default;

void* api_driver::handle() { return socket_->handle(); }

uint64_t api_driver::send(api_request request, size_t* bytes) {
  uint64_t id = next_id_++;
  request.id_raw = pack_id(id);
  auto body = encode_api_request(request);
  if (bytes) *bytes = body.size();
  socket_->send(zmq::message_t(), zmq::send_flags::sndmore);  // empty delimiter
  socket_->send(zmq::buffer(body), zmq::send_flags::none);
  return id;
}

std::optional<received_reply> api_driver::receive(int timeout_ms) {
  zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
  if (timeout_ms != 0 && !(socket_->get(zmq::sockopt::events) & ZMQ_POLLIN))
    if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) <= 0) return std::nullopt;
  zmq::message_t frame;
  std::string body;
  for (;;) {
    if (!socket_->recv(frame, zmq::recv_flags::dontwait)) return std::nullopt;
    body = frame.to_string();
    if (!frame.more()) break;
  }
  auto decode_start = std::chrono::steady_clock::now();
  received_reply r{unpack_id(reply_id_raw(body)), decode_api_reply(body), body.size()};
  r.decode_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - decode_start).count();
  return r;
}

outcome<api_reply> api_driver::call(api_request request, int timeout_ms, size_t* reply_bytes, double* decode_us) {
  auto id = send(std::move(request));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return pool_error{error_kind::timeout, "no reply"};
    auto r = receive(static_cast<int>(left.count()) + 1);
    if (r && r->id == id) {
      if (reply_bytes) *reply_bytes = r->body_bytes;
      if (decode_us) *decode_us = r->decode_us;
      return std::move(r->reply);
    }
  }
}

api_request accept_request(const std::string& offer_uri, const Resources& want) {
  api_request r;
  r.op = api_op::accept;
  r.uri = offer_uri;
  r.meta.want = want;
  r.meta.owner = "pool-bench";
  return r;
}

api_request free_request(const std::string& alloc_uri) {
  api_request r;
  r.op = api_op::free;
  r.uri = alloc_uri;
  return r;
}

api_request keepalive_request(const std::string& alloc_uri, int64_t interval_ms) {
  api_request r;
  r.op = api_op::keepalive;
  r.uri = alloc_uri;
  r.interval_ms = interval_ms;
  return r;
}

api_request allocate_request(const Resources& min) {
  api_request r;
  r.op = api_op::allocate;
  r.place.min = min;
  r.meta.owner = "pool-bench";
  return r;
}

api_request plain_request(api_op op) {
  api_request r;
  r.op = op;
  return r;
}

}  // namespace poolbus::bench
