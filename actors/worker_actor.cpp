#include "actors/worker_actor.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <spdlog/spdlog.h>

#include "actors/error_bridge.hpp"
#include "policy/liveness.hpp"

namespace poolbus {
namespace {

// The pool actor is local and answers every request, so pool calls carry no
// CAF request timeout (each one would cost a wake-up of CAF's clock thread per
// call): the broker's own per-request deadline already answers a caller whose
// request got lost. What guards against a bug that leaves a request
// unanswered is cheap and off the hot path: a count of the calls in flight
// and when the last answer came, which each heartbeat checks (stalled_after).
// Exec ops keep a per-call deadline: exec_wait long-polls for its own timeout.
constexpr auto local_deadline = std::chrono::milliseconds(liveness::worker_local_deadline_ms);
constexpr int64_t stalled_after_ms = liveness::worker_stalled_after_ms;

struct worker_state {
  worker_actor_config config;
  offer_announcement last;
  bool announced = false;
  bool stopped = false;
  // Pool calls without a deadline: how many wait for their answer, how many
  // were answered, and what the heartbeats saw of that (check_stalled).
  uint64_t in_flight = 0;
  uint64_t answered = 0;
  uint64_t answered_at_beat = 0;
  int64_t silent_ms = 0;  // with calls in flight, time since an answer came (in heartbeats)
  bool stall_reported = false;
  // What each broker asked in its latest `pace` (0: no ask), by broker index.
  std::vector<int64_t> paced_ms;
  static inline const char* name = "worker";
};

using worker_pointer = caf::stateful_actor<worker_state>*;

int64_t now_ms(worker_pointer self) { return self->state.config.clock.now_ms(self->clock()); }

// The heartbeat in force: the worker's own, or the slowest its brokers ask.
int64_t heartbeat_ms(const worker_state& st) {
  int64_t ms = st.config.heartbeat_ms;
  for (auto asked : st.paced_ms) ms = std::max(ms, asked);
  return ms;
}

void announce(worker_pointer self) {
  auto& st = self->state;
  st.last.ts_ms = now_ms(self);
  st.config.sink->post({channel::announce, {offers_topic(st.config.pool), encode_offer_announcement(st.last)}});
}

// Where a reply goes: the request's rid, and the broker it came from.
struct reply_to {
  uint64_t rid = 0;
  uint32_t broker = 0;
};
reply_to reply_to_of(const worker_request& req) { return {req.rid, req.broker}; }

// A message on the broker channel to broker `index` (with one broker, the DEALER's only peer).
void post_to_broker(worker_pointer self, uint32_t index, std::string body) {
  const auto& brokers = self->state.config.brokers;
  if (brokers.empty()) return self->state.config.sink->post({channel::broker, {std::move(body)}});
  if (index < brokers.size()) self->state.config.sink->post({channel::broker, {brokers[index], std::move(body)}});
}

void hello(worker_pointer self) {
  auto& st = self->state;
  const std::string body = encode_worker_hello({st.config.pool, st.config.run, now_ms(self)});
  const size_t n = std::max<size_t>(1, st.config.brokers.size());
  for (uint32_t i = 0; i < n; ++i) post_to_broker(self, i, body);
}

void send_reply(worker_pointer self, reply_to to, worker_reply reply) {
  reply.rid = to.rid;
  post_to_broker(self, to.broker, encode_worker_reply(reply));
}

// The reply to a request: what `fill` puts in from the pool's result.
template <class Result, class Fill>
void reply_result(worker_pointer self, reply_to to, Fill& fill, Result& result) {
  worker_reply reply;
  fill(reply, result);
  send_reply(self, to, std::move(reply));
}

void reply_error(worker_pointer self, reply_to to, const caf::error& err) {
  worker_reply reply;
  reply.ok = false;
  reply.error = to_pool_error(err);
  send_reply(self, to, std::move(reply));
}

// Asks the pool (within `deadline`) and replies with what `fill` puts into
// the reply, or the error.
template <class Result, class Fill, class... Args>
void serve_within(worker_pointer self, caf::timespan deadline, reply_to to, Fill fill, Args&&... args) {
  self->request(self->state.config.pool_actor, deadline, std::forward<Args>(args)...)
      .then([=](Result& result) mutable { reply_result(self, to, fill, result); },
            [=](caf::error& err) { reply_error(self, to, err); });
}

// An answer (or error) to a pool call without a deadline came back.
void progressed(worker_pointer self) {
  --self->state.in_flight;
  ++self->state.answered;
}

// Asks the pool without a deadline (see stalled_after_ms) and replies with
// what `fill` puts into the reply, or the error. (Normal priority on purpose:
// an urgent request would overtake the subscription and exec events queued
// at the pool before it, and reorder the stream.)
template <class Result, class Fill, class... Args>
void serve(worker_pointer self, reply_to to, Fill fill, Args&&... args) {
  auto& st = self->state;
  ++st.in_flight;
  self->request(st.config.pool_actor, caf::infinite, std::forward<Args>(args)...)
      .then(
          [=](Result& result) mutable {
            progressed(self);
            reply_result(self, to, fill, result);
          },
          [=](caf::error& err) {
            progressed(self);
            reply_error(self, to, err);
          });
}

// Each heartbeat: calls waiting while no answer at all came for
// stalled_after_ms mean the pool lost a request (a bug) or hangs; say so once,
// loudly. Counting answers between heartbeats keeps the clock off the hot path.
void check_stalled(worker_pointer self) {
  auto& st = self->state;
  bool silent = st.in_flight > 0 && st.answered == st.answered_at_beat;
  st.answered_at_beat = st.answered;
  if (!silent) {
    if (st.stall_reported) spdlog::warn("pool {}: the local pool answers again", st.config.pool);
    st.silent_ms = 0;
    st.stall_reported = false;
    return;
  }
  st.silent_ms += heartbeat_ms(st);
  if (st.silent_ms < stalled_after_ms || st.stall_reported) return;
  st.stall_reported = true;
  spdlog::error("pool {}: {} requests to the local pool unanswered, none answered for {} ms (a bug?)", st.config.pool,
                st.in_flight, st.silent_ms);
}

// An exec op for the pool. exec_wait is a long-poll: the request waits in the
// exec actor as a promise (no thread or actor is held), so its deadline is the
// wait's own timeout plus the usual one.
void serve_exec(worker_pointer self, const worker_request& req) {
  auto deadline = local_deadline + std::chrono::milliseconds(req.exec.op == exec_op::wait ? req.exec.timeout_ms : 0);
  serve_within<exec_answer>(
      self, deadline, reply_to_of(req), [](worker_reply& r, exec_answer& answer) { r.exec = std::move(answer); },
      exec_atom::value, req.exec);
}

// A broker's pace: kept per broker, in force from the next heartbeat (the
// broker judges silence by the slower of its pace and what the pool announced).
void on_pace(worker_pointer self, const worker_request& req) {
  auto& st = self->state;
  st.paced_ms.resize(std::max<size_t>({1, st.config.brokers.size(), st.paced_ms.size()}), 0);
  int64_t before = heartbeat_ms(st);
  if (req.broker < st.paced_ms.size()) st.paced_ms[req.broker] = req.heartbeat_ms;
  int64_t now = heartbeat_ms(st);
  if (now != before) spdlog::info("pool {}: heartbeat every {} ms (paced by broker {})", st.config.pool, now, req.broker);
  st.last.heartbeat_ms = now;
  send_reply(self, reply_to_of(req), worker_reply{});
}

void handle(worker_pointer self, const worker_request& req) {
  switch (req.op) {
    case worker_op::accept:
      serve<AllocInspect>(
          self, reply_to_of(req), [](worker_reply& r, AllocInspect& a) { r.alloc = std::move(a); }, accept_atom::value,
          req.offer_id, req.meta);
      return;
    case worker_op::free:
      serve<caf::ok_atom>(
          self, reply_to_of(req), [](worker_reply&, caf::ok_atom&) {}, free_atom::value, req.alloc_id);
      return;
    case worker_op::keepalive:
      serve<int64_t>(
          self, reply_to_of(req), [](worker_reply& r, int64_t& granted) { r.interval_ms = granted; },
          keepalive_atom::value, req.alloc_id, req.interval_ms);
      return;
    case worker_op::inspect:
      serve<AllocInspect>(
          self, reply_to_of(req), [](worker_reply& r, AllocInspect& a) { r.alloc = std::move(a); }, inspect_atom::value,
          req.alloc_id);
      return;
    case worker_op::allocs:
      serve<std::vector<AllocInspect>>(
          self, reply_to_of(req), [](worker_reply& r, std::vector<AllocInspect>& a) { r.allocs = std::move(a); },
          allocs_atom::value);
      return;
    case worker_op::drain:
      serve<caf::ok_atom>(
          self, reply_to_of(req), [](worker_reply&, caf::ok_atom&) {}, drain_atom::value, req.drain);
      return;
    case worker_op::offers:
      serve<std::vector<OfferInfo>>(
          self, reply_to_of(req), [](worker_reply& r, std::vector<OfferInfo>& o) { r.offers = std::move(o); },
          offers_atom::value);
      return;
    case worker_op::pace:
      on_pace(self, req);
      return;
    default:  // exec ops
      serve_exec(self, req);
      return;
  }
}

void check_idle(worker_pointer self) {
  auto& st = self->state;
  self->request(st.config.pool_actor, local_deadline, idle_stop_atom::value, st.config.max_idle_ms)
      .then(
          [=](bool stopped, int64_t) {
            auto& st = self->state;
            if (!stopped || st.stopped) return;
            st.stopped = true;
            spdlog::debug("pool {} idle for {} ms: stopped", st.config.pool, st.config.max_idle_ms);
            pool_event ev{st.config.pool, pool_event_kind::stopped, now_ms(self)};
            st.config.sink->post({channel::announce, {pools_topic(st.config.pool), encode_pool_event(ev)}});
            if (st.config.on_idle_stop) st.config.on_idle_stop();
          },
          [=](caf::error& err) { spdlog::warn("idle check failed: {}", to_pool_error(err).to_string()); });
}

caf::behavior worker_behavior(worker_pointer self, worker_actor_config config) {
  self->state.config = std::move(config);
  self->state.last.pool = self->state.config.pool;
  self->state.last.run = self->state.config.run;
  self->send(self->state.config.pool_actor, subscribe_atom::value, caf::actor{self});
  hello(self);
  self->send(self, heartbeat_atom::value);
  return {
      [=](changed_atom, offer_announcement& a) {
        auto& st = self->state;
        a.pool = st.config.pool;
        a.run = st.config.run;
        a.heartbeat_ms = heartbeat_ms(st);
        st.last = std::move(a);
        st.announced = true;
        announce(self);
      },
      [=](alloc_event_atom, alloc_event& e) {
        e.pool = self->state.config.pool;
        if (e.ts_ms == 0) e.ts_ms = now_ms(self);
        self->state.config.sink->post({channel::announce, {allocs_topic(e.pool), encode_alloc_event(e)}});
      },
      [=](wrequest_atom, const worker_request& req) { handle(self, req); },
      [=](exec_event_atom, exec_event& e) {
        e.pool = self->state.config.pool;
        if (e.ts_ms == 0) e.ts_ms = now_ms(self);
        self->state.config.sink->post({channel::announce, {execs_topic(e.pool), encode_exec_event(e)}});
      },
      [=](heartbeat_atom) {
        auto& st = self->state;
        if (st.stopped) return;
        if (st.announced) announce(self);
        hello(self);
        check_stalled(self);
        if (st.config.max_idle_ms > 0) check_idle(self);
        self->delayed_send(self, std::chrono::milliseconds(heartbeat_ms(st)), heartbeat_atom::value);
      },
  };
}

}  // namespace

caf::actor spawn_worker_actor(caf::actor_system& sys, worker_actor_config config) {
  return sys.spawn(worker_behavior, std::move(config));
}

}  // namespace poolbus
