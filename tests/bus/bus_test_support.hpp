// Test support for the bus: waiting for a condition with a deadline (never a
// fixed sleep), an inbox that collects what an io_thread hands its handler, and
// a scripted broker (a ROUTER whose replies a test decides).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <msgpack.hpp>

#include "bus/envelope.hpp"
#include "bus/io_thread.hpp"
#include "schemas/frames.hpp"

namespace poolbus::test {

// True as soon as pred() holds; false if it still does not at the deadline.
template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds within = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + within;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

struct inbound_message {
  channel via = channel::api;
  std::vector<std::string> frames;
};

// Filled on the I/O thread, emptied by the test (or an echo thread).
class frame_inbox {
 public:
  void push(channel via, std::vector<std::string>&& frames) {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      messages_.push_back({via, std::move(frames)});
    }
    ready_.notify_all();
  }

  std::optional<inbound_message> pop(std::chrono::milliseconds within = std::chrono::seconds(5)) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!ready_.wait_for(lock, within, [&] { return !messages_.empty() || closed_; })) return std::nullopt;
    if (messages_.empty()) return std::nullopt;
    inbound_message next = std::move(messages_.front());
    messages_.pop_front();
    return next;
  }

  size_t size() {
    std::lock_guard<std::mutex> guard(mutex_);
    return messages_.size();
  }

  // Wakes every pop() for good (lets an echo thread end).
  void close() {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      closed_ = true;
    }
    ready_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<inbound_message> messages_;
  bool closed_ = false;
};

// A client API `ping` request body with integer id `id`, packed by hand (the
// bytes a non-C++ client would send).
inline std::string ping_request(int id) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> packer(buffer);
  packer.pack_map(3);
  packer.pack("v"), packer.pack(1);
  packer.pack("op"), packer.pack("ping");
  packer.pack("id"), packer.pack(id);
  return std::string(buffer.data(), buffer.size());
}

// A broker stand-in: a ROUTER io_thread whose handler (on the I/O thread)
// decides the replies.
using reply_script = std::function<void(io_thread&, reply_route, std::string body)>;

inline socket_spec api_router() {
  socket_spec spec;
  spec.via = channel::api;
  spec.kind = socket_kind::router;
  spec.attach = socket_attach::bind;
  spec.endpoint = "tcp://127.0.0.1:*";
  return spec;
}

class scripted_broker {
 public:
  explicit scripted_broker(reply_script script)
      : script_(std::move(script)), bus_({api_router()}, [this](channel, std::vector<std::string>&& frames) {
          auto request = split_router_message(std::move(frames));
          if (request.well_formed) script_(bus_, std::move(request.route), std::move(request.body));
        }) {
    REQUIRE(bus_.start().ok());
  }
  std::string endpoint() const { return bus_.bound_endpoint(channel::api); }

 private:
  reply_script script_;
  io_thread bus_;
};

}  // namespace poolbus::test
