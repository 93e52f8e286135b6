#include "bench/raw_baseline.hpp"

#include <signal.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <zmq.hpp>

namespace poolbus::bench {
namespace {

using steady = std::chrono::steady_clock;

double us_since(steady::time_point t0) { return std::chrono::duration<double, std::micro>(steady::now() - t0).count(); }

std::vector<zmq::message_t> recv_all(zmq::socket_t& s) {
  std::vector<zmq::message_t> frames;
  do {
    zmq::message_t m;
    if (!s.recv(m, zmq::recv_flags::dontwait)) break;
    frames.push_back(std::move(m));
  } while (frames.back().more());
  return frames;
}

void send_all(zmq::socket_t& s, std::vector<zmq::message_t>& frames) {
  for (size_t i = 0; i < frames.size(); ++i)
    s.send(frames[i], i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
}

}  // namespace

raw_two_hop::raw_two_hop(int echoes, size_t reply_bytes)
    : echoes_(echoes), reply_bytes_(reply_bytes), ctx_(std::make_unique<zmq::context_t>(1)) {
  forwarder_ = std::thread([this] { forward_loop(); });
  while (!bound_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  echo_ = std::thread([this] { echo_loop(); });
  auto deadline = steady::now() + std::chrono::seconds(10);
  while (echoes_ready_ < echoes_) {
    if (steady::now() > deadline) throw std::runtime_error("raw baseline: echoes did not connect");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

raw_two_hop::~raw_two_hop() {
  stopping_ = true;
  if (echo_.joinable()) echo_.join();
  if (forwarder_.joinable()) forwarder_.join();
}

void raw_two_hop::forward_loop() {
  zmq::socket_t front(*ctx_, zmq::socket_type::router), back(*ctx_, zmq::socket_type::router);
  for (auto* s : {&front, &back}) {
    s->set(zmq::sockopt::linger, 0);
    s->set(zmq::sockopt::sndhwm, 100000);
    s->set(zmq::sockopt::rcvhwm, 100000);
  }
  front.bind("tcp://127.0.0.1:*");
  back.bind("tcp://127.0.0.1:*");
  front_ = front.get(zmq::sockopt::last_endpoint);
  back_ = back.get(zmq::sockopt::last_endpoint);
  bound_ = true;
  std::vector<std::string> echo_ids;
  size_t next = 0;
  zmq::pollitem_t items[] = {{front.handle(), 0, ZMQ_POLLIN, 0}, {back.handle(), 0, ZMQ_POLLIN, 0}};
  while (!stopping_) {
    zmq::poll(items, 2, std::chrono::milliseconds(50));
    // Drain both sides fully each wake, as the broker's I/O thread does.
    for (bool more = true; more;) {
      more = false;
      auto from_client = recv_all(front);  // [client, body]
      if (!from_client.empty() && !echo_ids.empty()) {
        more = true;
        std::vector<zmq::message_t> out;
        out.emplace_back(echo_ids[next++ % echo_ids.size()]);
        for (auto& f : from_client) out.push_back(std::move(f));
        send_all(back, out);
      }
      auto from_echo = recv_all(back);  // [echo, "ready"] or [echo, client, body]
      if (from_echo.size() == 2) {
        more = true;
        echo_ids.push_back(from_echo[0].to_string());
        ++echoes_ready_;
      } else if (from_echo.size() == 3) {
        more = true;
        std::vector<zmq::message_t> out;
        out.push_back(std::move(from_echo[1]));
        out.push_back(std::move(from_echo[2]));
        send_all(front, out);
      }
    }
  }
}

void raw_two_hop::echo_loop() {
  std::vector<zmq::socket_t> dealers;
  std::vector<zmq::pollitem_t> items;
  for (int i = 0; i < echoes_; ++i) {
    dealers.emplace_back(*ctx_, zmq::socket_type::dealer);
    auto& d = dealers.back();
    d.set(zmq::sockopt::linger, 0);
    d.set(zmq::sockopt::routing_id, "echo-" + std::to_string(i));
    d.set(zmq::sockopt::sndhwm, 100000);
    d.set(zmq::sockopt::rcvhwm, 100000);
    d.connect(back_);
    d.send(zmq::str_buffer("ready"), zmq::send_flags::none);
  }
  for (auto& d : dealers) items.push_back({d.handle(), 0, ZMQ_POLLIN, 0});
  std::string reply(reply_bytes_, 'r');
  while (!stopping_) {
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(50));
    for (size_t i = 0; i < dealers.size(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      for (;;) {
        auto frames = recv_all(dealers[i]);  // [client, body]
        if (frames.size() != 2) break;
        std::vector<zmq::message_t> out;
        out.push_back(std::move(frames[0]));
        out.emplace_back(reply.data(), reply.size());
        send_all(dealers[i], out);
      }
    }
  }
}

std::vector<double> raw_two_hop::latency_us(size_t request_bytes, int count) {
  zmq::socket_t client(*ctx_, zmq::socket_type::dealer);
  client.set(zmq::sockopt::linger, 0);
  client.connect(front_);
  std::string body(request_bytes, 'q');
  std::vector<double> samples;
  samples.reserve(count);
  for (int i = -count / 10 - 1; i < count; ++i) {  // the first tenth warms up
    auto t0 = steady::now();
    client.send(zmq::buffer(body), zmq::send_flags::none);
    zmq::message_t reply;
    if (!client.recv(reply)) throw std::runtime_error("raw baseline: no reply");
    if (i >= 0) samples.push_back(us_since(t0));
  }
  return samples;
}

double raw_two_hop::round_trips_per_second(int clients, int window, size_t request_bytes, double seconds) {
  std::vector<zmq::socket_t> sockets;
  std::vector<zmq::pollitem_t> items;
  std::string body(request_bytes, 'q');
  for (int i = 0; i < clients; ++i) {
    sockets.emplace_back(*ctx_, zmq::socket_type::dealer);
    sockets.back().set(zmq::sockopt::linger, 0);
    sockets.back().connect(front_);
  }
  for (auto& s : sockets) {
    items.push_back({s.handle(), 0, ZMQ_POLLIN, 0});
    for (int w = 0; w < window; ++w) s.send(zmq::buffer(body), zmq::send_flags::none);
  }
  uint64_t done = 0;
  auto t0 = steady::now();
  auto end = t0 + std::chrono::duration<double>(seconds);
  while (steady::now() < end) {
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(100));
    for (size_t i = 0; i < sockets.size(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      zmq::message_t reply;
      while (sockets[i].recv(reply, zmq::recv_flags::dontwait)) {
        ++done;
        sockets[i].send(zmq::buffer(body), zmq::send_flags::none);
      }
    }
  }
  return static_cast<double>(done) / std::chrono::duration<double>(steady::now() - t0).count();
}

std::vector<double> raw_pubsub_latency_us(size_t payload_bytes, int count) {
  zmq::context_t ctx(1);
  zmq::socket_t pub(ctx, zmq::socket_type::pub), sub(ctx, zmq::socket_type::sub);
  pub.set(zmq::sockopt::linger, 0);
  sub.set(zmq::sockopt::linger, 0);
  pub.bind("tcp://127.0.0.1:*");
  sub.set(zmq::sockopt::subscribe, "");
  sub.connect(pub.get(zmq::sockopt::last_endpoint));
  std::string topic = "offers.raw", body(payload_bytes, 'p');
  // Slow joiner: publish until the subscription is in place.
  for (;;) {
    pub.send(zmq::buffer(topic), zmq::send_flags::sndmore);
    pub.send(zmq::buffer(body), zmq::send_flags::none);
    zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(20)) > 0) break;
  }
  while (!recv_all(sub).empty()) {
  }
  std::vector<double> samples;
  for (int i = -count / 10 - 1; i < count; ++i) {
    auto t0 = steady::now();
    pub.send(zmq::buffer(topic), zmq::send_flags::sndmore);
    pub.send(zmq::buffer(body), zmq::send_flags::none);
    zmq::message_t t, b;
    if (!sub.recv(t) || !sub.recv(b)) throw std::runtime_error("raw pubsub: no message");
    if (i >= 0) samples.push_back(us_since(t0));
  }
  return samples;
}

namespace {
std::atomic<bool> sink_stopping{false};
void on_sink_signal(int) { sink_stopping = true; }
}  // namespace

int run_raw_sink(const std::string& workers, const std::string& announce) {
  signal(SIGTERM, on_sink_signal);
  signal(SIGINT, on_sink_signal);
  zmq::context_t ctx(1);
  zmq::socket_t router(ctx, zmq::socket_type::router), sub(ctx, zmq::socket_type::sub);
  for (auto* s : {&router, &sub}) {
    s->set(zmq::sockopt::linger, 0);
    s->set(zmq::sockopt::rcvhwm, 100000);  // as the broker's
  }
  sub.set(zmq::sockopt::subscribe, "");
  router.bind(workers);
  sub.bind(announce);
  zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0}, {sub.handle(), 0, ZMQ_POLLIN, 0}};
  zmq::message_t frame;
  while (!sink_stopping) {
    try {
      zmq::poll(items, 2, std::chrono::milliseconds(100));
    } catch (const zmq::error_t&) {  // EINTR at SIGTERM
      continue;
    }
    for (auto* s : {&router, &sub})
      while (s->recv(frame, zmq::recv_flags::dontwait)) {
      }
  }
  return 0;
}

}  // namespace poolbus::bench
