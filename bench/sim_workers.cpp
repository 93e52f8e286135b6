#include "bench/sim_workers.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <vector>
#include <zmq.hpp>

#include "schemas/units.hpp"
#include "schemas/worker_messages.hpp"

namespace poolbus::bench {
namespace {

std::atomic<bool> stop_requested{false};
void on_signal(int) { stop_requested = true; }

int64_t epoch_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct sim_pool {
  std::string id;
  zmq::socket_t dealer;
  Resources total, available;
  std::map<std::string, AllocInspect> allocs;  // by local id
  int64_t seq = 1;
  uint64_t next_alloc = 1;
};

class sim_world {
  // ZeroMQ's "tcp://source;destination": each simulator its own loopback
  // source address, since one address has only ~28,000 ephemeral ports.
  std::string connect_address(const std::string& endpoint) const {
    if (config_.source_address.empty() || endpoint.rfind("tcp://", 0) != 0) return endpoint;
    return "tcp://" + config_.source_address + ":0;" + endpoint.substr(6);
  }

 public:
  explicit sim_world(const sim_workers_config& config) : config_(config), run_("sim" + std::to_string(getpid())) {}

  void run() {
    zmq::context_t ctx(1);
    ctx.set(zmq::ctxopt::max_sockets, config_.count + 64);
    zmq::socket_t pub(ctx, zmq::socket_type::pub);
    pub.set(zmq::sockopt::linger, 0);
    pub.set(zmq::sockopt::sndhwm, 1000000);
    pub.connect(connect_address(config_.announce_endpoint));
    pub_ = &pub;
    int epoll_fd = epoll_create1(0);
    pools_.reserve(config_.count);
    auto total = *parse_resources("cpu=64,mem=256GiB,disk=1TiB");
    for (int i = 0; i < config_.count; ++i) {
      pools_.push_back(
          sim_pool{config_.prefix + std::to_string(i), zmq::socket_t(ctx, zmq::socket_type::dealer), total, total});
      auto& d = pools_.back().dealer;
      d.set(zmq::sockopt::linger, 0);
      d.set(zmq::sockopt::routing_id, pools_.back().id);
      d.set(zmq::sockopt::sndhwm, 10000);
      d.set(zmq::sockopt::rcvhwm, 10000);
      d.connect(connect_address(config_.workers_endpoint));
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = static_cast<uint32_t>(i);
      epoll_ctl(epoll_fd, EPOLL_CTL_ADD, d.get(zmq::sockopt::fd), &ev);
    }
    for (size_t i = 0; i < pools_.size(); ++i) heartbeat(i);
    // Heartbeats are spread over the period, as independent workers' would be.
    size_t next_beat = 0;
    double beats_due = 0;
    auto last = std::chrono::steady_clock::now();
    std::vector<epoll_event> events(1024);
    while (!stop_requested) {
      int n = epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()), 5);
      for (int k = 0; k < n; ++k) drain(events[k].data.u32);
      auto now = std::chrono::steady_clock::now();
      beats_due += std::chrono::duration<double, std::milli>(now - last).count() / heartbeat_ms() *
                   static_cast<double>(pools_.size());
      last = now;
      while (beats_due >= 1) {
        heartbeat(next_beat);
        drain(next_beat);
        next_beat = (next_beat + 1) % pools_.size();
        beats_due -= 1;
      }
    }
    close(epoll_fd);
    pools_.clear();
  }

 private:
  // As a real worker: the slower of its own heartbeat and the broker's pace.
  int64_t heartbeat_ms() const { return std::max(config_.heartbeat_ms, paced_ms_); }

  void announce(sim_pool& p) {
    offer_announcement a;
    a.pool = p.id;
    a.run = run_;
    a.seq = p.seq;
    a.resources = p.total;
    a.available = p.available;
    if (p.available.get("cpu") > 0 && p.available.get("mem") > 0 && p.available.get("disk") > 0)
      a.offers.push_back(OfferInfo{p.id + "/1", p.id, p.available});
    a.allocs = static_cast<int64_t>(p.allocs.size());
    a.ts_ms = epoch_ms();
    a.heartbeat_ms = heartbeat_ms();
    auto topic = offers_topic(p.id);
    auto body = encode_offer_announcement(a);
    pub_->send(zmq::buffer(topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    pub_->send(zmq::buffer(body), zmq::send_flags::dontwait);
  }

  void heartbeat(size_t i) {
    auto& p = pools_[i];
    auto hello = encode_worker_hello(worker_hello{p.id, run_, epoch_ms()});
    p.dealer.send(zmq::buffer(hello), zmq::send_flags::dontwait);
    announce(p);
  }

  // ZMQ_FD signals edges: read until the socket says there is nothing left.
  void drain(size_t i) {
    auto& p = pools_[i];
    while (p.dealer.get(zmq::sockopt::events) & ZMQ_POLLIN) {
      zmq::message_t frame;
      if (!p.dealer.recv(frame, zmq::recv_flags::dontwait)) break;
      if (frame.more()) {  // not ours: skip the rest
        while (frame.more() && p.dealer.recv(frame, zmq::recv_flags::dontwait)) {
        }
        continue;
      }
      auto reply = serve(p, frame.to_string_view());
      if (reply) p.dealer.send(zmq::buffer(*reply), zmq::send_flags::dontwait);
    }
  }

  std::optional<std::string> serve(sim_pool& p, std::string_view body) {
    uint64_t rid = 0;
    auto request = decode_worker_request(body, &rid);
    worker_reply reply;
    reply.rid = rid;
    if (!request) {
      if (rid == 0) return std::nullopt;
      reply.ok = false;
      reply.error = request.error();
      return encode_worker_reply(reply);
    }
    auto fail = [&](error_kind kind, std::string message) {
      reply.ok = false;
      reply.error = pool_error{kind, std::move(message)};
      return encode_worker_reply(reply);
    };
    auto now = epoch_ms();
    switch (request->op) {
      case worker_op::accept: {
        if (request->offer_id != "1") return fail(error_kind::not_exist, "no offer " + request->offer_id);
        if (request->meta.want.is_zero()) return fail(error_kind::precondition, "empty want");
        if (!p.available.available(request->meta.want)) return fail(error_kind::not_exist, "offer too small");
        std::string local = "a" + std::to_string(p.next_alloc++);
        AllocInspect a;
        a.id = p.id + "/" + local;
        a.pool = p.id;
        a.resources = request->meta.want;
        a.meta = request->meta;
        a.created_ms = now;
        a.expires_ms = now + 120000;
        p.available = p.available.sub(a.resources);
        reply.alloc = a;
        p.allocs.emplace(local, std::move(a));
        ++p.seq;
        announce(p);
        return encode_worker_reply(reply);
      }
      case worker_op::free: {
        auto it = p.allocs.find(request->alloc_id);
        if (it == p.allocs.end()) return fail(error_kind::not_exist, "no alloc " + request->alloc_id);
        p.available = p.available.add(it->second.resources);
        p.allocs.erase(it);
        ++p.seq;
        announce(p);
        return encode_worker_reply(reply);
      }
      case worker_op::keepalive: {
        auto it = p.allocs.find(request->alloc_id);
        if (it == p.allocs.end()) return fail(error_kind::not_exist, "no alloc " + request->alloc_id);
        auto granted = std::min<int64_t>(request->interval_ms, 300000);
        it->second.last_keepalive_ms = now;
        it->second.expires_ms = now + granted;
        reply.interval_ms = granted;
        return encode_worker_reply(reply);
      }
      case worker_op::inspect: {
        auto it = p.allocs.find(request->alloc_id);
        if (it == p.allocs.end()) return fail(error_kind::not_exist, "no alloc " + request->alloc_id);
        reply.alloc = it->second;
        return encode_worker_reply(reply);
      }
      case worker_op::allocs:
        for (const auto& [id, a] : p.allocs) reply.allocs.push_back(a);
        return encode_worker_reply(reply);
      case worker_op::offers:
        if (p.available.get("cpu") > 0 && p.available.get("mem") > 0 && p.available.get("disk") > 0)
          reply.offers.push_back(OfferInfo{"1", p.id, p.available});
        return encode_worker_reply(reply);
      case worker_op::pace:  // one broker paces all of them alike: the process keeps one pace
        paced_ms_ = request->heartbeat_ms;
        return encode_worker_reply(reply);
      default:  // exec ops: a simulated worker runs no execs
        break;
    }
    return fail(error_kind::invalid, "unknown op");
  }

  sim_workers_config config_;
  std::string run_;
  std::vector<sim_pool> pools_;
  zmq::socket_t* pub_ = nullptr;
  int64_t paced_ms_ = 0;
};

}  // namespace

int run_sim_workers(const sim_workers_config& config) {
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  try {
    sim_world(config).run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sim-workers: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace poolbus::bench
