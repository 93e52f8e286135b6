#include <catch2/catch.hpp>

#include "policy/tracked_offer.hpp"

using namespace poolbus;

namespace {

const Resources small{{"mem", 10}, {"cpu", 1}, {"disk", 20}};
const Resources medium = small.scale(2);
const Resources large = small.scale(4);

// reflow cachingpool_test.go's TestPool: a resource pool that extends one
// offer ("1") of all it has left, counting Offers and Accept calls.
struct fake_pool {
  Resources available;
  int offers_calls = 0;
  int accept_calls = 0;
  int next_alloc = 0;

  std::vector<OfferInfo> offers() {
    ++offers_calls;
    if (available.units("cpu") <= 0 || available.units("mem") <= 0 || available.units("disk") <= 0) return {};
    return {OfferInfo{"1", "testpool", available}};
  }
  outcome<AllocInspect> accept(const std::string& offer_id, const Resources& want) {
    ++accept_calls;
    if (offer_id != "1" || !available.available(want))
      return make_pool_error(error_kind::not_exist, "offer 1 cannot cover the request");
    available = available.sub(want);
    AllocInspect a;
    a.id = "testpool/a" + std::to_string(++next_alloc);
    a.pool = "testpool";
    a.resources = want;
    a.meta.want = want;
    return a;
  }
  void free(const AllocInspect& a) { available = available.add(a.resources); }
};

// What a caching pool's Offers does: the cache, or the pool when stale.
std::vector<OfferInfo> cached_offers(offer_cache& cache, fake_pool& pool, int64_t now_ms) {
  if (cache.needs_refresh(now_ms)) return cache.refresh(pool.offers(), now_ms);
  return cache.offers();
}

// What a tracked offer's Accept does: check and reserve, ask the pool, settle.
outcome<AllocInspect> accept_through(offer_cache& cache, fake_pool& pool, const std::string& offer_id,
                                     const Resources& want) {
  auto ticket = cache.begin_accept(offer_id, want);
  if (!ticket) return ticket.error();
  auto alloc = pool.accept(offer_id, want);
  if (alloc)
    cache.finish_accept(*ticket, *alloc);
  else
    cache.fail_accept(*ticket);
  return alloc;
}

// reflow assertCachingPool: ten calls of Offers give the pool's answer and
// ask the pool once.
void assert_caching_pool(fake_pool& pool, offer_cache& cache, int64_t now_ms) {
  auto want = pool.offers();
  pool.offers_calls = 0;
  for (int i = 0; i < 10; ++i) {
    auto got = cached_offers(cache, pool, now_ms + i);
    REQUIRE(got.size() == want.size());
    for (std::size_t j = 0; j < got.size(); ++j) CHECK(got[j].id == want[j].id);
  }
  CHECK(pool.offers_calls == 1);
}

}  // namespace

TEST_CASE("offer_cache: reflow TestCachingPoolEmpty") {
  fake_pool pool{Resources{}};
  offer_cache cache;
  assert_caching_pool(pool, cache, 1000);
  SECTION("an empty answer is cached until the TTL passes") {
    CHECK(cached_offers(cache, pool, 1000 + offer_cache::default_ttl_ms - 1).empty());
    CHECK(pool.offers_calls == 1);
    CHECK(cached_offers(cache, pool, 1000 + offer_cache::default_ttl_ms).empty());
    CHECK(pool.offers_calls == 2);
  }
}

TEST_CASE("offer_cache: reflow TestCachingPool") {
  fake_pool pool{large};
  offer_cache cache;
  assert_caching_pool(pool, cache, 1000);
  auto offers = cached_offers(cache, pool, 1100);
  REQUIRE(offers.size() == 1);
  auto alloc = accept_through(cache, pool, offers[0].id, large);
  REQUIRE(alloc.ok());
  CHECK(alloc->resources == large);
  auto again = accept_through(cache, pool, offers[0].id, large);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().kind == error_kind::not_exist);
  CHECK(pool.accept_calls == 1);  // the second accept never reached the pool
  CHECK(pool.offers_calls == 1);
  // The emptied offer is no longer listed, but the cache is still valid.
  CHECK(cached_offers(cache, pool, 1200).empty());
  CHECK(pool.offers_calls == 1);
}

TEST_CASE("offer_cache: reflow TestCachingPoolInvalidate") {
  fake_pool pool{large};
  offer_cache cache;
  auto cached = cached_offers(cache, pool, 1000);
  CHECK(pool.offers_calls == 1);
  REQUIRE(cached.size() == 1);

  // Some other client snatches part of the offer.
  auto offers = pool.offers();
  CHECK(pool.offers_calls == 2);
  REQUIRE(offers.size() == 1);
  auto snatched = pool.accept(offers[0].id, small);
  REQUIRE(snatched.ok());
  CHECK(snatched->resources == small);

  // Accepting the cached offer fully fails at the pool and outdates it.
  auto full = accept_through(cache, pool, cached[0].id, large);
  REQUIRE_FALSE(full.ok());
  CHECK(full.error().kind == error_kind::not_exist);
  CHECK(cache.find("1")->outdated());

  // The next Offers refreshes from the pool.
  cached = cached_offers(cache, pool, 1001);
  CHECK(pool.offers_calls == 3);
  REQUIRE(cached.size() == 1);
  CHECK(cached[0].available == small.scale(3));
}

TEST_CASE("offer_cache: a freed alloc restores its offer; after a refresh it restores nothing") {
  fake_pool pool{large};
  offer_cache cache;
  cached_offers(cache, pool, 0);
  auto a = accept_through(cache, pool, "1", medium);
  REQUIRE(a.ok());
  CHECK(cache.offers()[0].available == medium);
  pool.free(*a);
  cache.freed(a->id);
  CHECK(cache.offers()[0].available == large);
  cache.freed(a->id);  // a second free is not counted twice
  CHECK(cache.offers()[0].available == large);

  auto b = accept_through(cache, pool, "1", small);
  REQUIRE(b.ok());
  cache.refresh(pool.offers(), 10);  // the pool's answer already reflects b
  pool.free(*b);
  cache.freed(b->id);
  CHECK(cache.offers()[0].available == small.scale(3));  // untouched by the old alloc
}

TEST_CASE("offer_cache: an accept settled after a refresh changes nothing") {
  fake_pool pool{large};
  offer_cache cache;
  cached_offers(cache, pool, 0);
  auto ticket = cache.begin_accept("1", small);
  REQUIRE(ticket.ok());
  CHECK(cache.offers()[0].available == small.scale(3));  // reserved while in flight
  cache.refresh({OfferInfo{"1", "testpool", medium}}, 5);
  cache.fail_accept(*ticket);
  CHECK_FALSE(cache.find("1")->outdated());
  CHECK(cache.offers()[0].available == medium);
}

TEST_CASE("offer_cache: TTL passes -> refresh even with valid offers; invalidate forces one") {
  fake_pool pool{large};
  offer_cache cache(500);
  cached_offers(cache, pool, 0);
  CHECK_FALSE(cache.needs_refresh(499));
  CHECK(cache.needs_refresh(500));
  cached_offers(cache, pool, 500);
  CHECK(pool.offers_calls == 2);
  cache.invalidate();
  CHECK(cache.needs_refresh(501));
  CHECK(cache.begin_accept("1", small).error().kind == error_kind::not_exist);
}

namespace {

// reflow cachingpool_test.go's acceptOffer: one offer that grants while it can.
struct fake_offer {
  Resources available;
  int accept_calls = 0;

  outcome<Resources> accept(const Resources& want) {
    ++accept_calls;
    if (!available.available(want)) return make_pool_error(error_kind::not_exist, "taken");
    available = available.sub(want);
    return want;
  }
};

}  // namespace

TEST_CASE("tracked_offer: reflow TestTrackedOffer") {
  fake_offer underlying{medium};
  tracked_offer offer(OfferInfo{"1", "p", underlying.available});
  CHECK(offer.available() == medium);
  CHECK_FALSE(offer.outdated());

  // Ten accepts of small race (all begun before any is answered): only two
  // fit, so only two reach the underlying offer.
  int began = 0;
  for (int i = 0; i < 10; ++i) {
    auto reserved = offer.begin_accept(small);
    if (reserved.ok())
      ++began;
    else
      CHECK(reserved.error().kind == error_kind::not_exist);
  }
  REQUIRE(began == 2);
  std::vector<Resources> allocs;
  for (int i = 0; i < began; ++i) {
    auto granted = underlying.accept(small);
    REQUIRE(granted.ok());
    offer.finish_accept(small, *granted);
    allocs.push_back(*granted);
  }
  CHECK_FALSE(offer.outdated());
  CHECK(underlying.accept_calls == 2);
  for (const auto& a : allocs) CHECK(a == small);
  CHECK(offer.available() == Resources{});

  offer.restore(allocs[0]);
  CHECK(offer.available() == small);
  offer.restore(allocs[1]);
  CHECK(offer.available() == medium);
}

TEST_CASE("tracked_offer: reflow TestTrackedOfferOutdated") {
  fake_offer underlying{medium};
  tracked_offer offer(OfferInfo{"1", "p", underlying.available});

  // Some other client snatches the underlying offer.
  auto other = underlying.accept(medium);
  REQUIRE(other.ok());
  CHECK(*other == medium);
  underlying.accept_calls = 0;
  CHECK_FALSE(offer.outdated());

  // Five racing accepts of medium: one reaches the underlying offer, fails,
  // and outdates the tracked offer; the other four never leave.
  int began = 0;
  for (int i = 0; i < 5; ++i)
    if (offer.begin_accept(medium).ok()) ++began;
  REQUIRE(began == 1);
  auto granted = underlying.accept(medium);
  REQUIRE_FALSE(granted.ok());
  offer.fail_accept(medium);

  CHECK(offer.outdated());
  CHECK(underlying.accept_calls == 1);
  CHECK(offer.available() == medium);  // the reservation is returned, but unusable
  CHECK_FALSE(offer.viable(small));
  CHECK(offer.begin_accept(small).error().kind == error_kind::not_exist);
}
