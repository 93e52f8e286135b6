#include "bus/io_thread.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <deque>
#include <iterator>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "bus/curve_socket.hpp"

namespace poolbus {
namespace {

constexpr size_t channel_slots = 8;
// Messages, and bytes, taken from one socket before the others (and the
// outbound queue) get a turn, so one busy peer cannot starve the rest: a
// burst of multi-megabyte replies on one socket does not hold back the
// heartbeats waiting on another.
constexpr int inbound_batch = 256;
constexpr size_t inbound_batch_bytes = 4 << 20;

const char* channel_name(channel via) {
  switch (via) {
    case channel::api: return "api";
    case channel::stream: return "stream";
    case channel::workers: return "workers";
    case channel::announce: return "announce";
    case channel::broker: return "broker";
  }
  return "unknown";
}

zmq::socket_type zmq_type(socket_kind kind) {
  switch (kind) {
    case socket_kind::router: return zmq::socket_type::router;
    case socket_kind::dealer: return zmq::socket_type::dealer;
    case socket_kind::pub: return zmq::socket_type::pub;
    case socket_kind::sub: return zmq::socket_type::sub;
  }
  return zmq::socket_type::dealer;
}

// Frames this large are handed to ZeroMQ without a copy (a 10,000-pool
// `offers` reply is ~1 MB); smaller ones are cheaper to copy than to own.
constexpr size_t zero_copy_bytes = 64 * 1024;

// A ZeroMQ message for one frame: large frames move into a heap string that
// ZeroMQ frees once sent (or once the message is dropped).
zmq::message_t frame_message(std::string& frame) {
  if (frame.size() < zero_copy_bytes) return zmq::message_t(frame.data(), frame.size());
  auto* owned = new std::string(std::move(frame));
  return zmq::message_t(
      owned->data(), owned->size(), [](void*, void* hint) { delete static_cast<std::string*>(hint); }, owned);
}

error_kind kind_for_errno(int num) {
  switch (num) {
    case EINVAL:
    case EPROTONOSUPPORT:
    case ENOCOMPATPROTO:
    case EFAULT: return error_kind::invalid;
    default: return error_kind::unavailable;
  }
}

}  // namespace

struct io_thread::state {
  struct bus_socket {
    socket_spec spec;
    zmq::socket_t socket;
    std::string bound;
  };

  std::vector<socket_spec> specs;
  authenticated_handler on_message;

  zmq::context_t context{1};
  std::vector<bus_socket> sockets;
  std::array<int, channel_slots> socket_of_channel{};       // index into sockets, -1 = none
  std::array<std::string, channel_slots> bound_of_channel;  // kept after stop() for logs and tests

  // Outbound queue: written by any thread, drained by the I/O thread after the
  // eventfd wakes it.
  std::mutex queue_mutex;
  std::deque<outbound_frames> queue;
  bool accepting = true;  // false once stop() began: later posts are dropped
  int wake_fd = -1;
  // Guarded by queue_mutex: a post since the last take_queue already wrote the
  // eventfd, so later posts need not (one write and one wake-up per burst).
  // take_queue reads the eventfd before it clears this flag under the lock, so
  // a post that saw the flag set is always in the batch taken.
  bool wake_pending = false;

  std::atomic<bool> stopping{false};
  std::atomic<std::thread::id> io_thread_id{};  // set by run(): posts from it send at once
  std::chrono::milliseconds tick_period{0};
  std::function<void()> tick;
  hosted_work hosted;
  bool started = false;
  bool stopped = false;
  std::mutex lifecycle_mutex;
  std::thread thread;

  std::atomic<uint64_t> messages_in{0};
  std::atomic<uint64_t> messages_out{0};
  std::atomic<uint64_t> dropped{0};

  void wake() {
    uint64_t one = 1;
    // A full counter (never in practice) still leaves the fd readable.
    [[maybe_unused]] auto written = ::write(wake_fd, &one, sizeof one);
  }

  std::deque<outbound_frames> take_queue() {
    uint64_t count = 0;
    [[maybe_unused]] auto got = ::read(wake_fd, &count, sizeof count);
    std::lock_guard<std::mutex> guard(queue_mutex);
    wake_pending = false;
    return std::exchange(queue, {});
  }

  void count_drop(channel via, const char* why, bool expected) {
    uint64_t total = dropped.fetch_add(1, std::memory_order_relaxed) + 1;
    // A peer that left is routine; a full queue is worth a warning, but only
    // at powers of two so a flood does not flood the log too.
    if (!expected && (total & (total - 1)) == 0)
      spdlog::warn("bus: dropped a message on {} ({}); {} dropped so far", channel_name(via), why, total);
    else
      spdlog::debug("bus: dropped a message on {} ({})", channel_name(via), why);
  }

  void send(outbound_frames& message) {
    size_t slot = static_cast<size_t>(message.via);
    int index = slot < channel_slots ? socket_of_channel[slot] : -1;
    if (index < 0) return count_drop(message.via, "no socket for this channel", false);
    bus_socket& target = sockets[static_cast<size_t>(index)];
    if (target.spec.kind == socket_kind::sub) return count_drop(message.via, "a SUB socket cannot send", false);
    if (message.frames.empty()) return count_drop(message.via, "no frames", false);
    size_t last = message.frames.size() - 1;
    for (size_t i = 0; i <= last; ++i) {
      auto flags = zmq::send_flags::dontwait | (i < last ? zmq::send_flags::sndmore : zmq::send_flags::none);
      try {
        auto sent = target.socket.send(frame_message(message.frames[i]), flags);
        if (!sent) {
          // ZeroMQ checks the high-water mark on a message's first frame only,
          // so a refusal here means nothing of this message was queued.
          return count_drop(message.via, i == 0 ? "send queue full" : "send queue full mid-message", false);
        }
      } catch (const zmq::error_t& e) {
        if (e.num() == EHOSTUNREACH) return count_drop(message.via, "peer is gone", true);
        return count_drop(message.via, e.what(), false);
      }
    }
    messages_out.fetch_add(1, std::memory_order_relaxed);
  }

  void send_queued() {
    auto batch = take_queue();
    for (auto& message : batch) send(message);
  }

  void receive_from(bus_socket& source) {
    size_t bytes = 0;
    for (int n = 0; n < inbound_batch && bytes < inbound_batch_bytes; ++n) {
      std::vector<zmq::message_t> parts;
      zmq::recv_result_t got;
      try {
        got = zmq::recv_multipart(source.socket, std::back_inserter(parts), zmq::recv_flags::dontwait);
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) spdlog::warn("bus: receive on {} failed: {}", channel_name(source.spec.via), e.what());
        return;
      }
      if (!got) return;
      std::vector<std::string> frames;
      frames.reserve(parts.size());
      for (auto& part : parts) {
        bytes += part.size();
        frames.emplace_back(part.to_string());
      }
      // CURVE server: who sent it, as the ZAP handler named the peer (every
      // frame a connection delivers carries it; a ROUTER's own id frame does not).
      std::string user_id;
      if (source.spec.curve.server() && !parts.empty())
        if (const char* who = zmq_msg_gets(parts.back().handle(), "User-Id")) user_id = who;
      parts.clear();  // the frames hold the bytes now: a large message is not held twice meanwhile
      messages_in.fetch_add(1, std::memory_order_relaxed);
      try {
        on_message(source.spec.via, std::move(frames), std::move(user_id));
      } catch (const std::exception& e) {
        spdlog::error("bus: inbound handler for {} threw: {}", channel_name(source.spec.via), e.what());
      } catch (...) {
        spdlog::error("bus: inbound handler for {} threw", channel_name(source.spec.via));
      }
    }
  }

  void run_tick() {
    try {
      tick();
    } catch (const std::exception& e) {
      spdlog::error("bus: tick threw: {}", e.what());
    } catch (...) {
      spdlog::error("bus: tick threw");
    }
  }

  // Runs the hosted work once; whether it has more ready.
  bool run_hosted() {
    if (!hosted.run) return false;
    try {
      return hosted.run();
    } catch (const std::exception& e) {
      spdlog::error("bus: hosted work threw: {}", e.what());
    } catch (...) {
      spdlog::error("bus: hosted work threw");
    }
    return false;
  }

  void run() {
    io_thread_id.store(std::this_thread::get_id(), std::memory_order_release);
    if (hosted.attach) hosted.attach([this] { wake(); });
    poll_loop();
    if (hosted.detach) hosted.detach();
    // Posts from here on queue (and are dropped): a later thread may reuse this id.
    io_thread_id.store(std::thread::id{}, std::memory_order_release);
  }

  void poll_loop() {
    using steady = std::chrono::steady_clock;
    auto next_tick = steady::now() + tick_period;
    std::vector<zmq::pollitem_t> items;
    std::vector<size_t> socket_of_item;  // items[i + 1] polls sockets[socket_of_item[i]]
    items.push_back({nullptr, wake_fd, ZMQ_POLLIN, 0});
    for (size_t i = 0; i < sockets.size(); ++i) {
      if (sockets[i].spec.kind == socket_kind::pub) continue;
      items.push_back({sockets[i].socket.handle(), 0, ZMQ_POLLIN, 0});
      socket_of_item.push_back(i);
    }
    for (;;) {
      // No timeout but the tick's: stop(), post() and hosted work all wake
      // the poll through the eventfd.
      auto timeout = std::chrono::milliseconds{-1};
      if (tick) {
        auto now = steady::now();
        if (now >= next_tick) {
          run_tick();
          next_tick = now + tick_period;
        }
        timeout = std::chrono::ceil<std::chrono::milliseconds>(next_tick - now);
      }
      // Just before every poll, so whatever handed the work something (the
      // last reads, the tick, anything before the attach) is followed by a
      // run; with more ready the poll does not wait.
      if (run_hosted()) timeout = std::chrono::milliseconds{0};
      try {
        zmq::poll(items.data(), items.size(), timeout);
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        spdlog::error("bus: poll failed: {}", e.what());
        return;
      }
      // Read the flag before draining: everything posted before stop() is
      // then in the queue we drain below.
      bool stop_now = stopping.load(std::memory_order_acquire);
      if (stop_now) {
        run_hosted();  // what the actors do with what they have, sent before the end
        send_queued();
        return;
      }
      if (items[0].revents & ZMQ_POLLIN) send_queued();
      for (size_t i = 1; i < items.size(); ++i)
        if (items[i].revents & ZMQ_POLLIN) receive_from(sockets[socket_of_item[i - 1]]);
    }
  }

  outcome<void> open(bus_socket& entry) {
    const socket_spec& spec = entry.spec;
    auto& s = entry.socket;
    s.set(zmq::sockopt::linger, spec.linger_ms);
    s.set(zmq::sockopt::sndhwm, spec.sndhwm);
    s.set(zmq::sockopt::rcvhwm, spec.rcvhwm);
    s.set(zmq::sockopt::maxmsgsize, spec.max_message_bytes);
    if (spec.attach == socket_attach::connect) s.set(zmq::sockopt::reconnect_ivl, spec.reconnect_ivl_ms);
    if (spec.connect_timeout_ms > 0) s.set(zmq::sockopt::connect_timeout, spec.connect_timeout_ms);
    if (spec.heartbeat_ivl_ms > 0) {
      s.set(zmq::sockopt::heartbeat_ivl, spec.heartbeat_ivl_ms);
      s.set(zmq::sockopt::heartbeat_timeout, spec.heartbeat_timeout_ms);
    }
    if (spec.curve.server()) {
      s.set(zmq::sockopt::curve_server, true);
      s.set(zmq::sockopt::curve_secretkey, spec.curve.server_secret);
    } else if (spec.curve.client()) {
      set_curve_client(s, spec.curve.server_public, spec.curve.client_public, spec.curve.client_secret);
    }
    if (!spec.curve.zap_domain.empty()) s.set(zmq::sockopt::zap_domain, spec.curve.zap_domain);
    if (!spec.curve.monitor_endpoint.empty() &&
        zmq_socket_monitor(s.handle(), spec.curve.monitor_endpoint.c_str(),
                           ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0)
      throw zmq::error_t();
    switch (spec.kind) {
      case socket_kind::router:
        // A reply to a peer that left fails at once (EHOSTUNREACH) instead of
        // vanishing silently.
        s.set(zmq::sockopt::router_mandatory, true);
        if (spec.router_handover) s.set(zmq::sockopt::router_handover, true);
        if (!spec.routing_id.empty()) s.set(zmq::sockopt::routing_id, spec.routing_id);
        break;
      case socket_kind::dealer:
        if (!spec.routing_id.empty()) s.set(zmq::sockopt::routing_id, spec.routing_id);
        break;
      case socket_kind::sub:
        for (const auto& prefix : spec.subscriptions) s.set(zmq::sockopt::subscribe, prefix);
        break;
      case socket_kind::pub: break;
    }
    if (spec.attach == socket_attach::bind) {
      s.bind(spec.endpoint);
      entry.bound = s.get(zmq::sockopt::last_endpoint);
      bound_of_channel[static_cast<size_t>(spec.via)] = entry.bound;
      spdlog::info("bus: {} bound {}", channel_name(spec.via), entry.bound);
    } else {
      std::vector<std::string> endpoints{spec.endpoint};
      endpoints.insert(endpoints.end(), spec.more_endpoints.begin(), spec.more_endpoints.end());
      for (size_t i = 0; i < endpoints.size(); ++i) {
        if (spec.kind == socket_kind::router && i < spec.peer_ids.size())
          s.set(zmq::sockopt::connect_routing_id, spec.peer_ids[i]);
        s.connect(endpoints[i]);
        spdlog::info("bus: {} connecting to {}", channel_name(spec.via), endpoints[i]);
      }
    }
    return {};
  }

  outcome<void> open_all() {
    socket_of_channel.fill(-1);
    sockets.reserve(specs.size());
    for (const auto& spec : specs) {
      size_t slot = static_cast<size_t>(spec.via);
      const char* verb = spec.attach == socket_attach::bind ? "bind" : "connect";
      if (slot >= channel_slots || socket_of_channel[slot] >= 0)
        return make_pool_error(error_kind::invalid,
                               std::string("bus: a second socket for channel ") + channel_name(spec.via));
      try {
        sockets.push_back(bus_socket{spec, zmq::socket_t(context, zmq_type(spec.kind)), {}});
        socket_of_channel[slot] = static_cast<int>(sockets.size() - 1);
        auto opened = open(sockets.back());
        if (!opened) return opened;
      } catch (const zmq::error_t& e) {
        return make_pool_error(kind_for_errno(e.num()), std::string("bus: cannot ") + verb + " " + spec.endpoint +
                                                            " (" + channel_name(spec.via) + "): " + e.what());
      }
    }
    return {};
  }

  void close_sockets() {
    sockets.clear();  // each closes with its linger
    socket_of_channel.fill(-1);
    context.close();  // waits for lingering output, at most the largest linger
  }
};

io_thread::io_thread(std::vector<socket_spec> specs, inbound_handler on_message)
    : io_thread(std::move(specs), authenticated_handler([handler = std::move(on_message)](
                                                            channel via, std::vector<std::string>&& frames,
                                                            std::string&&) { handler(via, std::move(frames)); })) {}

io_thread::io_thread(std::vector<socket_spec> specs, authenticated_handler on_message)
    : state_(std::make_unique<state>()) {
  state_->specs = std::move(specs);
  state_->on_message = std::move(on_message);
  state_->socket_of_channel.fill(-1);
  state_->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

io_thread::~io_thread() {
  stop();
  if (state_->wake_fd >= 0) ::close(state_->wake_fd);
}

outcome<void> io_thread::start() {
  std::lock_guard<std::mutex> guard(state_->lifecycle_mutex);
  if (state_->started || state_->stopped)
    return make_pool_error(error_kind::precondition, "bus: io_thread started twice");
  if (state_->wake_fd < 0) return make_pool_error(error_kind::internal, "bus: cannot create an eventfd");
  auto opened = state_->open_all();
  if (!opened) {
    spdlog::error("{}", opened.error().message);
    state_->close_sockets();
    state_->stopped = true;
    std::lock_guard<std::mutex> queue_guard(state_->queue_mutex);
    state_->accepting = false;
    state_->queue.clear();
    return opened;
  }
  state_->started = true;
  state_->thread = std::thread([s = state_.get()] { s->run(); });
  return {};
}

void io_thread::stop() {
  if (state_->thread.joinable() && state_->thread.get_id() == std::this_thread::get_id()) {
    // Called from the inbound handler: ask the loop to end; whoever destroys
    // the io_thread joins it.
    state_->stopping.store(true, std::memory_order_release);
    state_->wake();
    return;
  }
  std::lock_guard<std::mutex> guard(state_->lifecycle_mutex);
  if (state_->stopped) return;
  state_->stopped = true;
  {
    std::lock_guard<std::mutex> queue_guard(state_->queue_mutex);
    state_->accepting = false;
  }
  if (state_->started) {
    state_->stopping.store(true, std::memory_order_release);
    state_->wake();
    state_->thread.join();
    state_->close_sockets();
    spdlog::debug("bus: io_thread stopped");
  }
}

void io_thread::post(outbound_frames message) {
  if (state_->io_thread_id.load(std::memory_order_acquire) == std::this_thread::get_id()) {
    // From the inbound handler, the tick or hosted work: this thread owns the sockets.
    state_->send(message);
    return;
  }
  channel via = message.via;
  bool queued = false;
  bool first_since_take = false;
  {
    std::lock_guard<std::mutex> guard(state_->queue_mutex);
    if (state_->accepting) {
      state_->queue.push_back(std::move(message));
      queued = true;
      first_since_take = !state_->wake_pending;
      state_->wake_pending = true;
    }
  }
  if (queued) {
    if (first_since_take) state_->wake();
  } else
    state_->count_drop(via, "io_thread stopped", true);
}

void io_thread::host(hosted_work work) { state_->hosted = std::move(work); }

void io_thread::set_tick(std::chrono::milliseconds period, std::function<void()> tick) {
  state_->tick_period = std::max(period, std::chrono::milliseconds{1});
  state_->tick = std::move(tick);
}

std::string io_thread::bound_endpoint(channel via) const {
  size_t slot = static_cast<size_t>(via);
  return slot < channel_slots ? state_->bound_of_channel[slot] : std::string();
}

void* io_thread::zmq_context() const { return state_->context.handle(); }

io_stats io_thread::stats() const {
  return io_stats{state_->messages_in.load(std::memory_order_relaxed),
                  state_->messages_out.load(std::memory_order_relaxed),
                  state_->dropped.load(std::memory_order_relaxed)};
}

}  // namespace poolbus
