// raw_baseline: the same shape of traffic as the broker's, over bare ZeroMQ, so
// every figure has a yardstick measured on the same machine in the same run:
// client DEALER -> ROUTER/ROUTER forwarder (one thread, like the broker's I/O
// thread) -> DEALER echo and back (2 hops each way), and one PUB -> SUB hop.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace zmq {
class context_t;
}

namespace poolbus::bench {

class raw_two_hop {
 public:
  // Starts the forwarder and `echoes` echo DEALERs that answer each request
  // with `reply_bytes` bytes; returns once every echo is routable.
  raw_two_hop(int echoes, size_t reply_bytes);
  ~raw_two_hop();
  raw_two_hop(const raw_two_hop&) = delete;
  raw_two_hop& operator=(const raw_two_hop&) = delete;

  // One request in flight: each round trip's latency in microseconds.
  std::vector<double> latency_us(size_t request_bytes, int count);
  // `clients` DEALERs with `window` requests in flight each, for `seconds`:
  // round trips per second.
  double round_trips_per_second(int clients, int window, size_t request_bytes, double seconds);

 private:
  void forward_loop();
  void echo_loop();

  int echoes_;
  size_t reply_bytes_;
  std::unique_ptr<zmq::context_t> ctx_;
  std::string front_, back_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> echoes_ready_{0};
  std::atomic<bool> bound_{false};
  std::thread forwarder_, echo_;
};

// One PUB -> SUB hop on loopback, one message in flight: latency in microseconds.
std::vector<double> raw_pubsub_latency_us(size_t payload_bytes, int count);

// The broker's two worker-facing sockets and nothing else: a ROUTER on
// `workers` and a SUB on `announce` that read every message and drop it.
// Simulated pools heartbeating into it give the memory and CPU that libzmq
// alone spends per pool connection. Runs until SIGTERM (`pool-bench --raw-sink`).
int run_raw_sink(const std::string& workers, const std::string& announce);

}  // namespace poolbus::bench
