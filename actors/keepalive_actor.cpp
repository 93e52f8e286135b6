#include "actors/keepalive_actor.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <spdlog/spdlog.h>

#include <chrono>

#include "actors/atoms.hpp"
#include "actors/error_bridge.hpp"

namespace poolbus {

double keepalive_state::next_uniform01() {
  if (config.uniform01) return config.uniform01();
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

namespace {

using self_ptr = caf::stateful_actor<keepalive_state>*;

int64_t now_ms(self_ptr self) { return self->state.clock.now_ms(self->clock()); }

void arm_timer(self_ptr self, int64_t delay_ms) {
  self->delayed_send(self, std::chrono::milliseconds(delay_ms), tick_atom::value, ++self->state.timer_generation);
}

// Ends the loop because the alloc is lost; the kind reaches the owner unchanged.
void report_lost(self_ptr self, pool_error why) {
  auto& st = self->state;
  spdlog::warn("keepalive {}: alloc lost after {} failed tries: {}", st.config.alloc_name, st.consecutive_failures,
               why.to_string());
  self->send(st.owner, lost_atom::value, std::move(why));
  self->quit();
}

void on_failure(self_ptr self, const caf::error& err) {
  auto& st = self->state;
  auto why = to_pool_error(err);
  ++st.consecutive_failures;
  if (st.lease_expires_ms != 0 && now_ms(self) >= st.lease_expires_ms)
    spdlog::error("keepalive {}: failed to maintain the lease within its interval", st.config.alloc_name);
  auto wait = st.config.schedule.retry_delay_ms(why.kind, st.consecutive_failures, st.next_uniform01());
  if (!wait) {
    report_lost(self, std::move(why));
    return;
  }
  spdlog::info("keepalive {}: try {} failed ({}); retrying in {} ms", st.config.alloc_name, st.consecutive_failures,
               why.to_string(), *wait);
  arm_timer(self, *wait);
}

void send_keepalive(self_ptr self) {
  auto& sched = self->state.config.schedule;
  auto timeout = std::chrono::milliseconds(sched.call_timeout_ms);
  self->request(self->state.target, timeout, keepalive_atom::value, sched.interval_to_request_ms())
      .then(
          [=](int64_t granted_ms) {
            auto& st = self->state;
            st.consecutive_failures = 0;
            st.lease_expires_ms = now_ms(self) + granted_ms;
            auto delay = st.config.schedule.renew_delay_ms(granted_ms);
            spdlog::debug("keepalive {}: granted {} ms, renewing in {} ms", st.config.alloc_name, granted_ms, delay);
            arm_timer(self, delay);
          },
          [=](caf::error& err) { on_failure(self, err); });
}

}  // namespace

caf::behavior keepalive_actor(caf::stateful_actor<keepalive_state>* self, alloc_actor target, caf::actor owner,
                              keepalive_config config) {
  auto& st = self->state;
  st.rng.seed(config.seed);
  st.config = std::move(config);
  st.target = std::move(target);
  st.owner = std::move(owner);
  send_keepalive(self);  // reflow keeps alive at once, then on schedule
  return {
      [=](tick_atom, uint64_t generation) {
        if (generation != self->state.timer_generation) return;  // superseded timer
        send_keepalive(self);
      },
      [=](stop_atom) {
        spdlog::info("keepalive {}: stopped on request", self->state.config.alloc_name);
        self->send(self->state.owner, stop_atom::value);
        self->quit();
      },
  };
}

caf::actor spawn_keepalive_actor(caf::actor_system& sys, alloc_actor target, caf::actor owner,
                                 keepalive_config config) {
  return sys.spawn(keepalive_actor, std::move(target), std::move(owner), std::move(config));
}

}  // namespace poolbus
