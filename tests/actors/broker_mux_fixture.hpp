// The broker mux under CAF's test_coordinator, fed as the broker's intake
// feeds it (announcements, hellos, replies, heartbeat batches, flushes) and
// read back through a frame sink that keeps what the mux and its proxies
// post: stream events and requests to workers, which a test answers as a
// worker would. Shared by the mux's test files.
#pragma once

#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/deterministic_system.hpp"

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "actors/error_bridge.hpp"
#include "actors/mux_actor.hpp"
#include "schemas/api_messages.hpp"

namespace poolbus {
namespace testing_mux {

const auto no_deadline = std::chrono::seconds(24 * 3600);

const Resources small{{"mem", 10}, {"cpu", 1}, {"disk", 20}};
const Resources large = small.scale(4);

struct capture_sink : frame_sink {
  std::mutex mutex;
  std::vector<outbound_frames> posted;
  void post(outbound_frames message) override {
    std::lock_guard<std::mutex> lock(mutex);
    posted.push_back(std::move(message));
  }
};

inline offer_announcement announcement_of(const std::string& pool, const Resources& available, int64_t seq,
                                          int64_t allocs = 0) {
  offer_announcement a;
  a.pool = pool;
  a.run = "r1";
  a.seq = seq;
  a.resources = large;
  a.available = available;
  a.allocs = allocs;
  a.ts_ms = 1000 + seq;
  if (available.units("cpu") > 0) a.offers.push_back(OfferInfo{pool + "/1", pool, available});
  return a;
}

struct sent_request {
  std::string pool;
  worker_request request;
};

struct broker_mux_fixture : test::deterministic_system {
  caf::scoped_actor self{sys};
  std::shared_ptr<capture_sink> sink = std::make_shared<capture_sink>();
  std::vector<std::string> forgotten;
  mux_actor m;
  std::size_t read_upto = 0;  // posted frames already looked at by take_*

  explicit broker_mux_fixture(mux_config config = {}) { start(std::move(config)); }
  ~broker_mux_fixture() {
    caf::anon_send_exit(m, caf::exit_reason::user_shutdown);
    run();
  }

  void start(mux_config config) {
    if (m) caf::anon_send_exit(m, caf::exit_reason::user_shutdown);
    config.sink = sink;
    config.clock = wall_clock::simulated();
    config.forget_pool = [this](const std::string& pool) { forgotten.push_back(pool); };
    m = spawn_mux_actor(sys, std::move(config));
    run();
  }
  void run() { sched.run(); }
  void advance(caf::timespan d) {
    sched.clock().advance_time(d);
    run();
  }

  void join(offer_announcement a) {
    auto pool = a.pool;
    self->send(m, announce_atom::value, std::move(a));
    self->send(m, hello_atom::value, pool, worker_hello{pool, "r1", 0});
    run();
  }

  // The pools.<pool> events posted so far, as "<pool>:<event>".
  std::vector<std::string> pool_events() {
    std::vector<std::string> out;
    std::lock_guard<std::mutex> lock(sink->mutex);
    for (const auto& f : sink->posted)
      if (f.via == channel::stream && f.frames.at(0).rfind("pools.", 0) == 0) {
        auto e = decode_pool_event(f.frames.at(1));
        REQUIRE(e.ok());
        CHECK(f.frames.at(0) == pools_topic(e->pool));
        out.push_back(e->pool + ":" + std::string(to_string(e->event)));
      }
    return out;
  }

  // The demand events posted so far, as "<event>:<request id>".
  std::vector<std::string> demand_events() {
    std::vector<std::string> out;
    std::lock_guard<std::mutex> lock(sink->mutex);
    for (const auto& f : sink->posted)
      if (f.via == channel::stream && f.frames.at(0) == demand_topic) {
        auto e = decode_demand_event(f.frames.at(1));
        REQUIRE(e.ok());
        out.push_back(std::string(to_string(e->event)) + ":" + e->request.id);
      }
    return out;
  }

  std::vector<sent_request> paces;  // the pace requests take_requests set aside

  // Requests to workers posted since the last call (paces go to `paces`).
  std::vector<sent_request> take_requests() {
    std::vector<sent_request> out;
    std::lock_guard<std::mutex> lock(sink->mutex);
    for (; read_upto < sink->posted.size(); ++read_upto) {
      const auto& f = sink->posted[read_upto];
      if (f.via != channel::workers) continue;
      uint64_t rid = 0;
      auto r = decode_worker_request(f.frames.at(1), &rid);
      REQUIRE(r.ok());
      (r->op == worker_op::pace ? paces : out).push_back({f.frames.at(0), *r});
    }
    return out;
  }

  void answer(const sent_request& to, worker_reply reply) {
    reply.rid = to.request.rid;
    self->send(m, wreply_atom::value, to.pool, std::move(reply));
    run();
  }

  template <class T, class... Ts>
  outcome<T> ask(Ts... xs) {
    auto rh = self->request(caf::actor_cast<caf::actor>(m), no_deadline, xs...);
    run();
    return collect<T>(rh);
  }
  template <class T, class Handle>
  outcome<T> collect(Handle& rh) {
    if (self->mailbox().empty()) return make_pool_error(error_kind::internal, "test: no reply yet");
    outcome<T> result = make_pool_error(error_kind::internal, "test: no reply");
    rh.receive([&](T& v) { result = std::move(v); }, [&](caf::error& e) { result = to_pool_error(e); });
    return result;
  }
};

inline AllocInspect alloc_named(const std::string& id, const std::string& owner = "") {
  AllocInspect a;
  a.id = id;
  a.pool = id.substr(0, id.find('/'));
  a.resources = small;
  a.meta.owner = owner;
  return a;
}

}  // namespace testing_mux
}  // namespace poolbus
