#include <catch2/catch.hpp>

#include <map>
#include <set>

#include "policy/offer_picker.hpp"

using namespace poolbus;

namespace {

// reflow pool_test.go's sizes.
const Resources small{{"mem", 10}, {"cpu", 1}, {"disk", 20}};
const Resources medium = small.scale(2);
const Resources large = small.scale(4);

Resources scale(const Resources& r, double factor) { return r.scale(factor); }

std::vector<OfferInfo> offers(std::vector<Resources> rs) {
  std::vector<OfferInfo> out;
  for (std::size_t i = 0; i < rs.size(); ++i) out.push_back({"o" + std::to_string(i), "p", rs[i]});
  return out;
}

std::vector<std::string> names(const std::vector<Resources>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(r.to_string());
  return out;
}

std::vector<std::string> names(const std::vector<OfferInfo>& os) {
  std::vector<std::string> out;
  for (const auto& o : os) out.push_back(o.available.to_string());
  return out;
}

struct pick_case {
  Resources min, max;
  std::vector<Resources> offered;
  std::map<std::size_t, std::vector<Resources>> want_by_n;
};

}  // namespace

TEST_CASE("pick_n: reflow TestPickN, all eight cases") {
  std::vector<pick_case> cases = {
      {large, scale(large, 1.2), {medium, scale(medium, 1.2)}, {{2, {}}}},
      {scale(medium, 0.9), scale(medium, 1.2), {large, medium, small}, {{2, {large, medium}}, {1, {large}}}},
      {scale(large, 0.9),
       scale(large, 1.2),
       {large, small, medium, small, scale(large, 1.1)},
       {{2, {scale(large, 1.1), large}}, {4, {scale(large, 1.1), large}}}},
      {scale(medium, 0.9),
       scale(medium, 1.2),
       {scale(small, 1.5), scale(medium, 1.1), large, small, large, medium},
       {{2, {large, large}}, {4, {large, large, scale(medium, 1.1), medium}}}},
      {scale(medium, 1.2),
       scale(large, 1.2),
       {large, medium, small, scale(medium, 1.1), scale(large, 1.1)},
       {{1, {scale(large, 1.1)}}, {3, {scale(large, 1.1), large}}}},
      {medium,
       large,
       {scale(medium, 1.1), scale(medium, 1.2), scale(medium, 1.3), large, scale(large, 1.1)},
       {{1, {large}}, {2, {large, scale(large, 1.1)}}}},
      {scale(medium, 0.9),
       large,
       {medium, medium, medium, medium, scale(large, 1.1)},
       {{2, {scale(large, 1.1), medium}}, {4, {scale(large, 1.1), medium, medium, medium}}}},
      {scale(medium, 0.9),
       large,
       {small, scale(small, 1.5), scale(small, 1.7), medium, medium, scale(medium, 1.3), scale(medium, 1.8),
        scale(large, 1.1), scale(large, 1.5), scale(large, 1.8)},
       {{2, {scale(large, 1.1), scale(large, 1.5)}},
        {4, {scale(large, 1.1), scale(large, 1.5), scale(large, 1.8), scale(medium, 1.8)}},
        {50,
         {scale(large, 1.1), scale(large, 1.5), scale(large, 1.8), scale(medium, 1.8), scale(medium, 1.3), medium,
          medium}}}},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& tc = cases[i];
    for (const auto& [n, want] : tc.want_by_n) {
      INFO("case " << i << ", n " << n);
      CHECK(names(pick_n(offers(tc.offered), n, tc.min, tc.max)) == names(want));
    }
  }
}

TEST_CASE("pick_n: keeps ids and pools of the offers it picks") {
  std::vector<OfferInfo> in = {{"1", "a", small}, {"1", "b", large}, {"1", "c", medium}};
  auto got = pick_n(in, 10, small, medium);
  REQUIRE(got.size() == 3);
  CHECK(got[0].pool == "c");  // exactly max
  CHECK(got[1].pool == "b");  // above max, farther
  CHECK(got[2].pool == "a");  // below max
  CHECK(pick_n(in, 0, small, medium).empty());
}

TEST_CASE("allocate_max: min * (1 + width)") {
  CHECK(allocate_max(small, 0) == small);
  CHECK(allocate_max(small, 1) == medium);
  CHECK(allocate_max(small, 3) == large);
}

TEST_CASE("plan_want: min(max, available), or the whole offer when a dimension would be left empty") {
  const Resources big{{"cpu", 8}, {"mem", 32 * GiB}, {"disk", 100 * GiB}, {"gpu", 1}};
  SECTION("room left in every dimension: exactly max") {
    Resources max{{"cpu", 2}, {"mem", 4 * GiB}, {"disk", 10 * GiB}};
    CHECK(plan_want(big, max) == max);
  }
  SECTION("cpu would be left at zero: the whole offer") {
    Resources max{{"cpu", 8}, {"mem", 4 * GiB}, {"disk", 10 * GiB}};
    CHECK(plan_want(big, max) == big);
  }
  SECTION("mem would be left at zero: the whole offer") {
    Resources max{{"cpu", 1}, {"mem", 64 * GiB}, {"disk", 10 * GiB}};
    CHECK(plan_want(big, max) == big);
  }
  SECTION("an offer without disk leaves nothing usable: the whole offer") {
    Resources no_disk{{"cpu", 8}, {"mem", 32 * GiB}};
    Resources max{{"cpu", 1}, {"mem", 1 * GiB}};
    CHECK(plan_want(no_disk, max) == no_disk);
  }
  SECTION("max larger than the offer in every dimension: the whole offer") { CHECK(plan_want(small, large) == small); }
}

namespace {

// A pool of reflow's TestAllocate kind: one offer per pool, accepted at most
// as far as its resources go; not_exist once taken.
struct fake_pools {
  std::map<std::string, Resources> available;  // pool -> available
  int accepts = 0;

  std::vector<OfferInfo> offers() const {
    std::vector<OfferInfo> out;
    for (const auto& [pool, r] : available)
      if (r.units("cpu") > 0 && r.units("mem") > 0 && r.units("disk") > 0) out.push_back({"1", pool, r});
    return out;
  }
  bool accept(const OfferInfo& offer, const Resources& want) {
    ++accepts;
    auto& r = available.at(offer.pool);
    if (!r.available(want)) return false;
    r = r.sub(want);
    return true;
  }
};

// Drives an allocate_plan against fake_pools; `stale` offers are served
// instead of the real ones for the first `stale_rounds` gathers.
struct allocate_result {
  bool ok = false;
  OfferInfo offer;
  AllocMeta meta;
  pool_error error;
  int gathers = 0;
};

allocate_result run_allocate(fake_pools& pools, allocate_plan& plan, std::vector<OfferInfo> stale = {},
                             int stale_rounds = 0) {
  allocate_result result;
  auto step = plan.start();
  for (int guard = 0; guard < 1000; ++guard) {
    if (std::holds_alternative<allocate_plan::gather_offers>(step)) {
      ++result.gathers;
      step = plan.on_offers(result.gathers <= stale_rounds ? stale : pools.offers());
    } else if (auto* accept = std::get_if<allocate_plan::accept_offer>(&step)) {
      if (pools.accept(accept->offer, accept->meta.want)) {
        result.ok = true;
        result.offer = accept->offer;
        result.meta = accept->meta;
        return result;
      }
      step = plan.on_accept_failed({error_kind::not_exist, "offer taken"});
    } else {
      result.error = std::get<allocate_plan::give_up>(step).error;
      return result;
    }
  }
  FAIL("allocate_plan did not finish");
  return result;
}

}  // namespace

TEST_CASE("allocate_plan: accepts the best offer with the template's owner and labels") {
  fake_pools pools;
  pools.available = {{"a", large}, {"b", medium}, {"c", small}};
  allocate_plan plan(small, 0, AllocMeta{{}, "alice", {{"run", "r1"}}}, 1);
  auto result = run_allocate(pools, plan);
  REQUIRE(result.ok);
  CHECK(result.offer.pool == "c");   // small is exactly max
  CHECK(result.meta.want == small);  // small offer: taking max leaves nothing, so the whole offer
  CHECK(result.meta.owner == "alice");
  CHECK(result.meta.labels == Labels{{"run", "r1"}});
  CHECK(result.gathers == 1);
  CHECK(plan.tries() == 1);
}

TEST_CASE("allocate_plan: a wide request takes max from a bigger offer") {
  fake_pools pools;
  pools.available = {{"a", scale(large, 2)}};
  allocate_plan plan(small, 1, AllocMeta{}, 1);
  auto result = run_allocate(pools, plan);
  REQUIRE(result.ok);
  CHECK(result.meta.want == medium);
  CHECK(pools.available.at("a") == scale(large, 2).sub(medium));
}

TEST_CASE("allocate_plan: a not_exist accept moves on to the next candidate in the same round") {
  fake_pools pools;
  pools.available = {{"a", medium}, {"b", large}};
  // The gathered offers claim pool a is exactly max, but it has since shrunk.
  std::vector<OfferInfo> stale = {{"1", "a", medium}, {"1", "b", large}};
  pools.available["a"] = small;
  allocate_plan plan(medium, 0, AllocMeta{}, 7);
  auto result = run_allocate(pools, plan, stale, 1);
  REQUIRE(result.ok);
  CHECK(result.offer.pool == "b");
  CHECK(result.gathers == 1);
  CHECK(pools.accepts == 2);
}

TEST_CASE("allocate_plan: nothing fits -> unavailable after six rounds of offers") {
  fake_pools pools;
  pools.available = {{"a", small}, {"b", medium}};
  allocate_plan plan(large, 0, AllocMeta{}, 3);
  auto result = run_allocate(pools, plan);
  REQUIRE_FALSE(result.ok);
  CHECK(result.error.kind == error_kind::unavailable);
  CHECK(result.gathers == max_allocate_tries);
  CHECK(pools.accepts == 0);
}

TEST_CASE("allocate_plan: offers that keep vanishing -> unavailable after six rounds") {
  fake_pools pools;
  pools.available = {{"a", small}};
  std::vector<OfferInfo> ghost(12, OfferInfo{"1", "a", large});  // stale every round
  allocate_plan plan(medium, 0, AllocMeta{}, 3);
  auto result = run_allocate(pools, plan, ghost, 100);
  REQUIRE_FALSE(result.ok);
  CHECK(result.error.kind == error_kind::unavailable);
  CHECK(result.gathers == 6);
  CHECK(pools.accepts == 6 * static_cast<int>(max_offers_to_consider));  // at most 10 per round
}

TEST_CASE("allocate_plan: an error other than not_exist ends the call as unavailable") {
  allocate_plan plan(small, 0, AllocMeta{}, 1);
  REQUIRE(std::holds_alternative<allocate_plan::gather_offers>(plan.start()));
  auto step = plan.on_offers({{"1", "a", large}, {"1", "b", large}});
  REQUIRE(std::holds_alternative<allocate_plan::accept_offer>(step));
  step = plan.on_accept_failed({error_kind::timeout, "worker slow"});
  REQUIRE(std::holds_alternative<allocate_plan::give_up>(step));
  const auto& error = std::get<allocate_plan::give_up>(step).error;
  CHECK(error.kind == error_kind::unavailable);
  CHECK(error.message.find("worker slow") != std::string::npos);
}

TEST_CASE("allocate_plan: the shuffle is seeded, and spreads equal offers over pools") {
  std::vector<OfferInfo> equal_offers;
  for (char p = 'a'; p <= 'h'; ++p) equal_offers.push_back({"1", std::string(1, p), medium});
  auto first_pool = [&](uint64_t seed) {
    allocate_plan plan(small, 0, AllocMeta{}, seed);
    plan.start();
    auto step = plan.on_offers(equal_offers);
    return std::get<allocate_plan::accept_offer>(step).offer.pool;
  };
  CHECK(first_pool(42) == first_pool(42));
  std::set<std::string> firsts;
  for (uint64_t seed = 0; seed < 64; ++seed) firsts.insert(first_pool(seed));
  CHECK(firsts.size() > 3);
}

TEST_CASE("allocate_plan: sequential allocates fill every pool once (reflow TestAllocateScale, serialised)") {
  fake_pools pools;
  for (int i = 0; i < 50; ++i) pools.available["pool-" + std::to_string(i)] = small;
  int failures = 0;
  for (int i = 0; i < 50; ++i) {
    allocate_plan plan(small, 0, AllocMeta{}, static_cast<uint64_t>(i));
    if (!run_allocate(pools, plan).ok) ++failures;
  }
  CHECK(failures == 0);
  CHECK(pools.offers().empty());
  allocate_plan one_more(small, 0, AllocMeta{}, 99);
  CHECK(run_allocate(pools, one_more).error.kind == error_kind::unavailable);
}

TEST_CASE("offer picker: whether a gang could fit") {
  const Resources min{{"cpu", 1}, {"mem", 2 * GiB}};
  std::vector<OfferInfo> offers{{"1", "a", Resources{{"cpu", 4}, {"mem", 4 * GiB}}},
                                {"1", "b", Resources{{"cpu", 1}, {"mem", 2 * GiB}}}};
  CHECK(gang_could_fit(offers, min, 3, false));
  CHECK_FALSE(gang_could_fit(offers, min, 4, false));
  CHECK(gang_could_fit(offers, min, 2, true));
  CHECK_FALSE(gang_could_fit(offers, min, 3, true));
}
