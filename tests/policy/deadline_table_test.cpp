#include "policy/deadline_table.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <random>

using namespace poolbus;

TEST_CASE("deadline_table: expire takes out what is due, soonest first, and nothing twice") {
  deadline_table t;
  t.add(1, 500);
  t.add(2, 100);
  t.add(3, 300);
  t.add(4, 300);
  CHECK(t.next_deadline() == 100);
  CHECK(t.expire(99).empty());
  CHECK(t.expire(300) == std::vector<uint64_t>{2, 3, 4});
  CHECK(t.expire(300).empty());
  CHECK(t.size() == 1);
  CHECK(t.next_deadline() == 500);
  CHECK(t.expire(10'000) == std::vector<uint64_t>{1});
  CHECK(t.empty());
  CHECK_FALSE(t.next_deadline());
}

TEST_CASE("deadline_table: an erased id never expires, an expired one cannot be erased") {
  deadline_table t;
  t.add(7, 100);
  t.add(8, 100);
  CHECK(t.erase(7));
  CHECK_FALSE(t.erase(7));
  CHECK(t.expire(100) == std::vector<uint64_t>{8});
  CHECK_FALSE(t.erase(8));  // its waiter was answered by the timeout: the late reply is dropped
  CHECK_FALSE(t.erase(99));
}

TEST_CASE("deadline_table: each of 10,000 random entries leaves exactly once") {
  deadline_table t;
  std::mt19937_64 rng(42);
  std::vector<int> left(10'000, 0);
  for (uint64_t id = 0; id < left.size(); ++id) t.add(id, static_cast<int64_t>(rng() % 1000));
  for (uint64_t id = 0; id < left.size(); id += 3)
    if (t.erase(id)) ++left[id];
  int64_t last = -1;
  for (int64_t now = 0; now < 1000 + 7; now += 7)
    for (auto id : t.expire(now)) {
      ++left[id];
      last = now;
    }
  CHECK(last >= 0);
  CHECK(t.empty());
  for (auto n : left) REQUIRE(n == 1);
}

TEST_CASE("deadline_after saturates and ignores negative waits") {
  CHECK(deadline_after(1000, 500) == 1500);
  CHECK(deadline_after(1000, 500, 250) == 1750);
  CHECK(deadline_after(1000, -5, -7) == 1000);
  CHECK(deadline_after(INT64_MAX - 10, 100) == INT64_MAX);
  CHECK(deadline_after(0, INT64_MAX, INT64_MAX) == INT64_MAX);
}
