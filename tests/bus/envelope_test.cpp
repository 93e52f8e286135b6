#include "bus/envelope.hpp"

#include <catch2/catch.hpp>

using namespace poolbus;
using frames_t = std::vector<std::string>;

TEST_CASE("envelope: REQ (identity, delimiter, body)", "[bus]") {
  auto request = split_router_message({"id1", "", "body"});
  CHECK(request.well_formed);
  CHECK(request.route == reply_route{"id1", ""});
  CHECK(request.body == "body");
  CHECK(make_reply(channel::api, request.route, "reply").frames == frames_t{"id1", "", "reply"});
}

TEST_CASE("envelope: DEALER without a delimiter (identity, body)", "[bus]") {
  auto request = split_router_message({"id2", "body"});
  CHECK(request.well_formed);
  CHECK(request.route == reply_route{"id2"});
  CHECK(request.body == "body");
  auto reply = make_reply(channel::workers, request.route, "reply");
  CHECK(reply.via == channel::workers);
  CHECK(reply.frames == frames_t{"id2", "reply"});
}

TEST_CASE("envelope: proxied route keeps every frame up to the first delimiter", "[bus]") {
  auto request = split_router_message({"outer", "inner", "", "body"});
  CHECK(request.well_formed);
  CHECK(request.route == reply_route{"outer", "inner", ""});
  CHECK(request.body == "body");
}

TEST_CASE("envelope: an empty body frame after the delimiter is still a body", "[bus]") {
  auto request = split_router_message({"id", "", ""});
  CHECK(request.well_formed);
  CHECK(request.route == reply_route{"id", ""});
  CHECK(request.body.empty());
}

TEST_CASE("envelope: malformed messages keep their route", "[bus]") {
  SECTION("no body after the delimiter") {
    auto request = split_router_message({"id", ""});
    CHECK_FALSE(request.well_formed);
    CHECK(request.route == reply_route{"id", ""});
  }
  SECTION("identity only") {
    auto request = split_router_message({"id"});
    CHECK_FALSE(request.well_formed);
    CHECK(request.route == reply_route{"id"});
  }
  SECTION("two body frames after the delimiter") {
    auto request = split_router_message({"id", "", "a", "b"});
    CHECK_FALSE(request.well_formed);
    CHECK(request.route == reply_route{"id", ""});
  }
  SECTION("two body frames without a delimiter") {
    auto request = split_router_message({"id", "a", "b"});
    CHECK_FALSE(request.well_formed);
    CHECK(request.route == reply_route{"id"});
  }
  SECTION("nothing at all: no route to reply on") {
    auto request = split_router_message({});
    CHECK_FALSE(request.well_formed);
    CHECK(request.route.empty());
  }
}
