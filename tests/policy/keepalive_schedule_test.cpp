#include <catch2/catch.hpp>

#include "policy/keepalive_schedule.hpp"

using namespace poolbus;

namespace {
constexpr int64_t sec = 1000;
constexpr int64_t minute = 60 * sec;
}  // namespace

TEST_CASE("keepalive schedule: asks for MaxKeepaliveInterval under a 10 s call timeout") {
  keepalive_schedule s;
  REQUIRE(s.interval_to_request_ms() == 5 * minute);
  REQUIRE(s.call_timeout_ms == 10 * sec);
  REQUIRE(s.renew_before_expiry_ms == 30 * sec);
}

TEST_CASE("keepalive schedule: renews 30 s before the granted interval runs out") {
  keepalive_schedule s;
  REQUIRE(s.renew_delay_ms(5 * minute) == 4 * minute + 30 * sec);
  REQUIRE(s.renew_delay_ms(2 * minute) == 90 * sec);
  REQUIRE(s.renew_delay_ms(1 * minute) == 30 * sec);
  REQUIRE(s.renew_delay_ms(50 * sec) == 20 * sec);
}

TEST_CASE("keepalive schedule: never more than 5 minutes apart") {
  keepalive_schedule s;
  REQUIRE(s.renew_delay_ms(5 * minute + 30 * sec) == 5 * minute);
  REQUIRE(s.renew_delay_ms(20 * minute) == 5 * minute);
  REQUIRE(s.renew_delay_ms(INT64_MAX / 2) == 5 * minute);
}

TEST_CASE("keepalive schedule: a grant no longer than ivOffset renews halfway, never negative or zero") {
  keepalive_schedule s;
  REQUIRE(s.renew_delay_ms(30 * sec) == 15 * sec);
  REQUIRE(s.renew_delay_ms(20 * sec) == 10 * sec);
  REQUIRE(s.renew_delay_ms(1 * sec) == 1 * sec);  // floor: min_renew_gap_ms
  REQUIRE(s.renew_delay_ms(0) == 1 * sec);
  REQUIRE(s.renew_delay_ms(-5 * minute) == 1 * sec);
}

TEST_CASE("keepalive schedule: renew time from an absolute expiry") {
  keepalive_schedule s;
  const int64_t now = 1'700'000'000'000;
  REQUIRE(s.renew_at_ms(now, now + 5 * minute) == now + 4 * minute + 30 * sec);
  REQUIRE(s.renew_at_ms(now, now + 1 * minute) == now + 30 * sec);
  REQUIRE(s.renew_at_ms(now, now + 1 * sec) == now + 1 * sec);
  // Already expired: renew soon, not in the past.
  REQUIRE(s.renew_at_ms(now, now - 1 * minute) == now + 1 * sec);
}

TEST_CASE("keepalive schedule: transient kinds are retried, a gone or refused alloc is not") {
  for (auto kind : {error_kind::timeout, error_kind::unavailable, error_kind::internal})
    REQUIRE(keepalive_schedule::retryable(kind));
  for (auto kind : {error_kind::fatal, error_kind::not_exist, error_kind::unauthorized, error_kind::invalid,
                    error_kind::precondition}) {
    REQUIRE_FALSE(keepalive_schedule::retryable(kind));
    REQUIRE_FALSE(keepalive_schedule{}.retry_delay_ms(kind, 1, 0.5).has_value());
  }
}

TEST_CASE("keepalive schedule: retry waits follow the backoff and stop after the policy's retries") {
  keepalive_schedule s;
  // Middle of the jitter range = the nominal backoff 2 s, 3 s, 4.5 s, 6.75 s, 10.125 s.
  REQUIRE(s.retry_delay_ms(error_kind::timeout, 1, 0.5) == 2000);
  REQUIRE(s.retry_delay_ms(error_kind::unavailable, 2, 0.5) == 3000);
  REQUIRE(s.retry_delay_ms(error_kind::internal, 3, 0.5) == 4500);
  REQUIRE(s.retry_delay_ms(error_kind::timeout, 4, 0.5) == 6750);
  REQUIRE(s.retry_delay_ms(error_kind::timeout, 5, 0.5) == 10125);
  // The call after the 5th retry failed: give up (reflow: MaxTries(.., 5) -> 1 call + 5 retries).
  REQUIRE_FALSE(s.retry_delay_ms(error_kind::timeout, 6, 0.5).has_value());
  REQUIRE_FALSE(s.retry_delay_ms(error_kind::timeout, 0, 0.5).has_value());
}

TEST_CASE("keepalive schedule: the jitter sample moves the wait within 20% either side") {
  keepalive_schedule s;
  REQUIRE(s.retry_delay_ms(error_kind::timeout, 1, 0.0) == 1600);
  REQUIRE(s.retry_delay_ms(error_kind::timeout, 2, 0.0) == 2400);
  REQUIRE(*s.retry_delay_ms(error_kind::timeout, 1, 0.999999) <= 2400);
  REQUIRE(*s.retry_delay_ms(error_kind::timeout, 1, 0.999999) > 2390);
  for (double u = 0.0; u < 1.0; u += 0.05) {
    for (int failures = 1; failures <= 5; ++failures) {
      auto nominal = *s.retry.nominal_wait_ms(failures - 1);
      auto wait = *s.retry_delay_ms(error_kind::internal, failures, u);
      REQUIRE(wait >= nominal * 8 / 10);
      REQUIRE(wait <= nominal * 12 / 10);
    }
  }
}

TEST_CASE("keepalive schedule: all retries fit before the lease lapses (sum of waits < ivOffset)") {
  keepalive_schedule s;
  int64_t worst = 0;
  for (int failures = 1; auto wait = s.retry_delay_ms(error_kind::timeout, failures, 0.999999); ++failures)
    worst += *wait;
  // With the maximum jitter the retries alone need 31.65 s; reflow's bound holds for the nominal waits.
  int64_t nominal = 0;
  for (int failures = 1; auto wait = s.retry_delay_ms(error_kind::timeout, failures, 0.5); ++failures) nominal += *wait;
  REQUIRE(nominal == 26375);
  REQUIRE(nominal < s.renew_before_expiry_ms);
  REQUIRE(worst > nominal);
}
