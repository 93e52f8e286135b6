#include <catch2/catch.hpp>

#include "schemas/requirements.hpp"

using namespace poolbus;

TEST_CASE("requirements: max is min scaled by 1 + width") {
  Requirements narrow{Resources{{"cpu", 2}, {"mem", 4 * GiB}}, 0};
  REQUIRE(narrow.max() == Resources({{"cpu", 2}, {"mem", 4 * GiB}}));
  REQUIRE_FALSE(narrow.wide());

  Requirements wide{Resources{{"cpu", 2}, {"mem", 4 * GiB}}, 2};
  REQUIRE(wide.wide());
  REQUIRE(wide.max() == Resources({{"cpu", 6}, {"mem", 12 * GiB}}));
  // Fractional cpu scales exactly in fixed point.
  Requirements tenth{Resources{{"cpu", 0.1}}, 9};
  REQUIRE(tenth.max().units("cpu") == 1000);
}

TEST_CASE("requirements: add_serial keeps the larger of each resource, width unchanged") {
  Requirements r;
  r.add_serial(Resources{{"cpu", 4}, {"mem", 1 * GiB}});
  r.add_serial(Resources{{"cpu", 1}, {"mem", 8 * GiB}, {"gpu", 1}});
  REQUIRE(r.min == Resources({{"cpu", 4}, {"mem", 8 * GiB}, {"gpu", 1}}));
  REQUIRE(r.width == 0);
}

TEST_CASE("requirements: add_parallel widens by one, except for the first step") {
  Requirements r;
  r.add_parallel(Resources{{"cpu", 1}, {"mem", 2 * GiB}});
  REQUIRE(r.width == 0);  // one step alone is not parallel
  r.add_parallel(Resources{{"cpu", 2}, {"mem", 1 * GiB}});
  REQUIRE(r.width == 1);
  r.add_parallel(Resources{{"cpu", 1}});
  REQUIRE(r.width == 2);
  REQUIRE(r.min == Resources({{"cpu", 2}, {"mem", 2 * GiB}}));
  REQUIRE(r.max() == Resources({{"cpu", 6}, {"mem", 6 * GiB}}));
}

TEST_CASE("requirements: add takes the larger min and sums widths") {
  Requirements a{Resources{{"cpu", 1}, {"mem", 8 * GiB}}, 1};
  Requirements b{Resources{{"cpu", 4}, {"mem", 1 * GiB}}, 2};
  a.add(b);
  REQUIRE(a.min == Resources({{"cpu", 4}, {"mem", 8 * GiB}}));
  REQUIRE(a.width == 3);
}

TEST_CASE("requirements: equal compares min and width; zero amounts equal missing ones") {
  Requirements a{Resources{{"cpu", 1}}, 1};
  Requirements b{Resources{{"cpu", 1}, {"gpu", 0}}, 1};
  REQUIRE(a == b);
  b.width = 2;
  REQUIRE(a != b);
  Requirements c{Resources{{"cpu", 1.5}}, 1};
  REQUIRE(a != c);
}

TEST_CASE("requirements: to_string shows the width only above one") {
  Resources min{{"cpu", 2}, {"mem", 4 * GiB}, {"disk", 10 * GiB}};
  REQUIRE(Requirements{min, 0}.to_string() == min.to_string());
  REQUIRE(Requirements{min, 1}.to_string() == min.to_string());
  REQUIRE(Requirements{min, 3}.to_string() == min.to_string() + "#3");
  REQUIRE(Requirements{min, 3}.to_string() == "{mem:4.0GiB cpu:2 disk:10.0GiB}#3");
}
