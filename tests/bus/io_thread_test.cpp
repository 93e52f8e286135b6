#include "bus/io_thread.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "bus/bus_test_support.hpp"
#include "bus/envelope.hpp"

using namespace poolbus;
using poolbus::test::frame_inbox;
using poolbus::test::wait_until;
using namespace std::chrono_literals;

namespace {

socket_spec router_spec(channel via = channel::api, std::string endpoint = "tcp://127.0.0.1:*") {
  socket_spec spec;
  spec.via = via;
  spec.kind = socket_kind::router;
  spec.attach = socket_attach::bind;
  spec.endpoint = std::move(endpoint);
  return spec;
}

// A ROUTER io_thread whose replies are posted by another std::thread: each
// request comes back on its own route with the same body.
class echo_server {
 public:
  echo_server()
      : bus_({router_spec()},
             [this](channel via, std::vector<std::string>&& frames) { inbox_.push(via, std::move(frames)); }) {
    auto started = bus_.start();
    REQUIRE(started.ok());
    echo_ = std::thread([this] {
      while (auto message = inbox_.pop(60s)) {
        auto request = split_router_message(std::move(message->frames));
        bus_.post(make_reply(channel::api, std::move(request.route),
                             request.well_formed ? std::move(request.body) : std::string("malformed")));
      }
    });
  }
  ~echo_server() {
    inbox_.close();
    echo_.join();
    bus_.stop();
  }
  std::string endpoint() const { return bus_.bound_endpoint(channel::api); }
  io_thread& bus() { return bus_; }

 private:
  frame_inbox inbox_;
  io_thread bus_;
  std::thread echo_;
};

std::vector<std::string> receive_strings(zmq::socket_t& socket) {
  std::vector<zmq::message_t> parts;
  auto got = zmq::recv_multipart(socket, std::back_inserter(parts));
  std::vector<std::string> frames;
  if (!got) return frames;
  for (auto& part : parts) frames.push_back(part.to_string());
  return frames;
}

// One request on a DEALER (empty delimiter, body) and the body of its reply.
std::string dealer_call(zmq::socket_t& dealer, const std::string& body) {
  std::array<zmq::const_buffer, 2> request{zmq::str_buffer(""), zmq::buffer(body)};
  REQUIRE(zmq::send_multipart(dealer, request));
  auto reply = receive_strings(dealer);
  REQUIRE(reply.size() == 2);
  return reply[1];
}

zmq::socket_t client_socket(zmq::context_t& context, zmq::socket_type type, const std::string& endpoint,
                            const std::string& routing_id = {}) {
  zmq::socket_t socket(context, type);
  if (!routing_id.empty()) socket.set(zmq::sockopt::routing_id, routing_id);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::rcvtimeo, 5000);  // a missing reply fails the test instead of hanging it
  socket.set(zmq::sockopt::sndtimeo, 5000);
  socket.connect(endpoint);
  return socket;
}

}  // namespace

TEST_CASE("io_thread: a ROUTER replies to REQ and DEALER clients on the route they came by", "[bus]") {
  echo_server server;
  REQUIRE(server.endpoint().rfind("tcp://127.0.0.1:", 0) == 0);
  REQUIRE(server.endpoint() != "tcp://127.0.0.1:*");
  zmq::context_t context;

  SECTION("REQ") {
    auto req = client_socket(context, zmq::socket_type::req, server.endpoint());
    REQUIRE(req.send(zmq::str_buffer("hello")));
    CHECK(receive_strings(req) == std::vector<std::string>{"hello"});
  }
  SECTION("DEALER with an empty delimiter") {
    auto dealer = client_socket(context, zmq::socket_type::dealer, server.endpoint());
    std::vector<zmq::const_buffer> request{zmq::str_buffer(""), zmq::str_buffer("with-delimiter")};
    REQUIRE(zmq::send_multipart(dealer, request));
    CHECK(receive_strings(dealer) == std::vector<std::string>{"", "with-delimiter"});
  }
  SECTION("DEALER without a delimiter") {
    auto dealer = client_socket(context, zmq::socket_type::dealer, server.endpoint());
    REQUIRE(dealer.send(zmq::str_buffer("bare")));
    CHECK(receive_strings(dealer) == std::vector<std::string>{"bare"});
  }
  SECTION("a malformed request still gets an answer on its route") {
    auto dealer = client_socket(context, zmq::socket_type::dealer, server.endpoint());
    std::vector<zmq::const_buffer> request{zmq::str_buffer(""), zmq::str_buffer("a"), zmq::str_buffer("b")};
    REQUIRE(zmq::send_multipart(dealer, request));
    CHECK(receive_strings(dealer) == std::vector<std::string>{"", "malformed"});
  }
  CHECK(wait_until([&] { return server.bus().stats().messages_out >= 1; }));
  CHECK(server.bus().stats().messages_in >= 1);
}

TEST_CASE("io_thread: 1000 requests in flight on one DEALER all come back", "[bus]") {
  echo_server server;
  zmq::context_t context;
  auto dealer = client_socket(context, zmq::socket_type::dealer, server.endpoint());
  constexpr int count = 1000;
  for (int i = 0; i < count; ++i) {
    std::string body = "request-" + std::to_string(i);
    std::vector<zmq::const_buffer> request{zmq::str_buffer(""), zmq::buffer(body)};
    REQUIRE(zmq::send_multipart(dealer, request));
  }
  std::set<std::string> bodies;
  for (int i = 0; i < count; ++i) {
    auto reply = receive_strings(dealer);
    REQUIRE(reply.size() == 2);
    CHECK(reply[0].empty());
    bodies.insert(reply[1]);
  }
  CHECK(bodies.size() == count);
  CHECK(bodies.count("request-0") == 1);
  CHECK(bodies.count("request-999") == 1);
  auto stats = server.bus().stats();
  CHECK(stats.messages_in == count);
  CHECK(stats.messages_out == count);
  CHECK(stats.dropped == 0);
}

TEST_CASE("io_thread: PUB to SUB through two io_threads, filtered by topic prefix", "[bus]") {
  socket_spec pub;
  pub.via = channel::stream;
  pub.kind = socket_kind::pub;
  pub.attach = socket_attach::bind;
  pub.endpoint = "tcp://127.0.0.1:*";
  std::atomic<int> publisher_received{0};  // Catch2 macros are not for the I/O thread
  io_thread publisher({pub}, [&](channel, std::vector<std::string>&&) { ++publisher_received; });
  REQUIRE(publisher.start().ok());

  socket_spec sub;
  sub.via = channel::announce;
  sub.kind = socket_kind::sub;
  sub.attach = socket_attach::connect;
  sub.endpoint = publisher.bound_endpoint(channel::stream);
  sub.subscriptions = {"offers."};
  frame_inbox inbox;
  io_thread subscriber({sub},
                       [&](channel via, std::vector<std::string>&& frames) { inbox.push(via, std::move(frames)); });
  REQUIRE(subscriber.start().ok());

  // A SUB misses what was published before it joined, so publish until one
  // arrives; the unsubscribed topic goes out just before each one.
  CHECK(wait_until([&] {
    publisher.post({channel::stream, {"pools.p1", "not-subscribed"}});
    publisher.post({channel::stream, {"offers.p1", "offer-body"}});
    return inbox.size() > 0;
  }));
  auto first = inbox.pop(1s);
  REQUIRE(first);
  CHECK(first->via == channel::announce);
  CHECK(first->frames == std::vector<std::string>{"offers.p1", "offer-body"});
  while (auto more = inbox.pop(50ms)) CHECK(more->frames[0] == "offers.p1");
  CHECK(publisher_received == 0);
}

TEST_CASE("io_thread: posting to a peer that left neither blocks nor stalls other peers", "[bus]") {
  frame_inbox inbox;
  io_thread bus({router_spec()},
                [&](channel via, std::vector<std::string>&& frames) { inbox.push(via, std::move(frames)); });
  REQUIRE(bus.start().ok());
  zmq::context_t context;

  reply_route gone_route;
  {
    auto leaving = client_socket(context, zmq::socket_type::dealer, bus.bound_endpoint(channel::api), "leaving");
    REQUIRE(leaving.send(zmq::str_buffer("hi")));
    auto request = inbox.pop();
    REQUIRE(request);
    gone_route = split_router_message(std::move(request->frames)).route;
    CHECK(gone_route == reply_route{"leaving"});
  }  // the client closes here

  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 20000; ++i) bus.post(make_reply(channel::api, gone_route, "late reply"));
  bus.post(make_reply(channel::api, {"never-connected"}, "nobody"));
  CHECK(std::chrono::steady_clock::now() - started < 1s);

  // A live client is still served.
  auto live = client_socket(context, zmq::socket_type::dealer, bus.bound_endpoint(channel::api));
  REQUIRE(live.send(zmq::str_buffer("ping")));
  auto request = inbox.pop();
  REQUIRE(request);
  bus.post(make_reply(channel::api, split_router_message(std::move(request->frames)).route, "pong"));
  CHECK(receive_strings(live) == std::vector<std::string>{"pong"});
  // Unroutable replies were dropped and counted (not queued forever).
  CHECK(wait_until([&] { return bus.stats().dropped >= 1; }));
}

TEST_CASE("io_thread: stop() returns promptly with traffic pending", "[bus]") {
  frame_inbox inbox;
  socket_spec spec = router_spec();
  spec.sndhwm = 100;
  io_thread bus({spec}, [&](channel via, std::vector<std::string>&& frames) { inbox.push(via, std::move(frames)); });
  REQUIRE(bus.start().ok());
  zmq::context_t context;
  // A client that sends but never reads its replies.
  auto idle = client_socket(context, zmq::socket_type::dealer, bus.bound_endpoint(channel::api), "idle");
  REQUIRE(idle.send(zmq::str_buffer("hi")));
  REQUIRE(inbox.pop());
  std::atomic<bool> flooding{true};
  std::thread flood([&] {
    while (flooding.load()) bus.post(make_reply(channel::api, {"idle"}, std::string(1024, 'x')));
  });
  CHECK(wait_until([&] { return bus.stats().dropped > 0; }));  // the idle peer's queue is full
  auto started = std::chrono::steady_clock::now();
  bus.stop();
  auto took = std::chrono::steady_clock::now() - started;
  flooding = false;
  flood.join();
  CHECK(took < 1s);
  // After stop() posts are dropped, not queued.
  auto dropped = bus.stats().dropped;
  bus.post(make_reply(channel::api, {"idle"}, "after stop"));
  CHECK(bus.stats().dropped == dropped + 1);
  bus.stop();  // idempotent
}

TEST_CASE("io_thread: start() on an address in use returns an error naming it", "[bus]") {
  io_thread first({router_spec()}, [](channel, std::vector<std::string>&&) {});
  REQUIRE(first.start().ok());
  std::string endpoint = first.bound_endpoint(channel::api);

  io_thread second({router_spec(channel::api, endpoint)}, [](channel, std::vector<std::string>&&) {});
  auto started = second.start();
  REQUIRE_FALSE(started.ok());
  CHECK(started.error().kind == error_kind::unavailable);
  CHECK_THAT(started.error().message, Catch::Contains(endpoint));
  CHECK(second.bound_endpoint(channel::api).empty());
}

TEST_CASE("io_thread: start() rejects a bad endpoint and a second socket on one channel", "[bus]") {
  io_thread bad({router_spec(channel::api, "tcp://127.0.0.1")}, [](channel, std::vector<std::string>&&) {});
  auto started = bad.start();
  REQUIRE_FALSE(started.ok());
  CHECK(started.error().kind == error_kind::invalid);
  CHECK_THAT(started.error().message, Catch::Contains("tcp://127.0.0.1"));

  io_thread twice({router_spec(), router_spec()}, [](channel, std::vector<std::string>&&) {});
  auto twice_started = twice.start();
  REQUIRE_FALSE(twice_started.ok());
  CHECK(twice_started.error().kind == error_kind::invalid);
}

TEST_CASE("io_thread: a frame over the size guard is refused; others still get through", "[bus]") {
  frame_inbox inbox;
  socket_spec spec = router_spec();
  spec.max_message_bytes = 1 << 20;
  io_thread bus({spec}, [&](channel via, std::vector<std::string>&& frames) { inbox.push(via, std::move(frames)); });
  REQUIRE(bus.start().ok());
  zmq::context_t context;
  auto huge = client_socket(context, zmq::socket_type::dealer, bus.bound_endpoint(channel::api));
  std::string body((1 << 20) + 1, 'x');
  REQUIRE(huge.send(zmq::buffer(body)));
  auto small = client_socket(context, zmq::socket_type::dealer, bus.bound_endpoint(channel::api), "small");
  REQUIRE(small.send(zmq::str_buffer("fine")));
  auto got = inbox.pop();
  REQUIRE(got);
  CHECK(got->frames == std::vector<std::string>{"small", "fine"});
  CHECK_FALSE(inbox.pop(200ms));  // the oversized one never arrives
}

TEST_CASE("io_thread: posts to a channel without a socket, or to a SUB, are dropped and counted", "[bus]") {
  io_thread bus({router_spec()}, [](channel, std::vector<std::string>&&) {});
  REQUIRE(bus.start().ok());
  bus.post({channel::workers, {"id", "body"}});
  bus.post({channel::api, {}});
  CHECK(wait_until([&] { return bus.stats().dropped == 2; }));
  CHECK(bus.stats().messages_out == 0);
}

TEST_CASE("io_thread: a reply posted from the inbound handler itself goes out at once", "[bus]") {
  io_thread* self = nullptr;
  std::atomic<std::thread::id> handler_thread{};
  std::atomic<bool> sent_within_post{true};
  io_thread bus({router_spec()}, [&](channel, std::vector<std::string>&& frames) {
    handler_thread = std::this_thread::get_id();
    auto request = split_router_message(std::move(frames));
    auto sent_before = self->stats().messages_out;
    self->post(make_reply(channel::api, std::move(request.route), "re:" + request.body));
    // Sent before post() returned, not queued for a later turn of the loop.
    if (self->stats().messages_out != sent_before + 1) sent_within_post = false;
  });
  self = &bus;
  REQUIRE(bus.start().ok());
  zmq::context_t context;
  auto dealer = client_socket(context, zmq::socket_type::dealer, bus.bound_endpoint(channel::api));
  for (int i = 0; i < 100; ++i) CHECK(dealer_call(dealer, std::to_string(i)) == "re:" + std::to_string(i));
  // The last reply can reach the client before the I/O thread has counted it
  // and left the handler: stop (which joins that thread) before checking.
  bus.stop();
  CHECK(handler_thread.load() != std::this_thread::get_id());
  CHECK(sent_within_post.load());
  CHECK(bus.stats().messages_out == 100);
}

TEST_CASE("io_thread: the tick runs on the I/O thread, about every period, with or without traffic", "[bus]") {
  std::atomic<int> ticks{0};
  std::atomic<bool> same_thread{true};
  std::atomic<std::thread::id> io_id{};
  io_thread bus({router_spec()}, [&](channel, std::vector<std::string>&&) { io_id = std::this_thread::get_id(); });
  bus.set_tick(20ms, [&] {
    if (io_id.load() != std::thread::id{} && io_id.load() != std::this_thread::get_id()) same_thread = false;
    ++ticks;
  });
  auto started = std::chrono::steady_clock::now();
  REQUIRE(bus.start().ok());
  zmq::context_t context;
  auto dealer = client_socket(context, zmq::socket_type::dealer, bus.bound_endpoint(channel::api));
  REQUIRE(wait_until([&] { return ticks.load() >= 3; }, 5s));
  std::array<zmq::const_buffer, 2> request{zmq::str_buffer(""), zmq::str_buffer("x")};
  REQUIRE(zmq::send_multipart(dealer, request));
  REQUIRE(wait_until([&] { return io_id.load() != std::thread::id{}; }, 5s));
  int before = ticks.load();
  REQUIRE(wait_until([&] { return ticks.load() >= before + 3; }, 5s));
  auto elapsed = std::chrono::steady_clock::now() - started;
  bus.stop();
  CHECK(same_thread.load());
  // Never more often than the period: n ticks take at least (n - 1) periods.
  CHECK(elapsed >= (ticks.load() - 1) * 20ms);
}

TEST_CASE("io_thread: large frames (sent without a copy) arrive whole, small ones beside them", "[bus]") {
  echo_server server;
  zmq::context_t context;
  auto dealer = client_socket(context, zmq::socket_type::dealer, server.endpoint());
  for (size_t size : {size_t{100}, size_t{64 * 1024 - 1}, size_t{64 * 1024}, size_t{3 << 20}}) {
    std::string body(size, '\0');
    for (size_t i = 0; i < size; ++i) body[i] = static_cast<char>('a' + (i * 7 + size) % 26);
    auto reply = dealer_call(dealer, body);
    CHECK(reply.size() == size);
    CHECK(reply == body);
  }
}

TEST_CASE("io_thread: hosted work is attached, run after each read and wake-up, and detached, all on the I/O thread",
          "[bus]") {
  // The hosted work here is a queue of replies the inbound handler leaves for
  // it, plus replies another thread hands in and wakes it for.
  std::mutex mutex;
  std::vector<outbound_frames> ready;
  std::function<void()> wake;
  std::atomic<std::thread::id> attached_on{}, detached_on{};
  std::atomic<bool> ran_elsewhere{false};
  io_thread* self = nullptr;
  std::vector<std::string> held_route;  // "held" is answered by another thread
  io_thread bus({router_spec()}, [&](channel, std::vector<std::string>&& frames) {
    auto request = split_router_message(std::move(frames));
    std::lock_guard<std::mutex> guard(mutex);
    if (request.body == "held")
      held_route = std::move(request.route);
    else
      ready.push_back(make_reply(channel::api, std::move(request.route), "re:" + request.body));
  });
  self = &bus;
  bus.host({[&](std::function<void()> w) {
              attached_on = std::this_thread::get_id();
              std::lock_guard<std::mutex> guard(mutex);
              wake = std::move(w);
            },
            [&] {
              if (std::this_thread::get_id() != attached_on.load()) ran_elsewhere = true;
              std::vector<outbound_frames> batch;
              {
                std::lock_guard<std::mutex> guard(mutex);
                batch.swap(ready);
              }
              for (auto& reply : batch) self->post(std::move(reply));  // on the I/O thread: sent at once
              return false;
            },
            [&] { detached_on = std::this_thread::get_id(); }});
  REQUIRE(bus.start().ok());
  zmq::context_t context;
  auto dealer = client_socket(context, zmq::socket_type::dealer, bus.bound_endpoint(channel::api));
  for (int i = 0; i < 50; ++i) CHECK(dealer_call(dealer, std::to_string(i)) == "re:" + std::to_string(i));
  // A reply made on another thread goes out once that thread wakes the work.
  std::array<zmq::const_buffer, 2> held{zmq::str_buffer(""), zmq::str_buffer("held")};
  REQUIRE(zmq::send_multipart(dealer, held));
  REQUIRE(wait_until(
      [&] {
        std::lock_guard<std::mutex> guard(mutex);
        return !held_route.empty();
      },
      5s));
  std::thread([&] {
    std::function<void()> w;
    {
      std::lock_guard<std::mutex> guard(mutex);
      ready.push_back(make_reply(channel::api, held_route, "woken"));
      w = wake;
    }
    if (w) w();
  }).join();
  CHECK(receive_strings(dealer).at(1) == "woken");
  bus.stop();
  CHECK(attached_on.load() != std::thread::id{});
  CHECK(attached_on.load() != std::this_thread::get_id());
  CHECK(detached_on.load() == attached_on.load());
  CHECK_FALSE(ran_elsewhere.load());
}
