#include "policy/pool_claims.hpp"

#include <catch2/catch.hpp>

using namespace poolbus;

TEST_CASE("pool_claims: the first identity holds a pool id while it keeps speaking", "[pool_claims]") {
  pool_claims claims(1000);
  CHECK(claims.claim("p1", "worker:a", 0));
  CHECK(claims.claim("p1", "worker:a", 900));
  CHECK_FALSE(claims.claim("p1", "worker:b", 1500));  // a's last word was at 900: still live
  CHECK(claims.holder("p1", 1500) == std::optional<std::string>("worker:a"));
  CHECK(claims.claim("p2", "worker:b", 1500));  // other pool ids are free
}

TEST_CASE("pool_claims: a silent holder loses the id after the expiry", "[pool_claims]") {
  pool_claims claims(1000);
  CHECK(claims.claim("p1", "worker:a", 0));
  CHECK_FALSE(claims.claim("p1", "worker:b", 1000));  // exactly the expiry: not yet silent for longer
  CHECK(claims.claim("p1", "worker:b", 1001));
  CHECK_FALSE(claims.claim("p1", "worker:a", 1002));  // now b holds it
  CHECK(claims.holder("p1", 5000) == std::nullopt);
}

TEST_CASE("pool_claims: only the holder can release", "[pool_claims]") {
  pool_claims claims(1000);
  CHECK(claims.claim("p1", "worker:a", 0));
  claims.release("p1", "worker:b");
  CHECK_FALSE(claims.claim("p1", "worker:b", 10));
  claims.release("p1", "worker:a");
  CHECK(claims.claim("p1", "worker:b", 20));
}

TEST_CASE("pool_claims: expired ids are forgotten", "[pool_claims]") {
  pool_claims claims(100);
  for (int i = 0; i < 10; ++i) claims.claim("p" + std::to_string(i), "worker:a", 0);
  CHECK(claims.size() == 10);
  claims.claim("fresh", "worker:a", 1000);
  CHECK(claims.size() == 1);
}
