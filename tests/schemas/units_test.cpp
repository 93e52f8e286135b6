#include <catch2/catch.hpp>

#include "schemas/units.hpp"

using namespace poolbus;

namespace {
template <class T>
std::string error_message(const outcome<T>& parsed) {
  REQUIRE_FALSE(parsed.ok());
  CHECK(parsed.error().kind == error_kind::invalid);
  return parsed.error().message;
}
}  // namespace

TEST_CASE("units: durations to milliseconds") {
  CHECK(*parse_duration_ms("500ms") == 500);
  CHECK(*parse_duration_ms("30s") == 30000);
  CHECK(*parse_duration_ms("2m") == 120000);
  CHECK(*parse_duration_ms("1h") == 3600000);
  CHECK(*parse_duration_ms("1m30s") == 90000);
  CHECK(*parse_duration_ms("1h2m3s4ms") == 3723004);
  CHECK(*parse_duration_ms("1.5s") == 1500);
  CHECK(*parse_duration_ms("0s") == 0);
  CHECK_THAT(error_message(parse_duration_ms("500")), Catch::Contains("missing unit"));
  CHECK_THAT(error_message(parse_duration_ms("5d")), Catch::Contains("unknown unit \"d\""));
  CHECK_THAT(error_message(parse_duration_ms("")), Catch::Contains("empty"));
  CHECK_THAT(error_message(parse_duration_ms("-5s")), Catch::Contains("expected a number"));
  CHECK_THAT(error_message(parse_duration_ms("s")), Catch::Contains("expected a number"));
  CHECK_THAT(error_message(parse_duration_ms("1m30")), Catch::Contains("missing unit"));
}

TEST_CASE("units: sizes in binary and decimal units") {
  CHECK(*parse_size_bytes("512") == 512);
  CHECK(*parse_size_bytes("512B") == 512);
  CHECK(*parse_size_bytes("1KiB") == 1024);
  CHECK(*parse_size_bytes("8GiB") == 8 * GiB);
  CHECK(*parse_size_bytes("2TiB") == 2 * TiB);
  CHECK(*parse_size_bytes("1.5MiB") == 1.5 * MiB);
  CHECK(*parse_size_bytes("1KB") == 1000);
  CHECK(*parse_size_bytes("3MB") == 3e6);
  CHECK(*parse_size_bytes("100GB") == 100e9);
  CHECK(*parse_size_bytes("1TB") == 1e12);
  CHECK_THAT(error_message(parse_size_bytes("8XB")), Catch::Contains("unknown unit \"XB\""));
  CHECK_THAT(error_message(parse_size_bytes("GiB")), Catch::Contains("expected a number"));
  CHECK_THAT(error_message(parse_size_bytes("-1")), Catch::Contains("expected a number"));
}

TEST_CASE("units: RES strings to resources") {
  auto parsed = parse_resources("cpu=4,mem=8GiB,disk=100GiB,gpu=1");
  REQUIRE(parsed.ok());
  CHECK(*parsed == Resources({{"cpu", 4}, {"mem", 8 * GiB}, {"disk", 100 * GiB}, {"gpu", 1}}));
  auto spaced = parse_resources(" cpu = 0.5 , mem=512MiB ");
  REQUIRE(spaced.ok());
  CHECK(spaced->get("cpu") == 0.5);
  CHECK(spaced->get("mem") == 512 * MiB);
  CHECK(parse_resources("mem=1000")->get("mem") == 1000);

  CHECK_THAT(error_message(parse_resources("cpu=4,mem=8XB")), Catch::Contains("mem=8XB"));
  CHECK_THAT(error_message(parse_resources("cpu=four")), Catch::Contains("cpu=four"));
  CHECK_THAT(error_message(parse_resources("cpu=4GiB")), Catch::Contains("not a number"));
  CHECK_THAT(error_message(parse_resources("cpu=-1")), Catch::Contains("cpu=-1"));
  CHECK_THAT(error_message(parse_resources("cpu")), Catch::Contains("expected name=value"));
  CHECK_THAT(error_message(parse_resources("=4")), Catch::Contains("empty name"));
  CHECK_THAT(error_message(parse_resources("cpu=1,cpu=2")), Catch::Contains("given twice"));
  CHECK_THAT(error_message(parse_resources("cpu=1,")), Catch::Contains("expected name=value"));
  CHECK_THAT(error_message(parse_resources("")), Catch::Contains("empty"));
}

TEST_CASE("units: readable resources for tables") {
  CHECK(format_resources({{"cpu", 4}, {"mem", 8 * GiB}, {"disk", 100 * GiB}}) == "cpu 4  mem 8.0GiB  disk 100GiB");
  CHECK(format_resources({{"zeta", 2}, {"gpu", 1}, {"disk", 512}, {"cpu", 0.5}}) ==
        "cpu 0.5  disk 512B  gpu 1  zeta 2");
  CHECK(format_resources({{"mem", 1.5 * MiB}}) == "mem 1.5MiB");
  CHECK(format_resources(Resources{}) == "-");
  CHECK(format_bytes(0) == "0B");
  CHECK(format_bytes(1023) == "1023B");
  CHECK(format_bytes(1024) == "1.0KiB");
  CHECK(format_bytes(2 * TiB) == "2.0TiB");
}

TEST_CASE("units: a parsed RES formats back to the same amounts") {
  auto parsed = parse_resources("cpu=2,mem=3GiB,disk=200GiB");
  REQUIRE(parsed.ok());
  CHECK(format_resources(*parsed) == "cpu 2  mem 3.0GiB  disk 200GiB");
}
