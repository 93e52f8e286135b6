#include <catch2/catch.hpp>

#include "policy/quota_ledger.hpp"

using namespace poolbus;

namespace {

AllocInspect alloc(const std::string& id, double cpu, int64_t expires_ms) {
  AllocInspect a;
  a.id = id;
  a.resources = Resources{{"cpu", cpu}, {"mem", 1 * GiB}};
  a.expires_ms = expires_ms;
  return a;
}

}  // namespace

TEST_CASE("quota_ledger: the file: owners, `*`, comments; a bad line is named") {
  auto book = parse_quota_book("# quotas\nalice cpu=8,mem=32GiB\n\n  bob\tcpu=2   # two cores\n* cpu=1\n");
  REQUIRE(book.ok());
  CHECK(book->owners.at("alice") == Resources{{"cpu", 8}, {"mem", 32 * GiB}});
  CHECK(book->owners.at("bob") == Resources{{"cpu", 2}});
  REQUIRE(book->everyone_else);
  CHECK(*book->everyone_else == Resources{{"cpu", 1}});
  CHECK(parse_quota_book("").ok());
  CHECK(parse_quota_book("").value().empty());
  auto bad = parse_quota_book("alice cpu=1\nbob cpu=-1\n");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().kind == error_kind::invalid);
  CHECK_THAT(bad.error().message, Catch::StartsWith("quota file line 2: "));
  CHECK_THAT(parse_quota_book("carol\n").error().message, Catch::StartsWith("quota file line 1: expected"));
  CHECK_THAT(parse_quota_book("a cpu=1\na cpu=2").error().message, Catch::Contains("line 2: owner a given twice"));
  CHECK_THAT(parse_quota_book("* cpu=1\n* cpu=2").error().message, Catch::Contains("line 2"));
}

TEST_CASE("quota_ledger: reservations and live allocs never pass the quota; unnamed resources are not limited") {
  auto book = parse_quota_book("alice cpu=2\n* cpu=1");
  quota_ledger ledger(*book);
  const Resources one{{"cpu", 1}, {"mem", 100 * GiB}};  // mem is not limited
  auto r1 = ledger.reserve("alice", one, 0);
  auto r2 = ledger.reserve("alice", one, 0);
  REQUIRE(r1);
  REQUIRE(r2);
  CHECK_FALSE(ledger.reserve("alice", one, 0));  // both in flight count
  ledger.settle(*r1, nullptr);                   // that accept failed: its room is back
  auto r3 = ledger.reserve("alice", one, 0);
  REQUIRE(r3);
  auto a2 = alloc("p/a2", 1, 1000);
  auto a3 = alloc("p/a3", 1, 2000);
  ledger.settle(*r2, &a2);
  ledger.settle(*r3, &a3);
  CHECK(ledger.used("alice", 0).units("cpu") == 2000);
  CHECK_FALSE(ledger.has_room("alice", Resources{{"cpu", 1}}, 1, 0));
  CHECK(ledger.has_room("alice", Resources{{"cpu", 1}}, 1, 1000));  // a2 expired at 1000
  ledger.on_keepalive("p/a2", 5000);                                // revived
  CHECK_FALSE(ledger.has_room("alice", Resources{{"cpu", 1}}, 1, 1000));
  ledger.on_freed("p/a3");
  CHECK(ledger.used("alice", 1000).units("cpu") == 1000);
  // `*`: each other owner its own quota.
  CHECK(ledger.reserve("bob", Resources{{"cpu", 1}}, 0));
  CHECK(ledger.reserve("carol", Resources{{"cpu", 1}}, 0));
  CHECK_FALSE(ledger.reserve("carol", Resources{{"cpu", 1}}, 0));
  CHECK(ledger.reserve("", Resources{{"cpu", 1}}, 0));  // no owner is the owner ""
  auto usage = ledger.usage(1000);
  REQUIRE(usage.size() == 4);
  CHECK(usage[0].owner == "");
  CHECK(usage[1].owner == "alice");
  CHECK(usage[1].used.units("cpu") == 1000);
}

TEST_CASE("quota_ledger: count x min alone over the quota never fits; without quotas nothing is limited") {
  quota_ledger ledger(*parse_quota_book("alice cpu=2"));
  CHECK(ledger.never_fits("alice", Resources{{"cpu", 1}}, 3));
  CHECK(ledger.never_fits("alice", Resources{{"cpu", 1}}, 3)->kind == error_kind::precondition);
  CHECK_FALSE(ledger.never_fits("alice", Resources{{"cpu", 1}}, 2));
  CHECK(ledger.never_fits("alice", Resources{{"cpu", 1}}, std::numeric_limits<int64_t>::max()));  // no overflow
  CHECK_FALSE(ledger.never_fits("bob", Resources{{"cpu", 100}}, 100));
  quota_ledger none(quota_book{});
  CHECK_FALSE(none.enabled());
  CHECK(none.reserve("x", Resources{{"cpu", 1e6}}, 0));
  CHECK(none.usage(0).empty());
}
