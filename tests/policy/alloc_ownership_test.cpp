#include "policy/alloc_ownership.hpp"

#include <catch2/catch.hpp>

using namespace poolbus;

TEST_CASE("alloc_ownership: without authentication anyone may act", "[alloc_ownership]") {
  CHECK(may_act_on_alloc("alice", ""));
  CHECK(may_act_on_alloc("", ""));
}

TEST_CASE("alloc_ownership: with authentication only the owner or an admin may act", "[alloc_ownership]") {
  CHECK(may_act_on_alloc("client:alice", "client:alice"));
  CHECK_FALSE(may_act_on_alloc("client:alice", "client:bob"));
  CHECK_FALSE(may_act_on_alloc("", "client:bob"));  // taken before security: no owner, no claim
  CHECK(may_act_on_alloc("client:alice", "admin:ops"));
  CHECK_FALSE(may_act_on_alloc("client:alice", "client:admin"));  // the role counts, not the name
  CHECK_FALSE(may_act_on_alloc("admin:ops", "observer:ops"));
}

TEST_CASE("alloc_ownership: role_of_identity", "[alloc_ownership]") {
  CHECK(role_of_identity("admin:ops") == "admin");
  CHECK(role_of_identity("worker:a:b") == "worker");
  CHECK(role_of_identity("plain") == "");
}
