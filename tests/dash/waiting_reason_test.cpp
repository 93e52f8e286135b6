#include <catch2/catch.hpp>

#include "dash/waiting_reason.hpp"

using namespace poolbus;

namespace {

pool_view pool(const std::string& id, double total_cpu, double free_cpu, Labels labels = {}, bool draining = false) {
  pool_view p;
  p.latest.pool = id;
  p.latest.resources = Resources{{"cpu", total_cpu}};
  p.latest.available = Resources{{"cpu", free_cpu}};
  p.latest.labels = std::move(labels);
  p.latest.draining = draining;
  return p;
}

queue_entry wants(double cpu, int64_t count = 1, Constraints constraints = {}) {
  queue_entry q;
  q.id = "q1";
  q.min = Resources{{"cpu", cpu}};
  q.count = count;
  q.constraints = std::move(constraints);
  return q;
}

}  // namespace

TEST_CASE("waiting_reason: names the first thing that stands in the way") {
  std::map<std::string, pool_view> pools;
  CHECK(waiting_reason(wants(1), pools) == "no pool is connected");
  pools["w1"] = pool("w1", 4, 1, {{"zone", "z1"}});
  pools["w2"] = pool("w2", 8, 0, {{"zone", "z2"}});
  CHECK(waiting_reason(wants(1, 1, {{"zone", {"z9"}}}), pools) == "no pool has zone=z9");
  CHECK(waiting_reason(wants(16), pools).find("no matching pool is that large (largest: w2") != std::string::npos);
  CHECK(waiting_reason(wants(4, 4), pools).find("a gang of 4") == 0);  // 1 + 2 copies when empty
  CHECK(waiting_reason(wants(2), pools) == "waits for capacity: 0 of 1 free now on the matching pools");
  CHECK(waiting_reason(wants(1), pools).find("fits now") == 0);
  pools["w1"].latest.draining = true;
  CHECK(waiting_reason(wants(1, 1, {{"zone", {"z1"}}}), pools) == "every matching pool is draining");
}
