#include "policy/heartbeat_pace.hpp"

#include <catch2/catch.hpp>

using namespace poolbus;

TEST_CASE("heartbeat_pace: no ask while the pools fit the rate at the base heartbeat") {
  heartbeat_pace pace(10'000, 1000);
  CHECK_FALSE(pace.on_pool_count(1));
  CHECK_FALSE(pace.on_pool_count(10'000));
  CHECK(pace.interval_ms() == 0);
}

TEST_CASE("heartbeat_pace: the base doubles until the pools fit the rate") {
  heartbeat_pace pace(10'000, 1000);
  CHECK(pace.on_pool_count(10'001));
  CHECK(pace.interval_ms() == 2000);
  CHECK_FALSE(pace.on_pool_count(20'000));
  CHECK(pace.on_pool_count(100'000));
  CHECK(pace.interval_ms() == 16'000);  // 6,250 a second
  CHECK_FALSE(pace.on_pool_count(100'001));
}

TEST_CASE("heartbeat_pace: it shrinks only with a quarter to spare, so a count at a boundary does not flap") {
  heartbeat_pace pace(10'000, 1000);
  REQUIRE(pace.on_pool_count(10'001));
  // Back under the boundary, but not by a quarter: the pools keep 2 s.
  CHECK_FALSE(pace.on_pool_count(10'000));
  CHECK_FALSE(pace.on_pool_count(7'501));
  CHECK(pace.interval_ms() == 2000);
  CHECK(pace.on_pool_count(7'500));
  CHECK(pace.interval_ms() == 0);
  // Down from 16 s in one change, step by step to what fits.
  REQUIRE(pace.on_pool_count(100'000));
  CHECK(pace.on_pool_count(14'000));
  CHECK(pace.interval_ms() == 2000);
  CHECK(pace.on_pool_count(0));
  CHECK(pace.interval_ms() == 0);
}

TEST_CASE("heartbeat_pace: a low rate paces a small cluster") {
  heartbeat_pace pace(50, 1000);
  CHECK(pace.on_pool_count(120));
  CHECK(pace.interval_ms() == 4000);  // 30 a second
}
