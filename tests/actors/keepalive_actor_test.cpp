// Tests of the keepalive actor under CAF's test_coordinator: a fake alloc
// records the virtual time of every keepalive, so renewals, retries and the
// 10 s call timeout are checked to the millisecond without sleeping.
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/deterministic_system.hpp"

#include <chrono>
#include <deque>
#include <memory>
#include <vector>

#include "actors/error_bridge.hpp"
#include "actors/keepalive_actor.hpp"

using namespace poolbus;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

namespace {

struct det_fixture : test::deterministic_system {
  caf::scoped_actor self{sys};
  void run() { sched.run(); }
  // Moves virtual time forward by `total`, stopping at every pending timer on
  // the way, so each timer fires at its own instant and the messages it causes
  // are handled before time moves on.
  void advance(caf::timespan total) {
    run();
    auto end = sched.clock().now() + total;
    for (;;) {
      auto& pending = sched.clock().schedule();
      if (pending.empty() || pending.begin()->first > end) break;
      auto next = pending.begin()->first;
      if (next > sched.clock().now())
        sched.clock().advance_time(next - sched.clock().now());
      else
        sched.clock().trigger_timeout();
      run();
    }
    if (end > sched.clock().now()) sched.clock().advance_time(end - sched.clock().now());
    run();
  }
  int64_t virtual_ms() {
    return std::chrono::duration_cast<milliseconds>(sched.clock().now().time_since_epoch()).count();
  }
};

// What the fake alloc does with one keepalive.
struct keepalive_reply {
  enum class mode { grant, fail, never_answer } what = mode::grant;
  int64_t granted_ms = 0;
  error_kind kind = error_kind::internal;
};

// Shared between the test and the fake alloc actor (one thread under the test scheduler).
struct fake_alloc_log {
  std::vector<int64_t> keepalive_at_ms;  // virtual time of each keepalive received
  std::vector<int64_t> requested_ms;     // interval asked for
  std::deque<keepalive_reply> script;    // replies in order; then `otherwise`
  keepalive_reply otherwise{keepalive_reply::mode::grant, 5 * 60 * 1000, error_kind::internal};
  int unexpected_calls = 0;

  void fail(int times, error_kind kind) {
    for (int i = 0; i < times; ++i) script.push_back({keepalive_reply::mode::fail, 0, kind});
  }
  void grant(int64_t ms) { script.push_back({keepalive_reply::mode::grant, ms, error_kind::internal}); }
  void never_answer() { script.push_back({keepalive_reply::mode::never_answer, 0, error_kind::internal}); }
  std::vector<int64_t> gaps_ms() const {
    std::vector<int64_t> out;
    for (size_t i = 1; i < keepalive_at_ms.size(); ++i) out.push_back(keepalive_at_ms[i] - keepalive_at_ms[i - 1]);
    return out;
  }
};

struct fake_alloc_state {
  std::shared_ptr<fake_alloc_log> log;
  std::vector<caf::typed_response_promise<int64_t>> unanswered;  // kept so they stay silent
};

alloc_actor::behavior_type fake_alloc(alloc_actor::stateful_pointer<fake_alloc_state> self,
                                      std::shared_ptr<fake_alloc_log> log) {
  self->state.log = log;
  return {
      [=](keepalive_atom, int64_t interval_ms) -> caf::result<int64_t> {
        auto& lg = *self->state.log;
        lg.keepalive_at_ms.push_back(
            std::chrono::duration_cast<milliseconds>(self->clock().now().time_since_epoch()).count());
        lg.requested_ms.push_back(interval_ms);
        auto reply = lg.otherwise;
        if (!lg.script.empty()) {
          reply = lg.script.front();
          lg.script.pop_front();
        }
        switch (reply.what) {
          case keepalive_reply::mode::grant: return reply.granted_ms;
          case keepalive_reply::mode::fail: return make_error(reply.kind, "scripted failure");
          case keepalive_reply::mode::never_answer: {
            auto rp = self->make_response_promise<int64_t>();
            self->state.unanswered.push_back(rp);
            return rp;
          }
        }
        return make_error(error_kind::internal, "unreachable");
      },
      [=](inspect_atom) -> caf::result<AllocInspect> {
        ++self->state.log->unexpected_calls;
        FAIL("keepalive actor must not inspect the alloc");
        return make_error(error_kind::internal, "unexpected inspect");
      },
      [=](free_atom) -> caf::result<caf::ok_atom> {
        ++self->state.log->unexpected_calls;
        FAIL("keepalive actor must not free the alloc");
        return make_error(error_kind::internal, "unexpected free");
      },
  };
}

// A fixture with a fake alloc and a keepalive actor owned by the test's scoped actor.
struct keepalive_fixture : det_fixture {
  std::shared_ptr<fake_alloc_log> log = std::make_shared<fake_alloc_log>();
  alloc_actor alloc = sys.spawn(fake_alloc, log);
  caf::actor keeper;
  int64_t t0 = 0;

  keepalive_config pinned_jitter(double u) {
    keepalive_config c;
    c.uniform01 = [u] { return u; };
    c.alloc_name = "test/1";
    return c;
  }
  void start(keepalive_config config) {
    t0 = virtual_ms();
    keeper = spawn_keepalive_actor(sys, alloc, caf::actor{self}, std::move(config));
    run();
  }
  // Offsets of every keepalive from the start, in ms.
  std::vector<int64_t> offsets_ms() const {
    std::vector<int64_t> out;
    for (auto t : log->keepalive_at_ms) out.push_back(t - t0);
    return out;
  }
  // Polls the owner's mailbox (nothing blocks under the test scheduler).
  bool owner_has_nothing() {
    bool empty = true;
    self->receive([&](caf::message&) { empty = false; }, caf::after(caf::timespan{0}) >> [] {});
    return empty;
  }
  pool_error expect_lost() {
    pool_error got;
    self->receive([&](lost_atom, pool_error& e) { got = e; },
                  caf::after(caf::timespan{0}) >> [] { FAIL("owner was not told the alloc is lost"); });
    return got;
  }
  ~keepalive_fixture() {
    caf::anon_send_exit(keeper, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(alloc, caf::exit_reason::user_shutdown);
    run();
    REQUIRE(log->unexpected_calls == 0);
  }
};

}  // namespace

TEST_CASE_METHOD(keepalive_fixture, "keepalive: first keepalive at once, asking for MaxKeepaliveInterval") {
  start(pinned_jitter(0.5));
  REQUIRE(offsets_ms() == std::vector<int64_t>{0});
  REQUIRE(log->requested_ms == std::vector<int64_t>{5 * 60 * 1000});
}

TEST_CASE_METHOD(keepalive_fixture, "keepalive: with 5-min grants it renews every 4.5 min for 30 simulated minutes") {
  auto wall_start = std::chrono::steady_clock::now();
  start(pinned_jitter(0.5));
  advance(seconds(269));
  REQUIRE(log->keepalive_at_ms.size() == 1);  // not a millisecond early
  advance(seconds(1));
  REQUIRE(offsets_ms() == std::vector<int64_t>{0, 270'000});
  advance(minutes(30) - seconds(270));
  // 0, 4.5, 9, ..., 27 min: 7 keepalives in 30 min, each exactly 270 s apart.
  REQUIRE(log->keepalive_at_ms.size() == 7);
  for (auto gap : log->gaps_ms()) REQUIRE(gap == 270'000);
  for (auto asked : log->requested_ms) REQUIRE(asked == 300'000);
  REQUIRE(owner_has_nothing());
  auto wall = std::chrono::steady_clock::now() - wall_start;
  REQUIRE(wall < seconds(2));  // 30 virtual minutes take milliseconds
  INFO("wall ms: " << std::chrono::duration_cast<milliseconds>(wall).count());
}

TEST_CASE_METHOD(keepalive_fixture, "keepalive: a 1-min grant is renewed every 30 s") {
  log->otherwise.granted_ms = 60'000;
  start(pinned_jitter(0.5));
  advance(minutes(5));
  REQUIRE(log->keepalive_at_ms.size() == 11);  // 0, 30, ..., 300 s
  for (auto gap : log->gaps_ms()) REQUIRE(gap == 30'000);
}

TEST_CASE_METHOD(keepalive_fixture, "keepalive: a grant longer than 5 min is still renewed every 5 min") {
  log->otherwise.granted_ms = 20 * 60'000;
  start(pinned_jitter(0.5));
  advance(minutes(16));
  REQUIRE(offsets_ms() == std::vector<int64_t>{0, 300'000, 600'000, 900'000});
}

TEST_CASE_METHOD(keepalive_fixture, "keepalive: the renewal follows each grant, even when grants change") {
  log->grant(60'000);      // -> renew at 30 s
  log->grant(5 * 60'000);  // -> renew 270 s later, at 300 s
  log->grant(2 * 60'000);  // -> renew 90 s later, at 390 s
  start(pinned_jitter(0.5));
  advance(seconds(391));
  REQUIRE(offsets_ms() == std::vector<int64_t>{0, 30'000, 300'000, 390'000});
}

TEST_CASE_METHOD(keepalive_fixture,
                 "keepalive: retries non-fatal failures after 2 s, 3 s, 4.5 s, then renews on schedule") {
  log->grant(5 * 60'000);
  log->fail(1, error_kind::unavailable);
  log->fail(1, error_kind::timeout);
  log->fail(1, error_kind::internal);
  start(pinned_jitter(0.5));  // the middle of the jitter range: the nominal backoff
  advance(seconds(300));
  // 270 s: renewal fails; +2 s, +3 s, +4.5 s retries; the 3rd retry succeeds
  // at 279.5 s and the next renewal is 270 s after that success.
  REQUIRE(offsets_ms() == std::vector<int64_t>{0, 270'000, 272'000, 275'000, 279'500});
  advance(seconds(270));
  REQUIRE(offsets_ms().back() == 279'500 + 270'000);
  REQUIRE(owner_has_nothing());
}

TEST_CASE_METHOD(keepalive_fixture, "keepalive: the failure count resets after a success") {
  log->fail(2, error_kind::unavailable);
  log->grant(60'000);
  log->fail(1, error_kind::unavailable);
  start(pinned_jitter(0.5));
  advance(seconds(40));
  // 0 fail, 2 s fail, 5 s ok (grant 60 s), 35 s fail, retry after 2 s (not 4.5 s) at 37 s.
  REQUIRE(offsets_ms() == std::vector<int64_t>{0, 2'000, 5'000, 35'000, 37'000});
}

TEST_CASE_METHOD(keepalive_fixture, "keepalive: seeded jitter keeps every retry wait within 20% of the backoff") {
  for (uint64_t seed : {1u, 2u, 3u, 42u}) {
    auto log_for_seed = std::make_shared<fake_alloc_log>();
    log_for_seed->fail(5, error_kind::unavailable);
    auto fake = sys.spawn(fake_alloc, log_for_seed);
    keepalive_config c;
    c.seed = seed;
    auto k = spawn_keepalive_actor(sys, fake, caf::actor{self}, c);
    advance(seconds(40));
    REQUIRE(log_for_seed->keepalive_at_ms.size() == 6);
    auto gaps = log_for_seed->gaps_ms();
    const int64_t nominal[] = {2000, 3000, 4500, 6750, 10125};
    bool any_off_nominal = false;
    for (size_t i = 0; i < gaps.size(); ++i) {
      INFO("seed " << seed << " retry " << i << " waited " << gaps[i]);
      REQUIRE(gaps[i] >= nominal[i] * 8 / 10);
      REQUIRE(gaps[i] <= nominal[i] * 12 / 10);
      any_off_nominal |= gaps[i] != nominal[i];
    }
    REQUIRE(any_off_nominal);  // the jitter is really applied
    caf::anon_send_exit(k, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(fake, caf::exit_reason::user_shutdown);
    run();
    self->receive([](caf::message&) {}, caf::after(caf::timespan{0}) >> [] {});  // drain a lost report, if any
  }
}

TEST_CASE_METHOD(keepalive_fixture, "keepalive: gives up after the 5 retries and tells the owner the alloc is lost") {
  log->otherwise = {keepalive_reply::mode::fail, 0, error_kind::unavailable};
  start(pinned_jitter(0.0));  // the shortest waits: 1.6, 2.4, 3.6, 5.4, 8.1 s
  advance(milliseconds(21'099));
  REQUIRE(offsets_ms() == std::vector<int64_t>{0, 1'600, 4'000, 7'600, 13'000});
  REQUIRE(owner_has_nothing());
  advance(milliseconds(1));
  // The first call plus 5 retries (reflow: MaxTries(Backoff, 5)); lost on the 6th failure.
  REQUIRE(offsets_ms() == std::vector<int64_t>{0, 1'600, 4'000, 7'600, 13'000, 21'100});
  auto lost = expect_lost();
  REQUIRE(lost.kind == error_kind::unavailable);
  advance(minutes(30));
  REQUIRE(log->keepalive_at_ms.size() == 6);  // the loop ended
}

TEST_CASE_METHOD(keepalive_fixture,
                 "keepalive: not_exist stops at once, without a retry, and the owner gets the kind") {
  log->grant(5 * 60'000);
  log->fail(1, error_kind::not_exist);
  start(pinned_jitter(0.5));
  advance(seconds(270));
  REQUIRE(log->keepalive_at_ms.size() == 2);
  auto lost = expect_lost();
  REQUIRE(lost.kind == error_kind::not_exist);
  REQUIRE(lost.message == "scripted failure");
  advance(minutes(30));
  REQUIRE(log->keepalive_at_ms.size() == 2);
}

TEST_CASE_METHOD(keepalive_fixture, "keepalive: fatal, unauthorized and invalid failures stop at once") {
  for (auto kind : {error_kind::fatal, error_kind::unauthorized, error_kind::invalid}) {
    auto log_for_kind = std::make_shared<fake_alloc_log>();
    log_for_kind->fail(1, kind);
    auto fake = sys.spawn(fake_alloc, log_for_kind);
    auto k = spawn_keepalive_actor(sys, fake, caf::actor{self}, pinned_jitter(0.5));
    run();
    auto lost = expect_lost();
    REQUIRE(lost.kind == kind);
    advance(minutes(10));
    REQUIRE(log_for_kind->keepalive_at_ms.size() == 1);
    caf::anon_send_exit(fake, caf::exit_reason::user_shutdown);
    run();
  }
}

TEST_CASE_METHOD(keepalive_fixture, "keepalive: an unanswered keepalive times out after exactly 10 s and is retried") {
  log->never_answer();
  start(pinned_jitter(0.5));
  advance(milliseconds(9'999));
  REQUIRE(log->keepalive_at_ms.size() == 1);
  // Timed out at 10 s; the retry follows the first backoff wait (2 s).
  advance(milliseconds(2'000));
  REQUIRE(offsets_ms() == std::vector<int64_t>{0});
  advance(milliseconds(1));
  REQUIRE(offsets_ms() == std::vector<int64_t>{0, 12'000});
  REQUIRE(owner_has_nothing());
  // The retry was granted 5 min: the next renewal is 270 s after it.
  advance(seconds(270));
  REQUIRE(offsets_ms() == std::vector<int64_t>{0, 12'000, 282'000});
}

TEST_CASE_METHOD(keepalive_fixture, "keepalive: an alloc that never answers is lost as a timeout") {
  log->otherwise = {keepalive_reply::mode::never_answer, 0, error_kind::internal};
  start(pinned_jitter(0.5));
  advance(minutes(2));
  // Each call waits its 10 s, then the backoff: 0, 12, 25, 39.5, 56.25, 76.375 s.
  REQUIRE(offsets_ms() == std::vector<int64_t>{0, 12'000, 25'000, 39'500, 56'250, 76'375});
  auto lost = expect_lost();
  REQUIRE(lost.kind == error_kind::timeout);
}

TEST_CASE_METHOD(keepalive_fixture, "keepalive: stop_atom stops the loop, acks the owner, and no keepalive follows") {
  start(pinned_jitter(0.5));
  advance(seconds(270));
  REQUIRE(log->keepalive_at_ms.size() == 2);
  self->send(keeper, stop_atom::value);
  run();
  bool acked = false;
  self->receive([&](stop_atom) { acked = true; }, caf::after(caf::timespan{0}) >> [] { FAIL("no stop ack"); });
  REQUIRE(acked);
  advance(minutes(30));
  REQUIRE(log->keepalive_at_ms.size() == 2);
  REQUIRE(owner_has_nothing());
}

TEST_CASE_METHOD(keepalive_fixture, "keepalive: stop while a retry is pending cancels the retry") {
  log->fail(1, error_kind::unavailable);
  start(pinned_jitter(0.5));
  REQUIRE(log->keepalive_at_ms.size() == 1);
  self->send(keeper, stop_atom::value);
  run();
  advance(seconds(10));
  REQUIRE(log->keepalive_at_ms.size() == 1);
  bool acked = false;
  self->receive([&](stop_atom) { acked = true; }, caf::after(caf::timespan{0}) >> [] {});
  REQUIRE(acked);
}
