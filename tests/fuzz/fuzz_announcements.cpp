// Fuzz target: the announce SUB's bodies, each decoder on the same bytes
// (offers.*, allocs.*, pools.* announcements). Invariants: no crash; a failure
// is `invalid`; a success re-encodes to an equal announcement. The broker's
// scanner for repeated heartbeats (find_int_field) stays within the bytes and
// agrees with the decoder on ts_ms.
#include "fuzz_invariants.hpp"
#include "schemas/msgpack_scan.hpp"

using namespace poolbus;

namespace {

template <class T, class Encode, class Decode>
void check_decoder(std::string_view body, Encode encode, Decode decode, const char* what) {
  outcome<T> decoded = decode(body);
  if (!decoded) {
    fuzz::check_invalid(decoded.error());
    return;
  }
  fuzz::check_round_trip(*decoded, encode, decode, what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto body = fuzz::bytes_of(data, size);
  check_decoder<offer_announcement>(body, encode_offer_announcement, decode_offer_announcement, "offer_announcement");
  check_decoder<alloc_event>(body, encode_alloc_event, decode_alloc_event, "alloc_event");
  check_decoder<pool_event>(body, encode_pool_event, decode_pool_event, "pool_event");
  auto ts = find_int_field(body, "ts_ms");
  if (ts) {
    FUZZ_CHECK(ts->length > 0 && ts->offset + ts->length <= body.size(), "the ts_ms span lies within the bytes");
    FUZZ_CHECK(read_int_at(body, ts->offset) == ts->value, "read_int_at reads what find_int_field found");
  }
  if (auto a = decode_offer_announcement(body))
    FUZZ_CHECK(ts && ts->value == a->ts_ms, "the scanner finds the decoder's ts_ms");
  return 0;
}
