#include <catch2/catch.hpp>

#include "policy/retry_policy.hpp"

using namespace poolbus;

TEST_CASE("retry policy: keepalive backoff is 2 s by 1.5, five tries, all within ivOffset") {
  auto p = keepalive_retry_policy();
  REQUIRE(p.nominal_wait_ms(0) == 2000);
  REQUIRE(p.nominal_wait_ms(1) == 3000);
  REQUIRE(p.nominal_wait_ms(2) == 4500);
  REQUIRE(p.nominal_wait_ms(3) == 6750);
  REQUIRE(p.nominal_wait_ms(4) == 10125);
  REQUIRE_FALSE(p.nominal_wait_ms(5).has_value());
  // reflow's constraint: sum_{i<n} a*b^i < ivOffset, so the last retry lands before expiry.
  int64_t sum = 0;
  for (int i = 0; i < p.max_retries; ++i) sum += *p.nominal_wait_ms(i);
  REQUIRE(sum < 30000);
}

TEST_CASE("retry policy: jitter stays within 20% either side") {
  auto p = keepalive_retry_policy();
  REQUIRE(p.wait_ms(0, 0.0) == 1600);
  REQUIRE(p.wait_ms(0, 0.5) == 2000);
  REQUIRE(*p.wait_ms(0, 0.999999) <= 2400);
  REQUIRE_FALSE(p.wait_ms(5, 0.5).has_value());
}
