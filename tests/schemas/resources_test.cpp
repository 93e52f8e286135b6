#include <catch2/catch.hpp>

#include "schemas/resources.hpp"

using namespace poolbus;

TEST_CASE("resources: a thousand accept/free cycles of cpu 0.1 do not drift") {
  Resources total{{"cpu", 4}, {"mem", 8 * GiB}};
  Resources want{{"cpu", 0.1}, {"mem", 1 * MiB}};
  Resources available = total;
  for (int i = 0; i < 1000; ++i) available = available.sub(want);
  for (int i = 0; i < 1000; ++i) available = available.add(want);
  REQUIRE(available.equal(total));
  REQUIRE(available.units("cpu") == total.units("cpu"));
}
