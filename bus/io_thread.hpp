// io_thread: the one thread per process that owns every ZeroMQ socket. Actors
// and other threads never touch a socket; they post() frames, which the thread
// sends without ever blocking (a message it cannot send now is dropped and
// counted), and every complete inbound multipart message goes to one handler,
// called on this thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "schemas/frames.hpp"
#include "schemas/outcome.hpp"

namespace poolbus {

enum class socket_kind : uint8_t { router, dealer, pub, sub };
enum class socket_attach : uint8_t { bind, connect };

// CURVE for one socket (bus/security.hpp makes the keys). All empty = plaintext.
struct socket_curve {
  std::string server_secret;  // bound: be a CURVE server with this Z85 secret key
  std::string client_public;  // connecting: be a CURVE client with this pair...
  std::string client_secret;
  std::string server_public;     // ...of the server with this public key
  std::string zap_domain;        // bound: the domain the ZAP handler judges this socket by
  std::string monitor_endpoint;  // inproc:// endpoint for zmq_socket_monitor (handshake failures), or empty

  bool server() const { return !server_secret.empty(); }
  bool client() const { return !client_secret.empty(); }
};

// How one socket of the process is made. One socket per channel.
struct socket_spec {
  channel via = channel::api;
  socket_kind kind = socket_kind::router;
  socket_attach attach = socket_attach::bind;
  std::string endpoint;
  std::vector<std::string> more_endpoints;  // connect: the same socket also connects to these
  // router + connect: the routing id the peer at endpoint (then more_endpoints[i]) is
  // addressed by (ZMQ_CONNECT_ROUTING_ID), so one ROUTER can talk to several brokers.
  std::vector<std::string> peer_ids;
  std::string routing_id;                  // dealer or router: ours; empty = ZeroMQ picks one
  std::vector<std::string> subscriptions;  // sub only; "" = everything
  bool router_handover = false;            // router: a reconnecting routing id takes over its old pipe
  int linger_ms = 200;                     // at stop: how long queued output may still leave
  int reconnect_ivl_ms = 100;              // connecting sockets retry this often
  int sndhwm = 10000;                      // messages queued per peer before sends drop
  int rcvhwm = 10000;
  int64_t max_message_bytes = 16 << 20;  // a larger inbound frame closes that connection
  int heartbeat_ivl_ms = 0;              // > 0: ZMTP heartbeats, so a dead peer's pipe goes away...
  int heartbeat_timeout_ms = 0;          // ...after this long without traffic
  int connect_timeout_ms = 0;            // connect: > 0 gives up a TCP connect after this long and retries
                                         // (else a SYN lost in a partition waits out the kernel's backoff)
  socket_curve curve;

  static socket_spec bound(channel via, socket_kind kind, std::string endpoint) {
    socket_spec s;
    s.via = via;
    s.kind = kind;
    s.attach = socket_attach::bind;
    s.endpoint = std::move(endpoint);
    return s;
  }
  static socket_spec connected(channel via, socket_kind kind, std::string endpoint) {
    auto s = bound(via, kind, std::move(endpoint));
    s.attach = socket_attach::connect;
    return s;
  }
};

// Counters for benchmarks and tests; read at any time.
struct io_stats {
  uint64_t messages_in = 0;   // complete multipart messages handed to the handler
  uint64_t messages_out = 0;  // messages accepted by a socket
  uint64_t dropped = 0;       // posted messages that could not be sent (no such peer, full queue, no socket)
};

class io_thread : public frame_sink {
 public:
  // Called on the I/O thread for each complete inbound message. It must not
  // block: hand the frames on (e.g. anon_send) and return.
  using inbound_handler = std::function<void(channel, std::vector<std::string>&& frames)>;
  // The same, with the peer's authenticated identity: the ZAP handler's
  // User-Id on a CURVE server socket, empty otherwise.
  using authenticated_handler = std::function<void(channel, std::vector<std::string>&& frames, std::string&& user_id)>;

  io_thread(std::vector<socket_spec> specs, inbound_handler on_message);
  io_thread(std::vector<socket_spec> specs, authenticated_handler on_message);
  ~io_thread() override;  // stops
  io_thread(const io_thread&) = delete;
  io_thread& operator=(const io_thread&) = delete;

  // Makes, binds and connects every socket, then starts the thread. On failure
  // (bad endpoint, address in use, duplicate channel) nothing runs and the
  // error names the endpoint. Call once.
  outcome<void> start();

  // Sends what was posted before the call (without blocking), then ends the
  // thread and closes the sockets. Idempotent; safe from any thread but the I/O thread.
  void stop();

  // Thread-safe. Messages posted before start() go out once it has started;
  // after stop() they are dropped. Posted on the I/O thread itself (the
  // inbound handler, the tick, hosted work), a message is sent at once,
  // without the queue, until the thread ends.
  void post(outbound_frames message) override;

  // Runs `tick` on the I/O thread about every `period` (never more often)
  // while it runs, between socket reads: for work the inbound handler batches.
  // Call before start().
  void set_tick(std::chrono::milliseconds period, std::function<void()> tick);

  // Work the I/O thread runs between socket reads: the process's actors
  // (actors/io_scheduler), so a message and its reply cross no other thread.
  // `attach(wake)` is called on the I/O thread as it starts (`wake`, from any
  // thread, makes it call `run` soon); `run` after every wake-up and batch of
  // reads, and again before the thread ends (it does what is ready and says
  // whether more is); `detach` as the thread ends. Call before start().
  struct hosted_work {
    std::function<void(std::function<void()> wake)> attach;
    std::function<bool()> run;
    std::function<void()> detach;
  };
  void host(hosted_work work);

  // The endpoint a bound socket really listens on (resolves tcp://host:* and
  // port 0); empty for a channel that is not bound. Valid after start().
  std::string bound_endpoint(channel via) const;

  io_stats stats() const;

  // The ZeroMQ context (a void* zmq context) the sockets live in, from
  // construction on: a ZAP handler must bind in it before start(). Stop the
  // io_thread before the handler: while none is bound libzmq admits anyone.
  void* zmq_context() const;

 private:
  struct state;
  std::unique_ptr<state> state_;
};

}  // namespace poolbus
