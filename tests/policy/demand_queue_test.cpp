#include <catch2/catch.hpp>

#include <random>

#include "policy/demand_queue.hpp"

using namespace poolbus;

namespace {

placement want(int64_t priority, int64_t wait_ms = 1000) {
  placement p;
  p.min = Resources{{"cpu", 1}};
  p.priority = priority;
  p.wait_ms = wait_ms;
  return p;
}

std::vector<std::string> ids(const demand_queue& q) {
  std::vector<std::string> out;
  for (const auto& e : q.entries()) out.push_back(e.id);
  return out;
}

}  // namespace

TEST_CASE("demand_queue: higher priority first, then arrival") {
  demand_queue q;
  int answered = 0;
  auto done = [&](outcome<std::vector<AllocInspect>>) { ++answered; };
  q.push(want(0), {}, done, 100);
  q.push(want(5), {}, done, 101);
  q.push(want(-1), {}, done, 102);
  q.push(want(5), {}, done, 103);
  CHECK(ids(q) == std::vector<std::string>{"q2", "q4", "q1", "q3"});
  auto first = q.take_first([](const demand_queue::request&) { return true; });
  REQUIRE(first);
  CHECK(first->entry.id == "q2");
  CHECK(first->entry.queued_ms == 101);
  CHECK(first->entry.deadline_ms == 1101);
  // Put back, it keeps its place ahead of q4.
  q.put_back(std::move(*first));
  CHECK(ids(q) == std::vector<std::string>{"q2", "q4", "q1", "q3"});
  CHECK(answered == 0);
}

TEST_CASE("demand_queue: one that does not fit holds back nobody behind it") {
  demand_queue q;
  auto big = want(9);
  big.min = Resources{{"cpu", 64}};
  q.push(big, {}, {}, 0);
  q.push(want(0), {}, {}, 0);
  auto fits = [](const demand_queue::request& r) { return r.want.min.units("cpu") <= 4000; };
  auto taken = q.take_first(fits);
  REQUIRE(taken);
  CHECK(taken->entry.id == "q2");
  CHECK(ids(q) == std::vector<std::string>{"q1"});
  CHECK_FALSE(q.take_first(fits));
}

TEST_CASE("demand_queue: each leaves once, expired by deadline, thousands of them") {
  demand_queue q;
  std::mt19937 rng(7);
  std::map<std::string, int> answered;
  const int n = 5000;
  for (int i = 0; i < n; ++i) {
    auto w = want(static_cast<int64_t>(rng() % 4), 1 + static_cast<int64_t>(rng() % 10'000));
    q.push(w, {}, {}, 0);
  }
  CHECK(q.size() == n);
  // The order: priorities descending, arrival ascending within one.
  auto entries = q.entries();
  for (std::size_t i = 1; i < entries.size(); ++i) {
    const auto &a = entries[i - 1], &b = entries[i];
    REQUIRE((a.priority > b.priority ||
             (a.priority == b.priority && std::stoi(a.id.substr(1)) < std::stoi(b.id.substr(1)))));
  }
  // Take some that fit (every third id); hold half of them and put those back.
  std::vector<demand_queue::request> held;
  int taken = 0;
  for (int k = 0; k < 300; ++k) {
    auto r = q.take_first([&](const demand_queue::request& x) {
      return std::stoi(x.entry.id.substr(1)) % 3 == 0 && answered.count(x.entry.id) == 0;
    });
    if (!r) break;
    if (k % 2 == 0) {
      held.push_back(std::move(*r));
    } else {
      ++taken;
      ++answered[r->entry.id];
    }
  }
  for (auto& r : held) q.put_back(std::move(r));
  CHECK(q.size() == static_cast<std::size_t>(n - taken));
  int64_t last_deadline = 0;
  for (int64_t now = 0; now < 10'000 + 997; now += 997) {  // past the last deadline (10 s)
    REQUIRE(q.next_deadline_ms().value_or(now) >= last_deadline);
    for (auto& r : q.take_expired(now)) {
      CHECK(r.entry.deadline_ms <= now);
      CHECK(r.entry.deadline_ms >= last_deadline);
      last_deadline = r.entry.deadline_ms;
      ++answered[r.entry.id];
    }
  }
  CHECK(q.empty());
  CHECK_FALSE(q.next_deadline_ms());
  int total = 0;
  for (const auto& [id, times] : answered) {
    INFO(id);
    REQUIRE(times == 1);
    ++total;
  }
  CHECK(total == n);
  CHECK(taken > 0);
}

TEST_CASE("demand_queue: a wait is clamped to 24 hours") {
  demand_queue q;
  const auto& e = q.push(want(0, std::numeric_limits<int64_t>::max()), {}, {}, 5);
  CHECK(e.deadline_ms == 5 + max_wait_ms);
}
