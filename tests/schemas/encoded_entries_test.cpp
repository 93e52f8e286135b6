// Spliced offers/pools replies must be the very bytes encode_offers_reply /
// encode_pools_reply write (protocol.md is a contract; clients see no change).
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "schemas/api_messages.hpp"
#include "schemas/encoded_entries.hpp"

using namespace poolbus;

namespace {

const Resources big{{"cpu", 64}, {"mem", 512 * GiB}, {"disk", 2 * TiB}, {"gpu", 8}};
const Resources tiny{{"cpu", 0.001}, {"mem", 1}};

std::vector<PoolStatus> statuses_with(int64_t last_seen_ms) {
  return {PoolStatus{"a", big, tiny, 3, last_seen_ms}, PoolStatus{"b", tiny, Resources{}, 0, last_seen_ms},
          PoolStatus{std::string(300, 'p'), Resources{}, Resources{}, 1 << 20, last_seen_ms}};
}

encoded_array spliced_statuses(const std::vector<PoolStatus>& pools) {
  encoded_array array;
  for (const auto& p : pools) {
    append_pool_status_entry(array.bytes, pool_status_head(p), p.last_seen_ms);
    ++array.count;
  }
  return array;
}

}  // namespace

TEST_CASE("encoded entries: spliced offers replies equal encode_offers_reply") {
  std::vector<OfferInfo> offers{{"a/1", "a", big}, {"b/1", "b", tiny}, {"c/1", "c", Resources{}}};
  for (std::string id_raw : {nil_id_raw, std::string("\x07"),
                             std::string("\xa3"
                                         "abc")}) {
    encoded_array array;
    for (const auto& o : offers) append_offer_entry(array.bytes, o);
    array.count = static_cast<int64_t>(offers.size());
    CHECK(encode_offers_reply_spliced(id_raw, array) == encode_offers_reply(id_raw, offers));
    CHECK(encode_offers_reply_spliced(id_raw, encode_offer_entries(offers)) == encode_offers_reply(id_raw, offers));
    CHECK(encode_offers_reply_spliced(id_raw, encoded_array{}) == encode_offers_reply(id_raw, {}));
  }
  // Past 15 and 65535 entries the array header grows (fixarray -> array16 -> array32).
  for (size_t n : {15u, 16u, 65535u, 65536u}) {
    std::vector<OfferInfo> many(n, OfferInfo{"p/1", "p", tiny});
    CHECK(encode_offers_reply_spliced("\x01", encode_offer_entries(many)) == encode_offers_reply("\x01", many));
  }
}

TEST_CASE("encoded entries: a status head plus any last_seen_ms is the encoder's entry") {
  // Every width msgpack picks for an int: fixint, uint8/16/32/64, negative forms.
  for (int64_t seen :
       {int64_t{0}, int64_t{1}, int64_t{127}, int64_t{128}, int64_t{255}, int64_t{256}, int64_t{65535}, int64_t{65536},
        int64_t{4294967295}, int64_t{4294967296}, int64_t{1795000000000}, INT64_MAX, int64_t{-1}, int64_t{-32},
        int64_t{-33}, int64_t{-129}, int64_t{-40000}, int64_t{-3000000000}, INT64_MIN}) {
    INFO("last_seen_ms " << seen);
    auto pools = statuses_with(seen);
    CHECK(encode_pools_reply_spliced("\xc0", spliced_statuses(pools)) == encode_pools_reply("\xc0", pools));
    CHECK(encode_pools_reply_spliced("\xc0", encode_pool_status_entries(pools)) == encode_pools_reply("\xc0", pools));
  }
  // The head does not depend on the status's own last_seen_ms.
  CHECK(pool_status_head(statuses_with(5)[0]) == pool_status_head(statuses_with(1795000000000)[0]));
  CHECK(encode_pools_reply_spliced("\xc0", encoded_array{}) == encode_pools_reply("\xc0", {}));
}

TEST_CASE("encoded entries: spliced replies decode to the values") {
  auto pools = statuses_with(1795000000123);
  auto reply = decode_api_reply(encode_pools_reply_spliced("\x05", spliced_statuses(pools)));
  REQUIRE(reply.ok());
  REQUIRE(reply->pools.size() == 3);
  CHECK(reply->pools[0].available == tiny);
  CHECK(reply->pools[2].allocs == 1 << 20);
  CHECK(reply->pools[1].last_seen_ms == 1795000000123);
}

TEST_CASE("encoded entries: last_seen_ms is patched in place only at the same width") {
  auto pools = statuses_with(1795000000000);
  std::string bytes;
  std::vector<last_seen_slot> slots;
  for (const auto& p : pools) slots.push_back(append_pool_status_entry(bytes, pool_status_head(p), p.last_seen_ms));
  encoded_array array{3, bytes};
  CHECK(slots[0].width == 9);
  // Same width: the bytes become those of a fresh encoding.
  REQUIRE(patch_last_seen(array.bytes, slots[1], 1795000000777));
  pools[1].last_seen_ms = 1795000000777;
  CHECK(encode_pools_reply_spliced("\xc0", array) == encode_pools_reply("\xc0", pools));
  // Another width (uint16, negative fixint): refused, nothing written.
  auto before = array.bytes;
  CHECK(!patch_last_seen(array.bytes, slots[2], 1000));
  CHECK(!patch_last_seen(array.bytes, slots[0], -1));
  CHECK(array.bytes == before);
  // Small values have their own widths too.
  std::string small_bytes;
  auto slot = append_pool_status_entry(small_bytes, pool_status_head(pools[0]), 300);
  CHECK(slot.width == 3);
  REQUIRE(patch_last_seen(small_bytes, slot, 65535));
  pools[0].last_seen_ms = 65535;
  CHECK(encode_pools_reply_spliced("\xc0", encoded_array{1, small_bytes}) == encode_pools_reply("\xc0", {pools[0]}));
}
