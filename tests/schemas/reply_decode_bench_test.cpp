// A micro-benchmark (hidden: run `schemas_tests "[.reply_bench]"`) of what a
// client spends on an offers or pools reply listing 10,000 pools: pairing it
// (reply_id_raw) plus decoding it (decode_api_reply), as bench/api_driver does.
// It prints timings and asserts only that the decodes succeed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "schemas/api_messages.hpp"

using namespace poolbus;

namespace {

// Pools as pool-bench's scale scenario has them ("s0-123", cpu/mem/disk).
std::vector<PoolStatus> bench_pools(int count) {
  std::vector<PoolStatus> pools;
  for (int i = 0; i < count; ++i) {
    Resources total{{"cpu", 8}, {"mem", 8 * GiB}, {"disk", 8 * GiB}};
    Resources available{{"cpu", 8 - 0.5 * (i % 3)}, {"mem", 8 * GiB - i}, {"disk", 8 * GiB}};
    pools.push_back(
        {"s" + std::to_string(i / 2500) + "-" + std::to_string(i), total, available, i % 4, 1790000000000 + i});
  }
  return pools;
}

// The best time of `rounds` runs. What a run returns is dropped after its
// timing ends, as api_driver times the decode but not the reply's destruction.
template <class Run>
double best_us(int rounds, Run run) {
  double best = 1e18;
  for (int i = 0; i < rounds; ++i) {
    auto start = std::chrono::steady_clock::now();
    auto result = run();
    best = std::min(best, std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

}  // namespace

TEST_CASE("reply decode bench: 10,000-entry offers and pools replies", "[.reply_bench]") {
  auto pools = bench_pools(10000);
  std::vector<OfferInfo> offers;
  for (const auto& pool : pools) offers.push_back({pool.id + "/1", pool.id, pool.available});
  const std::string id = "\xcd\x12\x34";  // a uint16 request id, as api_driver's
  const std::string offers_body = encode_offers_reply(id, offers);
  const std::string pools_body = encode_pools_reply(id, pools);
  const int rounds = 30;
  for (const auto& [name, body] : {std::pair<const char*, const std::string&>{"offers", offers_body},
                                   std::pair<const char*, const std::string&>{"pools", pools_body}}) {
    size_t entries = 0;
    double id_us = best_us(rounds, [&] { return reply_id_raw(body); });
    double decode_us = best_us(rounds, [&] {
      auto reply = decode_api_reply(body);
      REQUIRE(reply.ok());
      entries = reply->offers.size() + reply->pools.size();
      return reply;
    });
    CHECK(reply_id_raw(body) == id);
    CHECK(entries == 10000);
    std::printf("%-6s reply (%zu bytes): reply_id_raw %.0f us + decode_api_reply %.0f us = %.0f us (best of %d)\n",
                name, body.size(), id_us, decode_us, id_us + decode_us, rounds);
  }
}
