#include <catch2/catch.hpp>

#include "schemas/outcome.hpp"
#include "schemas/alloc.hpp"

using namespace poolbus;

TEST_CASE("alloc expiry: an alloc is expired from its expiry instant on") {
  AllocInspect a;
  a.expires_ms = 1'700'000'300'000;
  REQUIRE_FALSE(alloc_expired(a, a.expires_ms - 1));
  REQUIRE(alloc_expired(a, a.expires_ms));
  REQUIRE(alloc_expired(a, a.expires_ms + 60'000));
}

TEST_CASE("alloc expiry: expired-by is negative before expiry, the overrun after") {
  AllocInspect a;
  a.expires_ms = 1'700'000'300'000;
  REQUIRE(alloc_expired_by_ms(a, a.expires_ms - 30'000) == -30'000);
  REQUIRE(alloc_expired_by_ms(a, a.expires_ms) == 0);
  REQUIRE(alloc_expired_by_ms(a, a.expires_ms + 90'000) == 90'000);
  // Consistent with alloc_expired: expired exactly when expired-by >= 0.
  for (int64_t d : {-2, -1, 0, 1, 2})
    REQUIRE(alloc_expired(a, a.expires_ms + d) == (alloc_expired_by_ms(a, a.expires_ms + d) >= 0));
}

TEST_CASE("alloc expiry: a keepalive that moves expiry forward un-expires the alloc") {
  AllocInspect a;
  const int64_t now = 1'700'000'000'000;
  a.expires_ms = now - 1;
  REQUIRE(alloc_expired(a, now));
  a.last_keepalive_ms = now;
  a.expires_ms = now + max_keepalive_interval_ms;
  REQUIRE_FALSE(alloc_expired(a, now));
  REQUIRE(alloc_expired_by_ms(a, now) == -max_keepalive_interval_ms);
}
