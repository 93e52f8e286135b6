#include <catch2/catch.hpp>

#include "dash/query_string.hpp"

using namespace poolbus;

TEST_CASE("parse_query: decodes the known parameters") {
  auto q = parse_query("/api/allocs?owner=a%20b+c&pool=w1", {"owner", "pool"});
  REQUIRE(q);
  CHECK(q->at("owner") == "a b c");
  CHECK(q->at("pool") == "w1");
  CHECK(parse_query("/api/allocs", {"owner"})->empty());
  CHECK(parse_query("/api/allocs?", {"owner"})->empty());
  CHECK(parse_query("/x?uri=w1%2Fa1&", {"uri"})->at("uri") == "w1/a1");
  CHECK(parse_query("/x?flag", {"flag"})->at("flag").empty());
  CHECK(parse_query("/x?owner=%C3%A9l%C3%A8ne", {"owner"})->at("owner") == "\xc3\xa9l\xc3\xa8ne");
}

TEST_CASE("parse_query: anything malformed, unknown, repeated or huge is invalid") {
  for (const char* target : {"/x?uri=%zz", "/x?uri=%2", "/x?uri=%", "/x?uri=a%00b", "/x?uri=a%0Ab", "/x?other=1",
                             "/x?uri=1&uri=2", "/x?uri=%ff", "/x?%ff=1", "/x?uri=%c3%28", "/x?uri=%ed%a0%80"}) {
    auto q = parse_query(target, {"uri"});
    INFO(target);
    REQUIRE_FALSE(q);
    CHECK(q.error().kind == error_kind::invalid);
  }
  std::string huge = "/x?uri=" + std::string(max_query_bytes, 'a');
  auto q = parse_query(huge, {"uri"});
  REQUIRE_FALSE(q);
  CHECK(q.error().message.find("over") != std::string::npos);
}
