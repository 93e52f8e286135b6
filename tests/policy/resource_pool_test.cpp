#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "policy/resource_pool.hpp"

using namespace poolbus;

namespace {

constexpr int64_t t0 = 1'700'000'000'000;
constexpr int64_t sec = 1000;
constexpr int64_t minute = 60 * sec;

Resources machine() { return Resources{{"cpu", 8}, {"mem", 32 * GiB}, {"disk", 100 * GiB}}; }
AllocMeta want(double cpu, double mem_gib = 1, double disk_gib = 1) {
  return AllocMeta{Resources{{"cpu", cpu}, {"mem", mem_gib * GiB}, {"disk", disk_gib * GiB}}, "tester", {}};
}
std::string local(const AllocInspect& a) { return a.id.substr(a.id.find('/') + 1); }

// The pool's invariant, checked from the outside.
void require_within_total(const resource_pool& pool, int64_t now_ms) {
  Resources all, unexpired;
  for (const auto& a : pool.allocs()) {
    all = all.add(a.resources);
    if (!alloc_expired(a, now_ms)) unexpired = unexpired.add(a.resources);
  }
  REQUIRE(pool.total().available(all));
  REQUIRE(pool.total().available(unexpired));
}

}  // namespace

TEST_CASE("resource pool: create reserves want with a 2-minute lease under a fresh URI") {
  resource_pool pool("w1", machine(), 42);
  auto made = pool.create(want(2, 4), t0);
  REQUIRE(made.ok());
  const auto& a = made->alloc;
  REQUIRE(a.pool == "w1");
  REQUIRE(a.id.rfind("w1/", 0) == 0);
  REQUIRE(local(a).size() == 16);
  REQUIRE(local(a).find_first_not_of("0123456789abcdef") == std::string::npos);
  REQUIRE(a.taskdb_alloc_id == taskdb_alloc_id(a.id));
  REQUIRE(a.taskdb_alloc_id.rfind("sha256:", 0) == 0);
  REQUIRE(a.resources == want(2, 4).want);
  REQUIRE(a.meta == want(2, 4));
  REQUIRE(a.created_ms == t0);
  REQUIRE(a.last_keepalive_ms == 0);
  REQUIRE(a.expires_ms == t0 + 2 * minute);
  REQUIRE(made->collected.empty());
  REQUIRE(pool.available(t0) == Resources({{"cpu", 6}, {"mem", 28 * GiB}, {"disk", 99 * GiB}}));
  REQUIRE(pool.alive(local(a)));
  REQUIRE(pool.inspect(local(a)).value() == a);

  std::set<std::string> ids{local(a)};
  for (int i = 0; i < 3; ++i) ids.insert(local(pool.create(want(1), t0)->alloc));
  REQUIRE(ids.size() == 4);
  REQUIRE(pool.size() == 4);
}

TEST_CASE("resource pool: an empty or all-zero want is a precondition error") {
  resource_pool pool("w1", machine(), 1);
  REQUIRE(pool.create(AllocMeta{}, t0).error().kind == error_kind::precondition);
  REQUIRE(pool.create(AllocMeta{Resources{{"cpu", 0}, {"mem", 0}}, "", {}}, t0).error().kind ==
          error_kind::precondition);
  REQUIRE(pool.accept("1", AllocMeta{}, t0).error().kind == error_kind::precondition);
  REQUIRE(pool.size() == 0);
}

TEST_CASE("resource pool: a want that rounds to zero in every resource is a precondition error, like an empty one") {
  resource_pool pool("w1", machine(), 1);
  // Amounts are thousandths of a unit: 1e-9 cores and 0.0004 bytes round to 0.
  for (const auto& tiny : {Resources{{"cpu", 1e-9}}, Resources{{"cpu", 0.0004}, {"mem", 0.0004}, {"gpu", 1e-6}}}) {
    auto refused = pool.create(AllocMeta{tiny, "", {}}, t0);
    REQUIRE(refused.error().kind == error_kind::precondition);
    CHECK(refused.error().message.find("rounds to zero") != std::string::npos);
    REQUIRE(pool.accept("1", AllocMeta{tiny, "", {}}, t0).error().kind == error_kind::precondition);
  }
  REQUIRE(pool.size() == 0);
  REQUIRE(pool.available(t0) == machine());
  // The smallest amount that counts: one thousandth (0.0005 rounds up to it).
  auto smallest = pool.create(AllocMeta{Resources{{"cpu", 0.0005}}, "", {}}, t0);
  REQUIRE(smallest.ok());
  CHECK(smallest->alloc.resources.units("cpu") == 1);
}

TEST_CASE("resource pool: max_allocs caps the table; an accept beyond it is unavailable and changes nothing") {
  resource_pool pool("w1", machine(), 1);
  pool.set_max_allocs(3);
  std::vector<AllocInspect> made;
  for (int i = 0; i < 3; ++i) made.push_back(pool.create(want(0.001, 0, 0), t0).value().alloc);
  auto available = pool.available(t0);
  auto refused = pool.accept("1", want(0.001, 0, 0), t0 + sec);
  REQUIRE(refused.error().kind == error_kind::unavailable);
  CHECK(refused.error().message.find("--max-allocs 3") != std::string::npos);
  REQUIRE(pool.create(want(0.001, 0, 0), t0 + sec).error().kind == error_kind::unavailable);
  REQUIRE(pool.size() == 3);
  REQUIRE(pool.available(t0 + sec) == available);
  // A free makes room again.
  REQUIRE(pool.free(local(made[0])).ok());
  made[0] = pool.create(want(0.001, 0, 0), t0 + sec).value().alloc;
  REQUIRE(pool.size() == 3);
  // An expired alloc counts as free room: the most expired one is collected for it.
  REQUIRE(pool.keepalive(local(made[1]), 10 * minute, t0 + sec).ok());
  REQUIRE(pool.keepalive(local(made[2]), 10 * minute, t0 + sec).ok());
  auto later = t0 + 3 * minute;  // made[0] (2-minute lease) has expired, the others not
  auto collecting = pool.create(want(0.001, 0, 0), later);
  REQUIRE(collecting.ok());
  REQUIRE(collecting->collected.size() == 1);
  CHECK(collecting->collected[0].id == made[0].id);
  REQUIRE(pool.size() == 3);
  // Allocs restored beyond the cap are kept (only new ones are refused).
  pool.set_max_allocs(2);
  REQUIRE(pool.init(machine(), pool.allocs()).empty());
  REQUIRE(pool.size() == 3);
  REQUIRE(pool.create(want(0.001, 0, 0), later).error().kind == error_kind::unavailable);
}

TEST_CASE("resource pool: a want that does not fit is not_exist and changes nothing") {
  resource_pool pool("w1", machine(), 1);
  REQUIRE(pool.create(want(6), t0).ok());
  auto too_big = pool.create(want(3), t0);
  REQUIRE_FALSE(too_big.ok());
  REQUIRE(too_big.error().kind == error_kind::not_exist);
  auto unknown_resource = pool.create(AllocMeta{Resources{{"cpu", 1}, {"gpu", 1}}, "", {}}, t0);
  REQUIRE(unknown_resource.error().kind == error_kind::not_exist);
  REQUIRE(pool.size() == 1);
  REQUIRE(pool.available(t0).get("cpu") == 2);
}

TEST_CASE("resource pool: create collects the most expired allocs first, only as many as needed") {
  resource_pool pool("w1", machine(), 7);
  auto a = pool.create(want(2), t0)->alloc;             // expires t0 + 2:00
  auto b = pool.create(want(2), t0 + 10 * sec)->alloc;  // expires t0 + 2:10
  auto c = pool.create(want(2), t0 + 20 * sec)->alloc;  // expires t0 + 2:20
  auto d = pool.create(want(2), t0 + 30 * sec)->alloc;  // expires t0 + 2:30
  int64_t now = t0 + 2 * minute + 25 * sec;             // a, b, c expired; d alive

  // Expired allocs are already free to offer, but still count until collected.
  REQUIRE(pool.available(now).get("cpu") == 6);
  auto made = pool.create(want(4), now);
  REQUIRE(made.ok());
  REQUIRE(made->collected.size() == 2);
  REQUIRE(made->collected[0].id == a.id);
  REQUIRE(made->collected[1].id == b.id);
  REQUIRE_FALSE(pool.alive(local(a)));
  REQUIRE_FALSE(pool.alive(local(b)));
  REQUIRE(pool.alive(local(c)));  // not needed, so not collected
  REQUIRE(pool.alive(local(d)));
  REQUIRE(pool.inspect(local(a)).error().kind == error_kind::not_exist);
  REQUIRE(pool.keepalive(local(b), minute, now).error().kind == error_kind::not_exist);
  REQUIRE(pool.available(now).get("cpu") == 2);  // 8 - d(2) - new(4); c expired
  require_within_total(pool, now);

  // With nothing expired left to collect but c, a want of 4 cannot fit.
  REQUIRE(pool.create(want(4), now).error().kind == error_kind::not_exist);
  REQUIRE(pool.alive(local(c)));  // a failed create collects nothing
  auto fits = pool.create(want(2), now);
  REQUIRE(fits->collected.size() == 1);
  REQUIRE(fits->collected[0].id == c.id);
}

TEST_CASE("resource pool: no collection when free room suffices, even with expired allocs") {
  resource_pool pool("w1", machine(), 7);
  auto a = pool.create(want(2), t0)->alloc;
  int64_t now = t0 + 3 * minute;
  auto made = pool.create(want(6), now);
  REQUIRE(made->collected.empty());
  REQUIRE(pool.alive(local(a)));
  // Reviving a is safe: every uncollected alloc still fits the total.
  REQUIRE(pool.keepalive(local(a), minute, now).value() == minute);
  require_within_total(pool, now);
  REQUIRE(pool.available(now).get("cpu") == 0);
}

TEST_CASE("resource pool: keepalive is capped at 5 minutes and revives an expired alloc") {
  resource_pool pool("w1", machine(), 3);
  auto a = pool.create(want(4), t0)->alloc;
  auto id = local(a);

  REQUIRE(pool.keepalive(id, 10 * minute, t0 + minute).value() == 5 * minute);
  REQUIRE(pool.inspect(id)->last_keepalive_ms == t0 + minute);
  REQUIRE(pool.inspect(id)->expires_ms == t0 + 6 * minute);
  REQUIRE(pool.keepalive(id, 30 * sec, t0 + 2 * minute).value() == 30 * sec);
  REQUIRE(pool.inspect(id)->expires_ms == t0 + 2 * minute + 30 * sec);

  REQUIRE(pool.keepalive(id, 0, t0).error().kind == error_kind::invalid);
  REQUIRE(pool.keepalive(id, -5, t0).error().kind == error_kind::invalid);
  REQUIRE(pool.keepalive("nope", minute, t0).error().kind == error_kind::not_exist);

  int64_t late = t0 + 10 * minute;  // expired, not collected
  REQUIRE(pool.available(late).get("cpu") == 8);
  REQUIRE(pool.alive(id));
  REQUIRE(pool.keepalive(id, minute, late).value() == minute);
  REQUIRE(pool.available(late).get("cpu") == 4);
  REQUIRE(pool.inspect(id)->expires_ms == late + minute);
}

TEST_CASE("resource pool: free removes at once; the alloc is not_exist after") {
  resource_pool pool("w1", machine(), 3);
  auto a = pool.create(want(8), t0)->alloc;
  REQUIRE(pool.offers(t0).empty());
  auto freed = pool.free(local(a));
  REQUIRE(freed.ok());
  REQUIRE(freed->id == a.id);
  REQUIRE(pool.available(t0) == machine());
  REQUIRE(pool.offers(t0).size() == 1);
  REQUIRE(pool.free(local(a)).error().kind == error_kind::not_exist);
  REQUIRE(pool.inspect(local(a)).error().kind == error_kind::not_exist);
  REQUIRE(pool.keepalive(local(a), minute, t0).error().kind == error_kind::not_exist);
  REQUIRE_FALSE(pool.alive(local(a)));
  REQUIRE(pool.allocs().empty());
}

TEST_CASE("resource pool: offers are none or exactly one offer \"1\" of everything available") {
  resource_pool pool("w1", machine(), 3);
  auto offers = pool.offers(t0);
  REQUIRE(offers.size() == 1);
  REQUIRE(offers[0].id == "1");
  REQUIRE(offers[0].pool == "w1");
  REQUIRE(offers[0].available == machine());
  REQUIRE(pool.offer("1", t0)->available == machine());
  REQUIRE(pool.offer("2", t0).error().kind == error_kind::not_exist);

  auto a = pool.create(want(3, 2, 10), t0)->alloc;
  REQUIRE(pool.offers(t0)[0].available == Resources({{"cpu", 5}, {"mem", 30 * GiB}, {"disk", 90 * GiB}}));
  // After expiry the alloc's resources are offered again.
  REQUIRE(pool.offers(a.expires_ms)[0].available == machine());
  REQUIRE(pool.offers(a.expires_ms - 1)[0].available.get("cpu") == 5);
}

TEST_CASE("resource pool: no offer when available cpu, mem or disk is zero") {
  for (const char* missing : {"cpu", "mem", "disk"}) {
    auto total = machine();
    total.set(missing, 0);
    resource_pool pool("w1", total, 1);
    REQUIRE(pool.offers(t0).empty());
    REQUIRE(pool.offer("1", t0).error().kind == error_kind::not_exist);
    REQUIRE(pool.accept("1", AllocMeta{Resources{{"gpu", 0.5}, {"cpu", 0.001}}, "", {}}, t0).error().kind ==
            error_kind::not_exist);
  }
  resource_pool pool("w1", machine(), 1);
  REQUIRE(pool.create(AllocMeta{Resources{{"mem", 32 * GiB}}, "", {}}, t0).ok());  // all the memory
  REQUIRE(pool.offers(t0).empty());
}

TEST_CASE("resource pool: accept needs offer \"1\" and a want that still fits") {
  resource_pool pool("w1", machine(), 1);
  REQUIRE(pool.accept("7", want(1), t0).error().kind == error_kind::not_exist);
  auto first = pool.accept("1", want(5), t0);
  REQUIRE(first.ok());
  auto second = pool.accept("1", want(5), t0);  // the offer shrank to 3 cpu
  REQUIRE(second.error().kind == error_kind::not_exist);
  REQUIRE(pool.accept("1", want(3), t0).ok());
  REQUIRE(pool.offers(t0).empty());
  REQUIRE(pool.accept("1", want(0.001), t0).error().kind == error_kind::not_exist);
}

TEST_CASE("resource pool: plan then commit, and a stale plan is refused") {
  resource_pool pool("w1", machine(), 1);
  auto planned = pool.plan(want(4), t0);
  REQUIRE(planned.ok());
  REQUIRE(pool.size() == 0);  // planning reserves nothing
  REQUIRE(pool.available(t0) == machine());
  REQUIRE(pool.commit(*planned).ok());
  REQUIRE(pool.alive(local(planned->alloc)));

  auto stale = pool.plan(want(4), t0);
  REQUIRE(pool.create(want(4), t0).ok());  // the table changed after the plan
  REQUIRE(pool.commit(*stale).error().kind == error_kind::internal);
  REQUIRE(pool.size() == 2);
}

TEST_CASE("resource pool: next_expiry and newly_expired report each lease's expiry once") {
  resource_pool pool("w1", machine(), 1);
  REQUIRE_FALSE(pool.next_expiry(t0).has_value());
  auto a = pool.create(want(1), t0)->alloc;
  auto b = pool.create(want(1), t0 + 30 * sec)->alloc;
  REQUIRE(pool.next_expiry(t0 + 30 * sec) == a.expires_ms);
  REQUIRE(pool.newly_expired(a.expires_ms - 1).empty());

  auto expired = pool.newly_expired(a.expires_ms);
  REQUIRE(expired.size() == 1);
  REQUIRE(expired[0].id == a.id);
  REQUIRE(pool.newly_expired(a.expires_ms + 1).empty());  // once
  REQUIRE(pool.next_expiry(a.expires_ms) == b.expires_ms);

  // A revived alloc that expires again is reported again.
  int64_t now = a.expires_ms + 5 * sec;
  REQUIRE(pool.keepalive(local(a), minute, now).ok());
  REQUIRE(pool.next_expiry(now) == b.expires_ms);
  auto both = pool.newly_expired(now + minute);
  REQUIRE(both.size() == 2);
  REQUIRE_FALSE(pool.next_expiry(now + minute).has_value());
}

// reflow's TestStopIfIdleFor, on the lease table, plus protocol.md's start and
// last-free rules.
TEST_CASE("resource pool: stop_if_idle_for follows reflow's TestStopIfIdleFor") {
  const int64_t d = sec;
  const int64_t started = t0 - minute;  // long enough ago not to matter

  resource_pool empty("w1", machine(), 1);
  REQUIRE(empty.stop_if_idle_for(d, t0, started, 0).stopped);  // idle pool must be stopped

  resource_pool pool("w1", machine(), 1);
  auto a1 = local(pool.create(want(1), t0)->alloc);
  REQUIRE(pool.keepalive(a1, 100, t0).ok());
  auto v = pool.stop_if_idle_for(d, t0, started, 0);
  REQUIRE_FALSE(v.stopped);  // busy pool must not be stopped
  REQUIRE(v.max_time_to_expiry_ms == 100);

  REQUIRE(pool.keepalive(a1, minute, t0).ok());
  v = pool.stop_if_idle_for(d, t0, started, 0);
  REQUIRE_FALSE(v.stopped);
  REQUIRE(v.max_time_to_expiry_ms == minute);

  auto a2 = local(pool.create(want(1), t0)->alloc);
  REQUIRE(pool.keepalive(a2, 5 * minute, t0).ok());
  v = pool.stop_if_idle_for(d, t0, started, 0);
  REQUIRE_FALSE(v.stopped);
  REQUIRE(v.max_time_to_expiry_ms == 5 * minute);

  REQUIRE(pool.free(a1).ok());
  REQUIRE(pool.free(a2).ok());  // clear all allocs
  int64_t last_free = t0;
  REQUIRE_FALSE(pool.stop_if_idle_for(d, t0 + d - 1, started, last_free).stopped);  // too soon after a free
  v = pool.stop_if_idle_for(d, t0 + d, started, last_free);
  REQUIRE(v.stopped);
  REQUIRE(v.freed.empty());
}

TEST_CASE("resource pool: idle means every alloc expired for at least d, never sooner than d after start") {
  const int64_t d = 10 * minute;
  resource_pool pool("w1", machine(), 1);
  REQUIRE_FALSE(pool.stop_if_idle_for(d, t0 + d - 1, t0, 0).stopped);  // just started
  auto a = pool.create(want(1), t0 + d)->alloc;                        // expires t0 + d + 2 min

  auto v = pool.stop_if_idle_for(d, a.expires_ms + d - 1, t0, 0);
  REQUIRE_FALSE(v.stopped);  // expired, but not for d yet
  REQUIRE(v.max_time_to_expiry_ms == 0);
  REQUIRE(pool.alive(local(a)));

  v = pool.stop_if_idle_for(d, a.expires_ms + d, t0, 0);
  REQUIRE(v.stopped);
  REQUIRE(v.freed.size() == 1);
  REQUIRE(v.freed[0].id == a.id);
  REQUIRE(pool.stopped());
  REQUIRE(pool.allocs().empty());
  // A stopped pool offers nothing and takes nothing.
  REQUIRE(pool.offers(a.expires_ms + d).empty());
  REQUIRE(pool.create(want(1), a.expires_ms + d).error().kind == error_kind::unavailable);
}

TEST_CASE("resource pool: a thousand accept/free cycles of cpu 0.1 leave available exactly equal to total") {
  Resources total{{"cpu", 100}, {"mem", 1000 * GiB}, {"disk", 1000 * GiB}};
  resource_pool pool("w1", total, 9);
  AllocMeta tenth{Resources{{"cpu", 0.1}, {"mem", 0.1 * GiB}, {"disk", 0.1 * GiB}}, "", {}};
  for (int i = 0; i < 1000; ++i) {
    auto a = pool.accept("1", tenth, t0);
    REQUIRE(a.ok());
    REQUIRE(pool.free(local(a->alloc)).ok());
  }
  REQUIRE(pool.available(t0) == total);

  // Exactly 1000 tenths fit in 100 cpu, not one more; freeing all returns exactly to total.
  std::vector<std::string> held;
  for (int i = 0; i < 1000; ++i) {
    auto a = pool.create(AllocMeta{Resources{{"cpu", 0.1}}, "", {}}, t0);
    REQUIRE(a.ok());
    held.push_back(local(a->alloc));
  }
  REQUIRE(pool.available(t0).units("cpu") == 0);
  REQUIRE(pool.create(AllocMeta{Resources{{"cpu", 0.1}}, "", {}}, t0).error().kind == error_kind::not_exist);
  for (const auto& id : held) REQUIRE(pool.free(id).ok());
  REQUIRE(pool.available(t0) == total);
  REQUIRE(pool.available(t0).units("cpu") == total.units("cpu"));
}

TEST_CASE("resource pool: random accept/keepalive/free/expiry never oversubscribes") {
  resource_pool pool("w1", machine(), 5);
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> op(0, 3), cpu(1, 4), step(0, 90);
  int64_t now = t0;
  for (int i = 0; i < 2000; ++i) {
    now += step(rng) * sec;
    auto allocs = pool.allocs();
    switch (op(rng)) {
      case 0:
      case 1: (void)pool.accept("1", want(cpu(rng), cpu(rng), cpu(rng)), now); break;
      case 2:
        if (!allocs.empty()) (void)pool.keepalive(local(allocs[rng() % allocs.size()]), cpu(rng) * minute, now);
        break;
      case 3:
        if (!allocs.empty()) (void)pool.free(local(allocs[rng() % allocs.size()]));
        break;
    }
    require_within_total(pool, now);
  }
}

TEST_CASE("resource pool: init restores allocs that fit, latest-expiring first") {
  resource_pool pool("w1", machine(), 1);
  auto old_alloc = pool.create(want(1), t0)->alloc;
  auto restore = [](const std::string& id, double cpu, int64_t expires) {
    AllocInspect a;
    a.id = id;
    a.pool = "w1";
    a.resources = Resources{{"cpu", cpu}};
    a.meta.want = a.resources;
    a.created_ms = t0;
    a.expires_ms = expires;
    return a;
  };
  auto dropped = pool.init(machine(), {restore("w1/aaa", 4, t0 + minute), restore("w1/bbb", 3, t0 + 2 * minute),
                                       restore("bare", 3, t0 + 30 * sec)});
  REQUIRE(dropped.size() == 1);
  REQUIRE(dropped[0].id == "bare");  // earliest expiry, and 4 + 3 + 3 > 8
  REQUIRE_FALSE(pool.alive(local(old_alloc)));
  REQUIRE(pool.alive("aaa"));
  REQUIRE(pool.alive("bbb"));
  REQUIRE(pool.inspect("bbb")->id == "w1/bbb");
  REQUIRE(pool.inspect("bbb")->taskdb_alloc_id == taskdb_alloc_id("w1/bbb"));
  REQUIRE(pool.available(t0).get("cpu") == 1);
  REQUIRE(pool.keepalive("aaa", minute, t0 + 30 * sec).ok());
}

// The pool keeps running sums and an expiry index instead of scanning its
// table; asked at any time (also earlier than before, as tests and restarts
// do), it must answer exactly what a scan of allocs() would.
TEST_CASE("resource pool: incremental sums and expiry index agree with a full scan at any time") {
  resource_pool pool("w1", machine(), 7);
  std::mt19937_64 rng(42);
  std::vector<std::string> live;
  std::map<std::string, int64_t> reported;  // local id -> expiry already reported
  auto scan_available = [&](int64_t now) {
    Resources reserved;
    for (const auto& a : pool.allocs())
      if (!alloc_expired(a, now)) reserved = reserved.add(a.resources);
    return pool.total().sub(reserved);
  };
  auto scan_next_expiry = [&](int64_t now) {
    std::optional<int64_t> next;
    for (const auto& a : pool.allocs())
      if (a.expires_ms > now && (!next || a.expires_ms < *next)) next = a.expires_ms;
    return next;
  };
  int64_t clock = t0;
  for (int step = 0; step < 3000; ++step) {
    clock += static_cast<int64_t>(rng() % (20 * sec));
    // Now and then ask about an earlier moment.
    int64_t now = rng() % 7 == 0 ? clock - static_cast<int64_t>(rng() % (10 * minute)) : clock;
    switch (rng() % 4) {
      case 0:
      case 1: {
        auto made = pool.create(want(0.25 + 0.25 * static_cast<double>(rng() % 4), 0.5, 0.5), now);
        if (!made) break;
        live.push_back(local(made->alloc));
        for (const auto& gone : made->collected) {
          live.erase(std::find(live.begin(), live.end(), local(gone)));
          // Collected allocs were expired: the most expired go first.
          REQUIRE(alloc_expired(gone, now));
        }
        break;
      }
      case 2:
        if (!live.empty()) {
          auto i = rng() % live.size();
          REQUIRE(pool.keepalive(live[i], static_cast<int64_t>(1 + rng() % (4 * minute)), now).ok());
        }
        break;
      case 3:
        if (!live.empty()) {
          auto i = rng() % live.size();
          REQUIRE(pool.free(live[i]).ok());
          live.erase(live.begin() + static_cast<long>(i));
        }
        break;
    }
    REQUIRE(pool.size() == live.size());
    int64_t probe = now + static_cast<int64_t>(rng() % (6 * minute)) - 3 * minute;
    REQUIRE(pool.available(probe) == scan_available(probe));
    REQUIRE(pool.available(now) == scan_available(now));
    REQUIRE(pool.next_expiry(probe) == scan_next_expiry(probe));
    require_within_total(pool, now);
    // newly_expired: exactly the expired leases not reported yet, in id order.
    std::vector<std::string> expected;
    for (const auto& a : pool.allocs()) {
      auto it = reported.find(local(a));
      if (alloc_expired(a, clock) && (it == reported.end() || it->second != a.expires_ms)) expected.push_back(local(a));
    }
    std::vector<std::string> got;
    for (const auto& a : pool.newly_expired(clock)) {
      got.push_back(local(a));
      reported[local(a)] = a.expires_ms;
    }
    REQUIRE(got == expected);
  }
}
