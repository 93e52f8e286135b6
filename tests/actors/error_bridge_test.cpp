#include <catch2/catch.hpp>

#include <caf/sec.hpp>

#include "actors/error_bridge.hpp"

using namespace poolbus;

TEST_CASE("error bridge: a pool_error survives the trip through caf::error") {
  for (auto kind : {error_kind::invalid, error_kind::not_exist, error_kind::precondition, error_kind::unavailable,
                    error_kind::timeout, error_kind::unauthorized, error_kind::internal, error_kind::fatal}) {
    pool_error original{kind, "alloc p/1 is gone"};
    REQUIRE(to_pool_error(make_error(original)) == original);
  }
}

TEST_CASE("error bridge: CAF's request timeout becomes a timeout") {
  REQUIRE(to_pool_error(caf::make_error(caf::sec::request_timeout)).kind == error_kind::timeout);
  REQUIRE(to_pool_error(caf::make_error(caf::sec::request_receiver_down)).kind == error_kind::unavailable);
}
