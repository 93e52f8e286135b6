#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

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

TEST_CASE("resources: labels stay sorted and unique whatever order they are set in") {
  Resources r;
  for (const char* key : {"mem", "gpu", "cpu", "zeta", "disk", "cpu", "a"}) r.set_units(key, 7);
  r.set_units("gpu", 3);
  std::vector<std::string> keys;
  for (const auto& [key, units] : r.amounts()) keys.push_back(key);
  CHECK(keys == std::vector<std::string>{"a", "cpu", "disk", "gpu", "mem", "zeta"});
  CHECK(r.units("gpu") == 3);
  CHECK(r.units("absent") == 0);
  CHECK_FALSE(r.has("b"));
  // add/sub take the union of both sides' labels, each once, in order.
  Resources other{{"b", 1}, {"cpu", 2}, {"zz", 4}};
  auto sum = r.add(other);
  keys.clear();
  for (const auto& [key, units] : sum.amounts()) keys.push_back(key);
  CHECK(keys == std::vector<std::string>{"a", "b", "cpu", "disk", "gpu", "mem", "zeta", "zz"});
  CHECK(sum.units("cpu") == 7 + 2000);
  CHECK(sum.sub(other) == r);
  CHECK(other.sub(sum).units("a") == -7);
}

// Ported from reflow's resources_test.go (TestResources, TestResourcesEqual)
// and its Scale/ScaledDistance/String behaviour.
TEST_CASE("resources: reflow sub, add, available, min, max") {
  Resources r1{{"mem", 10}, {"cpu", 5}, {"disk", 1}};
  Resources r2{{"mem", 5}, {"cpu", 2}, {"disk", 3}};
  CHECK(r1.sub(r2) == Resources({{"mem", 5}, {"cpu", 3}, {"disk", -2}}));
  CHECK(r1.add(r2) == Resources({{"mem", 15}, {"cpu", 7}, {"disk", 4}}));
  CHECK(r1.add(r2) == r2.add(r1));
  CHECK_FALSE(r1.available(r2));
  Resources r3{{"mem", 3}, {"cpu", 1}, {"disk", 1}};
  CHECK(r1.available(r3));
  CHECK(r1.min(r2) == Resources({{"mem", 5}, {"cpu", 2}, {"disk", 1}}));
  CHECK(r1.max(r2) == Resources({{"mem", 10}, {"cpu", 5}, {"disk", 3}}));
}

TEST_CASE("resources: reflow min/max keep keys only the receiver has") {
  Resources with_gpu{{"mem", 10}, {"gpu", 1}};
  Resources mem_only{{"mem", 5}};
  CHECK(with_gpu.min(mem_only) == Resources({{"mem", 5}, {"gpu", 1}}));
  CHECK(mem_only.min(with_gpu) == Resources({{"mem", 5}}));  // gpu: 0 < 1, stays absent
  CHECK(mem_only.max(with_gpu) == Resources({{"mem", 10}, {"gpu", 1}}));
  // Sub and Add go over the union of keys.
  CHECK(mem_only.sub(with_gpu) == Resources({{"mem", -5}, {"gpu", -1}}));
  CHECK(Resources{}.available(Resources{{"gpu", 0}}));
  CHECK_FALSE(Resources{}.available(Resources{{"gpu", 1}}));
}

TEST_CASE("resources: reflow equal treats missing keys as zero") {
  CHECK_FALSE(
      Resources({{"mem", 10}, {"cpu", 5}, {"disk", 1}}).equal(Resources({{"mem", 5}, {"cpu", 2}, {"disk", 3}})));
  CHECK(Resources({{"mem", 0}, {"cpu", 0}}).equal(Resources{}));
  CHECK(Resources{}.equal(Resources({{"mem", 0}, {"cpu", 0}})));
  CHECK(Resources{}.equal(Resources{}));
  CHECK_FALSE(Resources({{"gpu", 1}}).equal(Resources{}));
}

TEST_CASE("resources: reflow scale and scaled distance") {
  Resources min{{"mem", 2}, {"cpu", 1}};
  CHECK(min.scale(11) == Resources({{"mem", 22}, {"cpu", 11}}));  // Requirements{min, width 10}.Max()
  CHECK(min.scale(0.5) == Resources({{"mem", 1}, {"cpu", 0.5}}));
  CHECK(min.scale(1) == min);
  // |dmem| / 8 GiB + |dcpu| (protocol.md); disk and other labels do not count.
  Resources a{{"cpu", 4}, {"mem", 16 * GiB}, {"disk", 1}};
  Resources b{{"cpu", 2}, {"mem", 8 * GiB}, {"gpu", 9}};
  CHECK(a.scaled_distance(b) == Approx(3.0));
  CHECK(b.scaled_distance(a) == Approx(3.0));
  CHECK(a.scaled_distance(a) == 0);
}

TEST_CASE("resources: reflow's String form") {
  CHECK(Resources({{"mem", 8 * GiB}, {"cpu", 4}, {"disk", 100 * GiB}, {"gpu", 1}}).to_string() ==
        "{mem:8.0GiB cpu:4 disk:100.0GiB gpu:1}");
  CHECK(Resources({{"cpu", 0.5}}).to_string() == "{mem:0B cpu:0.5 disk:0B}");
  CHECK(Resources({{"mem", 10}, {"zz", 0}, {"aa", 2}}).to_string() == "{mem:10B cpu:0 disk:0B aa:2}");
  CHECK(Resources({{"gpu", 1}}).to_string() == "{ gpu:1}");  // as reflow: no mem/cpu/disk, a leading space
  CHECK(Resources{}.to_string() == "{}");
  CHECK(Resources({{"mem", 2 * MiB + 800 * KiB}}).to_string() == "{mem:2.8MiB cpu:0 disk:0B}");
}

TEST_CASE("resources: data.Size formatting") {
  CHECK(format_size(10) == "10B");
  CHECK(format_size(727) == "727B");
  CHECK(format_size(KiB) == "1.0KiB");
  CHECK(format_size(4 * KiB + 100) == "4.1KiB");
  CHECK(format_size(73 * KiB + 900) == "73.9KiB");
  CHECK(format_size(TiB) == "1.0TiB");
  CHECK(format_size(-KiB) == "-1.0KiB");
  CHECK(format_size(-727) == "-727B");
}

TEST_CASE("resources: from_values validates outside input") {
  CHECK(Resources::from_values({{"cpu", 1}, {"mem", 0}}).ok());
  CHECK_FALSE(Resources::from_values({{"cpu", -1}}).ok());
  CHECK_FALSE(Resources::from_values({{"cpu", std::numeric_limits<double>::infinity()}}).ok());
  CHECK_FALSE(Resources::from_values({{"cpu", std::nan("")}}).ok());
  CHECK_FALSE(Resources::from_values({{"", 1}}).ok());
  CHECK_FALSE(Resources::from_values({{"mem", 1e17}}).ok());
}

TEST_CASE("resources: copies that fit side by side") {
  const Resources min{{"cpu", 1}, {"mem", 2 * GiB}};
  CHECK(copies_that_fit(Resources{{"cpu", 4}, {"mem", 4 * GiB}}, min) == 2);
  CHECK(copies_that_fit(Resources{{"cpu", 0.5}, {"mem", 64 * GiB}}, min) == 0);
  CHECK(copies_that_fit(Resources{{"cpu", 4}}, min) == 0);  // no mem
  CHECK(copies_that_fit(Resources{{"cpu", 4}}, Resources{}) == 0);
}
